//! Confirm: turn a live hold into a booking. A Redis hold is checked and pinned in Redis (so it
//! cannot expire or be released mid-transaction), then written through the Postgres guard; a
//! Postgres hold is checked, locked and consumed inside the guarded transaction. Repeating a
//! successful confirm returns the same booking.

use std::collections::HashMap;
use std::time::Duration;

use tracing::{Span, warn};

use super::Seatlock;
use crate::domain::confirm::{
    AfterConfirm, Confirmed, PostgresConfirm, committed_despite_error, decide_postgres_confirm,
    decide_redis_confirm, decide_repeat,
};
use crate::domain::events::EventId;
use crate::domain::holds::{HoldCheck, HoldGroupId, HoldRecord, HoldStore};
use crate::error::{Error, Result};
use crate::store::postgres::ConfirmSource;
use crate::store::redis::Settle;
use crate::telemetry::{self, ConfirmResult};

impl Seatlock {
    /// Confirms a hold into a booking.
    pub async fn confirm(
        &self,
        event: EventId,
        user_id: &str,
        id: HoldGroupId,
    ) -> Result<Confirmed> {
        let result = self.confirm_hold(event, user_id, id).await;
        telemetry::record_confirm(confirm_label(&result));
        if result.is_ok() {
            Span::current().record("booking.id", tracing::field::display(id));
        }
        result
    }

    async fn confirm_hold(
        &self,
        event: EventId,
        user_id: &str,
        id: HoldGroupId,
    ) -> Result<Confirmed> {
        id.check_event(event)?;
        if id.store() == HoldStore::Postgres {
            return self.confirm_postgres_hold(event, user_id, id).await;
        }
        let in_redis = self.confirm_redis_hold(event, user_id, id);
        match self.with_redis(in_redis).await {
            // The hold can only be checked in Redis; a repeat of a committed confirm still
            // answers.
            None => self.unknown_without_redis(self.repeat_confirm(event, user_id, id).await),
            Some(Err(e)) if e.is_redis_outage() => {
                match self.repeat_confirm(event, user_id, id).await {
                    Err(Error::HoldGone) => Err(e),
                    other => other,
                }
            }
            Some(decided) => decided,
        }
    }

    async fn confirm_redis_hold(
        &self,
        event: EventId,
        user_id: &str,
        id: HoldGroupId,
    ) -> Result<Confirmed> {
        let Some(hold) = self.redis.fetch_hold(event, id).await? else {
            return self.repeat_confirm(event, user_id, id).await;
        };
        if hold.user_id != user_id {
            return Err(Error::NotHoldOwner);
        }
        let grace = Duration::from_secs(self.settings.holds.confirm_grace_seconds);
        // This attempt's pin: a failed attempt removes only its own, never a concurrent one's.
        let token = uuid::Uuid::new_v4().to_string();
        let pinned = self
            .redis
            .pin_hold(
                event,
                id,
                user_id,
                (&hold.seats, &hold.tiers),
                grace,
                &token,
            )
            .await;
        match pinned {
            Ok(HoldCheck::Ok | HoldCheck::Pinned) => {}
            Ok(HoldCheck::NotOwner) => return Err(Error::NotHoldOwner),
            Ok(HoldCheck::Gone) => return self.repeat_confirm(event, user_id, id).await,
            Err(e) => {
                // The pin may have landed without its reply: take it back if it did.
                let _ = self.redis.unpin_hold(event, id, &token).await;
                return Err(e);
            }
        }
        let source = ConfirmSource::Redis {
            seats: hold.seats.clone(),
            tiers: hold.tiers.clone(),
            pools: hold.pools.clone(),
            taken_ms: hold.taken_ms,
        };
        let max_seats = self.limits.max_seats_per_user;
        let outcome = match self
            .pg
            .insert_booking(event, id, user_id, source, max_seats)
            .await
        {
            Ok(outcome) => outcome,
            Err(e) => {
                // The commit may have happened without its reply reaching us.
                let found = self.pg.fetch_booking(event, id).await.ok().flatten();
                let found = committed_despite_error(found, user_id, &hold.seats, &hold.tiers);
                if let Some(confirmed) = found {
                    self.finish_hold(event, id, user_id, AfterConfirm::Book, &hold)
                        .await;
                    return Ok(confirmed);
                }
                // Nothing was written; let the owner release the hold again (or retry).
                if let Err(unpin) = self.redis.unpin_hold(event, id, &token).await {
                    warn!(error = %unpin, "could not unpin the hold after a failed confirm");
                }
                return Err(e);
            }
        };
        let (result, after) = decide_redis_confirm(outcome, user_id, &hold.seats, &hold.tiers);
        if after == AfterConfirm::Unpin {
            // Nothing was written; the owner may release the hold (or retry after a cancel).
            if let Err(e) = self.redis.unpin_hold(event, id, &token).await {
                warn!(error = %e, "could not unpin the hold after a refused confirm");
            }
        }
        self.finish_hold(event, id, user_id, after, &hold).await;
        if let Err(Error::SeatsUnavailable {
            tiers: Some(short), ..
        }) = &result
            && !short.is_empty()
        {
            // Redis let this hold take units Postgres no longer has: its tier counts are
            // behind (a lost write, a failover). Rebuild them from Postgres at the next hold.
            warn!(event.id = %event, "the guard refused tier units redis had held; dropping the event's cache");
            if let Err(e) = self.redis.drop_inventory(event).await {
                warn!(error = %e, "could not drop the event's cache");
            }
        }
        result
    }

    async fn confirm_postgres_hold(
        &self,
        event: EventId,
        user_id: &str,
        id: HoldGroupId,
    ) -> Result<Confirmed> {
        let taken = self.seats_of_earlier_redis_holds(event, id).await?;
        if !taken.is_empty() {
            return Err(Error::SeatsUnavailable {
                seats: taken,
                tiers: None,
            });
        }
        let max_seats = self.limits.max_seats_per_user;
        let outcome = self
            .pg
            .insert_booking(event, id, user_id, ConfirmSource::Postgres, max_seats)
            .await?;
        match decide_postgres_confirm(outcome, user_id) {
            PostgresConfirm::Done(result, after) => {
                if let (Ok(confirmed), AfterConfirm::Book) = (&result, &after) {
                    // Best effort: drop a copy of the hold in Redis (recovery may have made one)
                    // and mark its seats booked there.
                    let seats = confirmed.booking.seat_codes();
                    let tiers = confirmed.booking.tier_lines();
                    self.announce(event, &seats, &tiers).await;
                    let book = self.redis.settle_hold(
                        event,
                        id,
                        user_id,
                        Settle::Book,
                        (&seats, &tiers),
                        &[],
                        // The copy's own channel parts (taken as the Postgres hold had them).
                        &[],
                    );
                    let _ = self.with_redis(book).await;
                }
                result
            }
            PostgresConfirm::AsRepeat => self.repeat_confirm(event, user_id, id).await,
        }
    }

    /// The seats of a Postgres hold (taken during a Redis outage, where Redis could not tell)
    /// that a live Redis hold taken before it has: the first hold of a seat wins, so this one may
    /// not confirm them (the guard refuses the Redis hold only Postgres holds older than it).
    /// Asked only while Redis answers (the breaker closed); without it the Postgres guard still
    /// refuses a second sale.
    async fn seats_of_earlier_redis_holds(
        &self,
        event: EventId,
        id: HoldGroupId,
    ) -> Result<Vec<String>> {
        if self.settings.holds.backend != HoldStore::Redis || !self.breaker.is_closed() {
            return Ok(Vec::new());
        }
        let Some((seats, taken_ms)) = self.pg.live_hold_seats(event, id).await? else {
            return Ok(Vec::new());
        };
        if seats.is_empty() {
            // Tier units only: the tier guard decides.
            return Ok(Vec::new());
        }
        let holders = match self
            .read_redis(self.redis.seat_holders(event, &seats))
            .await
        {
            Some(Ok(holders)) => holders,
            _ => return Ok(Vec::new()),
        };
        let me = id.to_string();
        let mut first: HashMap<String, bool> = HashMap::new();
        let mut earlier = Vec::new();
        for (seat, holder) in seats.into_iter().zip(holders) {
            let Some(holder) = holder.filter(|h| *h != me) else {
                continue;
            };
            if !first.contains_key(&holder) {
                let other = HoldGroupId::parse(&holder);
                let record = match other {
                    Some(other) => self.read_redis(self.redis.fetch_hold(event, other)).await,
                    None => None,
                };
                let was_first = match record {
                    Some(Ok(Some(r))) => r.taken_ms.is_none_or(|t| t < taken_ms),
                    // Ended meanwhile: the seat is not its any more.
                    Some(Ok(None)) => false,
                    // Unknown: the seat stays the Redis hold's, as Redis says.
                    _ => true,
                };
                first.insert(holder.clone(), was_first);
            }
            if first.get(&holder).copied().unwrap_or(true) {
                earlier.push(seat);
            }
        }
        Ok(earlier)
    }

    /// A confirm whose hold is no longer in its store: a repeat of a committed confirm gets its
    /// booking.
    async fn repeat_confirm(
        &self,
        event: EventId,
        user_id: &str,
        id: HoldGroupId,
    ) -> Result<Confirmed> {
        decide_repeat(self.settled_booking(event, id).await?, user_id)
    }

    /// Ends a Redis hold after Postgres decided. Postgres holds the truth already, so a Redis
    /// failure here is logged, not returned: the hold's keys expire by TTL on their own.
    async fn finish_hold(
        &self,
        event: EventId,
        id: HoldGroupId,
        user_id: &str,
        after: AfterConfirm,
        hold: &HoldRecord,
    ) {
        let (how, booked_elsewhere): (Settle, Option<Vec<String>>) = match after {
            AfterConfirm::Nothing | AfterConfirm::Unpin => return,
            AfterConfirm::Book => (Settle::Book, None),
            AfterConfirm::Drop => (Settle::Drop, None),
            AfterConfirm::DropAndMarkBooked(taken) => (Settle::Drop, Some(taken)),
        };
        let contents = (hold.seats.as_slice(), hold.tiers.as_slice());
        if let Err(e) = self
            .redis
            .settle_hold(
                event,
                id,
                user_id,
                how,
                contents,
                booked_elsewhere.as_deref().unwrap_or_default(),
                &hold.pools,
            )
            .await
        {
            warn!(error = %e, hold.id = %id, "could not settle the hold in redis; it will expire by TTL");
        }
        if let Some(taken) = booked_elsewhere
            && let Err(e) = self.redis.mark_booked(event, &taken).await
        {
            warn!(error = %e, "could not mark guard-refused seats as booked in redis");
        }
    }
}

/// The metric label of a confirm's result.
fn confirm_label(result: &Result<Confirmed>) -> ConfirmResult {
    match result {
        Ok(c) if c.repeat => ConfirmResult::Repeat,
        Ok(_) => ConfirmResult::Booked,
        Err(Error::HoldGone | Error::EventNotFound) => ConfirmResult::Expired,
        Err(Error::NotHoldOwner) => ConfirmResult::NotOwner,
        Err(Error::SeatsAlreadyBooked { .. } | Error::SeatsUnavailable { .. }) => {
            ConfirmResult::GuardRefused
        }
        Err(Error::HoldEventMismatch) => ConfirmResult::WrongEvent,
        Err(Error::UserLimit { .. }) => ConfirmResult::UserLimit,
        Err(_) => ConfirmResult::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_confirm_result_has_its_label() {
        let label = |e: Error| confirm_label(&Err(e));
        assert_eq!(label(Error::HoldGone), ConfirmResult::Expired);
        assert_eq!(label(Error::EventNotFound), ConfirmResult::Expired);
        assert_eq!(label(Error::NotHoldOwner), ConfirmResult::NotOwner);
        assert_eq!(
            label(Error::SeatsAlreadyBooked { seats: vec![] }),
            ConfirmResult::GuardRefused
        );
        assert_eq!(
            label(Error::SeatsUnavailable {
                seats: vec![],
                tiers: None
            }),
            ConfirmResult::GuardRefused
        );
        assert_eq!(label(Error::HoldEventMismatch), ConfirmResult::WrongEvent);
        assert_eq!(
            label(Error::Unavailable { what: "redis" }),
            ConfirmResult::Error
        );
    }
}
