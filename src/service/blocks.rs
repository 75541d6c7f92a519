//! Blocked seats: an administrator holds seats back from sale (the production, wheelchair
//! places, a promoter) or puts them on sale again. Blocking is all or nothing, refused while a
//! seat is held (in either store) or sold; a blocked seat is refused to every hold (409
//! `SEATS_UNAVAILABLE`) and never chosen by best-available.
//!
//! Blocking marks the seats in Redis first (atomically refusing the seats a live hold has, so
//! no hold can take one while Postgres is written), then in Postgres, where the block is kept
//! and recorded; a refusal there takes the Redis marks back. Unblocking writes Postgres first.

use tracing::warn;

use super::Seatlock;
use crate::domain::events::EventId;
use crate::domain::holds::HoldStore;
use crate::error::{Error, Result};
use crate::store::postgres::BlockOutcome;

impl Seatlock {
    /// Blocks `codes` for `reason`; returns them.
    pub async fn block_seats(
        &self,
        event: EventId,
        codes: &[String],
        reason: &str,
        actor: &str,
    ) -> Result<Vec<String>> {
        let seats = self.pg.fetch_seat_map(event, Some(codes)).await?;
        if seats.is_empty() && self.pg.fetch_event(event).await?.is_none() {
            return Err(Error::EventNotFound);
        }
        let known: Vec<&str> = seats.iter().map(|s| s.code.as_str()).collect();
        let unknown: Vec<String> = codes
            .iter()
            .filter(|c| !known.contains(&c.as_str()))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(Error::SeatsNotFound { seats: unknown });
        }
        let taken: Vec<String> = seats
            .iter()
            .filter(|s| s.booked || s.postgres_held_ms.is_some())
            .map(|s| s.code.clone())
            .collect();
        if !taken.is_empty() {
            return Err(unavailable(codes, &taken));
        }
        let fresh: Vec<String> = seats
            .iter()
            .filter(|s| s.blocked.is_none())
            .map(|s| s.code.clone())
            .collect();
        if fresh.is_empty() {
            return Ok(codes.to_vec());
        }
        let marked = if self.settings.holds.backend == HoldStore::Redis {
            match self.with_redis(self.redis.block_seats(event, &fresh)).await {
                Some(Ok(held)) if !held.is_empty() => return Err(unavailable(codes, &held)),
                Some(Ok(_)) => true,
                Some(Err(e)) => return Err(e),
                // Redis cannot be asked whether a hold has a seat: try again later.
                None => return Err(Error::Unavailable { what: "redis" }),
            }
        } else {
            false
        };
        let outcome = self
            .pg
            .block_seats(event, &fresh, Some(reason), actor)
            .await;
        let refused = match outcome {
            Ok(BlockOutcome::Done(_)) => {
                // Announced here, after the commit (block.lua publishes only unblocks): a stream
                // reads a change's seats from Postgres, and would show the seat AVAILABLE if told
                // before the block was committed.
                self.announce(event, &fresh, &[]).await;
                return Ok(codes.to_vec());
            }
            Ok(BlockOutcome::Unknown(u)) => Error::SeatsNotFound { seats: u },
            Ok(BlockOutcome::Taken(t)) => unavailable(codes, &t),
            Err(e) => e,
        };
        if marked && let Err(e) = self.redis.unblock_seats(event, &fresh).await {
            warn!(error = %e, event.id = %event, "could not take back a refused block in redis; dropping the event's cache");
            let _ = self.redis.drop_inventory(event).await;
        }
        Err(refused)
    }

    /// Puts `codes` on sale again; returns them.
    pub async fn unblock_seats(
        &self,
        event: EventId,
        codes: &[String],
        actor: &str,
    ) -> Result<Vec<String>> {
        let changed = match self.pg.block_seats(event, codes, None, actor).await? {
            BlockOutcome::Done(changed) => changed,
            BlockOutcome::Unknown(unknown) => {
                if self.pg.fetch_event(event).await?.is_none() {
                    return Err(Error::EventNotFound);
                }
                return Err(Error::SeatsNotFound { seats: unknown });
            }
            BlockOutcome::Taken(t) => return Err(unavailable(codes, &t)),
        };
        if !changed.is_empty() {
            match self
                .with_redis(self.redis.unblock_seats(event, &changed))
                .await
            {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    warn!(error = %e, event.id = %event, "could not unblock seats in redis; dropping the event's cache");
                    let _ = self.redis.drop_inventory(event).await;
                    self.announce(event, &changed, &[]).await;
                }
                // The cache is dropped when Redis comes back (see outage).
                None => self.announce(event, &changed, &[]).await,
            }
        }
        Ok(codes.to_vec())
    }
}

/// A 409 listing `taken` in request order.
fn unavailable(codes: &[String], taken: &[String]) -> Error {
    Error::SeatsUnavailable {
        seats: codes
            .iter()
            .filter(|c| taken.contains(c))
            .cloned()
            .collect(),
        tiers: None,
    }
}
