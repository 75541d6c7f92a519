//! Cancel: a buyer cancels a confirmed booking; its seats can be held and sold again at once.

use tracing::warn;

use super::Seatlock;
use crate::domain::bookings::{CancelOutcome, decide_cancel};
use crate::domain::holds::HoldGroupId;
use crate::error::{Error, Result};
use crate::telemetry::{self, CancelResult};

impl Seatlock {
    /// Cancels a confirmed booking of `user_id` (soft: the booking stays, cancelled).
    pub async fn cancel(&self, user_id: &str, id: HoldGroupId) -> Result<()> {
        let event = id.event().ok_or(Error::BookingNotFound)?;
        let outcome = self.pg.cancel_booking(event, id, user_id).await;
        telemetry::record_cancel(cancel_label(&outcome));
        let (result, freed) = decide_cancel(outcome?);
        if !freed.is_empty() {
            // While Redis is down the cache is dropped on recovery instead (see outage).
            let free = self.redis.mark_cancelled(event, id, &freed);
            match self.with_redis(free).await {
                // The script announced the change to the streams.
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    warn!(error = %e, booking.id = %id, "could not free cancelled seats in redis");
                    self.announce(event, &freed.seats, &freed.tiers).await;
                }
                None => self.announce(event, &freed.seats, &freed.tiers).await,
            }
        }
        result
    }
}

/// The metric label of what the cancel transaction answered.
fn cancel_label(outcome: &Result<CancelOutcome>) -> CancelResult {
    match outcome {
        Ok(CancelOutcome::Cancelled(_)) => CancelResult::Cancelled,
        Ok(CancelOutcome::AlreadyCancelled) => CancelResult::Repeat,
        Ok(CancelOutcome::NotOwner) => CancelResult::NotOwner,
        Ok(CancelOutcome::NotFound) => CancelResult::NotFound,
        Err(_) => CancelResult::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cancel_outcome_has_its_label() {
        let label = |o| cancel_label(&Ok(o));
        assert_eq!(
            label(CancelOutcome::Cancelled(Default::default())),
            CancelResult::Cancelled
        );
        assert_eq!(label(CancelOutcome::AlreadyCancelled), CancelResult::Repeat);
        assert_eq!(label(CancelOutcome::NotOwner), CancelResult::NotOwner);
        assert_eq!(label(CancelOutcome::NotFound), CancelResult::NotFound);
        assert_eq!(
            cancel_label(&Err(Error::Internal("x".into()))),
            CancelResult::Error
        );
    }
}
