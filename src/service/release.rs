//! Release: the buyer gives a live hold back; its seats are free at once.

use super::Seatlock;
use crate::domain::bookings::decide_settled_release;
use crate::domain::events::EventId;
use crate::domain::holds::{HoldGroupId, HoldStore, postgres_release_refused, release_decision};
use crate::error::{Error, Result};
use crate::store::redis::Settle;
use crate::telemetry::{self, ReleaseResult};

impl Seatlock {
    /// Releases a live hold of `user_id`.
    pub async fn release(&self, event: EventId, user_id: &str, id: HoldGroupId) -> Result<()> {
        let result = self.release_hold(event, user_id, id).await;
        telemetry::record_release(release_label(&result));
        result
    }

    async fn release_hold(&self, event: EventId, user_id: &str, id: HoldGroupId) -> Result<()> {
        id.check_event(event)?;
        if id.store() == HoldStore::Postgres {
            return self.release_postgres_hold(event, user_id, id).await;
        }
        let in_redis = self.release_redis_hold(event, user_id, id);
        match self.with_redis(in_redis).await {
            None => self.unknown_without_redis(self.released_elsewhere(event, user_id, id).await),
            Some(Ok(true)) => Ok(()),
            Some(Ok(false)) => self.released_elsewhere(event, user_id, id).await,
            Some(Err(e)) => Err(e),
        }
    }

    async fn release_postgres_hold(
        &self,
        event: EventId,
        user_id: &str,
        id: HoldGroupId,
    ) -> Result<()> {
        if let Some(freed) = self.pg.delete_hold(event, id, user_id).await? {
            self.announce(event, &freed.seats, &freed.tiers).await;
            // Best effort: drop the copy of this hold that recovery may have put in Redis.
            let contents = (freed.seats.as_slice(), freed.tiers.as_slice());
            let drop = self
                .redis
                .settle_hold(event, id, user_id, Settle::Drop, contents, &[], &[]);
            let _ = self.with_redis(drop).await;
            return Ok(());
        }
        let hold = self.pg.fetch_hold(event, id).await?;
        if postgres_release_refused(hold.as_ref(), user_id) {
            return Err(Error::NotHoldOwner);
        }
        self.released_elsewhere(event, user_id, id).await
    }

    /// Releases a Redis hold; false when Redis no longer has it.
    async fn release_redis_hold(
        &self,
        event: EventId,
        user_id: &str,
        id: HoldGroupId,
    ) -> Result<bool> {
        let Some(hold) = self.redis.fetch_hold(event, id).await? else {
            return Ok(false);
        };
        if hold.user_id != user_id {
            return Err(Error::NotHoldOwner);
        }
        let released = self
            .redis
            .settle_hold(
                event,
                id,
                user_id,
                Settle::Release,
                (&hold.seats, &hold.tiers),
                &[],
                &[],
            )
            .await?;
        release_decision(released)
    }

    /// A release whose hold is gone from its store: confirmed (409) or expired/unknown (410).
    async fn released_elsewhere(
        &self,
        event: EventId,
        user_id: &str,
        id: HoldGroupId,
    ) -> Result<()> {
        decide_settled_release(self.settled_booking(event, id).await?.as_ref(), user_id)
    }
}

/// The metric label of a release's result.
fn release_label(result: &Result<()>) -> ReleaseResult {
    match result {
        Ok(()) => ReleaseResult::Released,
        Err(Error::HoldGone | Error::EventNotFound) => ReleaseResult::Expired,
        Err(Error::NotHoldOwner) => ReleaseResult::NotOwner,
        Err(Error::HoldAlreadyConfirmed) => ReleaseResult::AlreadyConfirmed,
        Err(Error::HoldEventMismatch) => ReleaseResult::WrongEvent,
        Err(_) => ReleaseResult::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_release_result_has_its_label() {
        let label = |e: Error| release_label(&Err(e));
        assert_eq!(release_label(&Ok(())), ReleaseResult::Released);
        assert_eq!(label(Error::HoldGone), ReleaseResult::Expired);
        assert_eq!(label(Error::EventNotFound), ReleaseResult::Expired);
        assert_eq!(label(Error::NotHoldOwner), ReleaseResult::NotOwner);
        assert_eq!(
            label(Error::HoldAlreadyConfirmed),
            ReleaseResult::AlreadyConfirmed
        );
        assert_eq!(label(Error::HoldEventMismatch), ReleaseResult::WrongEvent);
        assert_eq!(label(Error::Internal("x".into())), ReleaseResult::Error);
    }
}
