//! Redis outages. Every Redis call of a flow goes through [`Seatlock::with_redis`] (or
//! [`Seatlock::read_redis`] for reads), which asks the breaker first and feeds it the outcome;
//! the breaker's transitions switch holds to the fallback and back, and the way back starts a
//! reconcile: cached inventories are dropped (bookings and cancels went to Postgres only while
//! Redis was away) and live Postgres holds are copied into Redis, so new Redis holds cannot take
//! their seats.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tracing::warn;

use super::Seatlock;
use super::breaker::Transition;
use crate::config::HoldFallback;
use crate::domain::holds::{Caps, HoldAttempt, HoldStore, LiveHold};
use crate::domain::policy::{AdmissionUse, HoldCaller};
use crate::error::{Error, Result};
use crate::store::redis::{HoldReply, HoldRequest, Settle};
use crate::telemetry::{self, Backend};

impl Seatlock {
    /// Runs a Redis call if holds go to Redis and the breaker admits it (this call may be the
    /// half-open probe), and tells the breaker how it went. None: Redis must not be asked now.
    pub(super) async fn with_redis<T>(
        &self,
        call: impl Future<Output = Result<T>>,
    ) -> Option<Result<T>> {
        if self.settings.holds.backend != HoldStore::Redis || !self.breaker.admit(Instant::now()) {
            return None;
        }
        Some(self.note_redis(call.await))
    }

    /// As [`with_redis`](Self::with_redis) for a read: only while the breaker is closed, so a
    /// read never uses up the half-open probe (which a hold should be).
    pub(super) async fn read_redis<T>(
        &self,
        call: impl Future<Output = Result<T>>,
    ) -> Option<Result<T>> {
        if self.settings.holds.backend != HoldStore::Redis || !self.breaker.is_closed() {
            return None;
        }
        Some(self.note_redis(call.await))
    }

    /// Feeds a Redis call's outcome to the breaker and reacts to its transitions.
    fn note_redis<T>(&self, result: Result<T>) -> Result<T> {
        let transition = match &result {
            Err(e) if e.is_redis_outage() => self.breaker.on_failure(Instant::now()),
            _ => self.breaker.on_success(),
        };
        match transition {
            Transition::Opened => {
                let fallback = self.settings.holds.fallback;
                warn!(?fallback, "redis is failing; holds switch to the fallback");
                telemetry::record_backend(match fallback {
                    HoldFallback::Postgres => Backend::Postgres,
                    HoldFallback::Reject => Backend::None,
                });
            }
            Transition::Closed => {
                tracing::info!("redis is back; holds return to redis");
                telemetry::record_backend(Backend::Redis);
                if !self.reconciling.swap(true, Ordering::AcqRel) {
                    let seatlock = self.clone();
                    tokio::spawn(async move {
                        seatlock.reconcile_after_outage().await;
                        seatlock.reconciling.store(false, Ordering::Release);
                    });
                }
            }
            Transition::None => {}
        }
        result
    }

    /// After an outage, Redis's caches may be stale: drop them so they rebuild from Postgres, and
    /// copy live Postgres holds into Redis.
    async fn reconcile_after_outage(&self) {
        match self.redis.drop_inventories().await {
            Ok(n) => tracing::info!(events = n, "dropped cached inventories after the outage"),
            Err(e) => warn!(error = %e, "could not drop cached inventories"),
        }
        let holds = match self.pg.fetch_live_holds().await {
            Ok(h) => h,
            Err(e) => return warn!(error = %e, "could not read postgres holds to copy into redis"),
        };
        let mut copied = 0;
        for hold in holds {
            match self.copy_hold_into_redis(&hold).await {
                Ok(true) => copied += 1,
                Ok(false) => {}
                Err(e) => {
                    warn!(error = %e, hold.id = %hold.id, "postgres hold not copied into redis")
                }
            }
        }
        tracing::info!(holds = copied, "copied live postgres holds into redis");
    }

    /// Copies one Postgres hold into Redis; true if the copy stands.
    async fn copy_hold_into_redis(&self, hold: &LiveHold) -> Result<bool> {
        let (event, id) = (hold.event, hold.id);
        // The sales policy decided when the hold was taken; an admission's copy enters its
        // record of live holds (no cap refuses it), so the admission's cap counts it after.
        let office = HoldCaller {
            admission: hold.admission.as_ref().map(|buyer| AdmissionUse {
                buyer: buyer.clone(),
                max_live_holds: u32::MAX,
                queueit_event: None,
            }),
            ..HoldCaller::box_office()
        };
        let copy = HoldRequest {
            event,
            hold: id,
            user_id: &hold.user_id,
            ttl: hold.ttl,
            codes: &hold.seats,
            tiers: &hold.tiers,
            // No cap refuses a copy, but the copy enters the buyer's record, so the caps count it.
            caps: Caps {
                max_seats: Some(u32::MAX),
                max_live_holds: Some(u32::MAX),
            },
            rate: None,
            // Recorded in Postgres where it was taken.
            record: false,
            caller: &office,
            pools: &hold.pools,
        };
        let mut reply = self.redis.acquire_hold(&copy).await?;
        if reply == HoldReply::NoCache {
            self.rebuild_inventory(event).await?;
            reply = self.redis.acquire_hold(&copy).await?;
        }
        match reply {
            HoldReply::Decided {
                attempt: HoldAttempt::Held { .. },
                ..
            } => {}
            other => {
                warn!(hold.id = %id, outcome = ?other, "postgres hold not copied into redis");
                return Ok(false);
            }
        }
        // Released, confirmed or expired in Postgres while we copied: drop the copy.
        let alive = matches!(self.pg.fetch_hold(event, id).await, Ok(Some(h)) if h.alive);
        if !alive {
            self.redis
                .settle_hold(
                    event,
                    id,
                    &hold.user_id,
                    Settle::Drop,
                    (&hold.seats, &hold.tiers),
                    &[],
                    &[],
                )
                .await?;
        }
        Ok(alive)
    }
}

impl Seatlock {
    /// For a Redis hold id checked while Redis cannot be asked: Postgres can only say whether it
    /// was settled. With Redis down, "not in Postgres" means "unknown until Redis is back" (503),
    /// not "gone" (410). In the Postgres-only mode no hold is ever in Redis, so it means gone.
    pub(super) fn unknown_without_redis<T>(&self, settled: Result<T>) -> Result<T> {
        if self.settings.holds.backend == HoldStore::Postgres {
            settled
        } else {
            unknown_while_redis_is_down(settled)
        }
    }
}

fn unknown_while_redis_is_down<T>(settled: Result<T>) -> Result<T> {
    match settled {
        Err(Error::HoldGone) => Err(Error::Unavailable { what: "redis" }),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_unknown_to_postgres_is_unknown_while_redis_is_down() {
        assert!(matches!(
            unknown_while_redis_is_down::<()>(Err(Error::HoldGone)),
            Err(Error::Unavailable { what: "redis" })
        ));
        assert!(matches!(
            unknown_while_redis_is_down::<()>(Err(Error::NotHoldOwner)),
            Err(Error::NotHoldOwner)
        ));
        assert!(matches!(unknown_while_redis_is_down(Ok(1)), Ok(1)));
    }
}
