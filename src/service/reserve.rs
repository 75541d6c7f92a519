//! Reserve: take an all-or-nothing hold for a buyer, on the seats and tier units it names or on
//! the best block of seats together (best-available), in Redis (one script), or in Postgres when
//! so configured or while the breaker says Redis is down.

use tracing::Span;

use super::Seatlock;
use super::rate::note_rate;
use crate::config::HoldFallback;
use crate::domain::best::BestFilter;
use crate::domain::events::EventId;
use crate::domain::holds::{Contention, HoldAttempt, HoldGroupId, HoldStore, HoldTaken, refusal};
use crate::domain::limits::{DeferredCount, Rate, RateCheck};
use crate::domain::policy::HoldCaller;
use crate::domain::tiers::{TierLine, units};
use crate::error::{Error, Result, UserLimitKind};
use crate::store::redis::{BestRequest, HoldReply, HoldRequest};
use crate::telemetry::{self, HoldRefusal, UserLimitLabel};

/// Tries of the Redis hold script: the second follows a rebuild of a missing inventory cache.
const REDIS_TRIES: usize = 2;

/// What one reserve asks for.
#[derive(Debug, Clone, Copy)]
pub enum Wanted<'a> {
    /// These seats and tier units.
    Named {
        codes: &'a [String],
        tiers: &'a [TierLine],
    },
    /// The best `count` seats together that pass `filter`.
    Best { count: u32, filter: &'a BestFilter },
}

impl Wanted<'_> {
    /// Seats and tier units asked for, and tier units alone.
    fn units(&self) -> (u64, u64) {
        match self {
            Wanted::Named { codes, tiers } => (units(codes.len(), tiers), units(0, tiers)),
            Wanted::Best { count, .. } => (u64::from(*count), 0),
        }
    }
}

impl Seatlock {
    /// Takes an all-or-nothing hold for `user_id` on what `wanted` says. `key_use` (one use of an
    /// Idempotency-Key) makes the hold id deterministic, so a re-executed keyed request finds the
    /// hold it already took.
    /// `count`: the request's rate count, left to the hold script (one round trip for both);
    /// a hold that does not reach Redis leaves it to the caller.
    pub async fn reserve(
        &self,
        event: EventId,
        user_id: &str,
        wanted: Wanted<'_>,
        key_use: Option<&str>,
        count: Option<&DeferredCount>,
        caller: &HoldCaller,
    ) -> Result<HoldTaken> {
        let (all_units, tier_units) = wanted.units();
        telemetry::record_hold_attempt(all_units, tier_units);
        let asked = wanted;
        let make_id = |store| match key_use {
            Some(k) => HoldGroupId::derived(event, store, user_id, k),
            None => HoldGroupId::new(event, store),
        };
        let in_redis = self.reserve_in_redis(
            event,
            make_id(HoldStore::Redis),
            user_id,
            asked,
            count,
            caller,
        );
        let result = match self.with_redis(in_redis).await {
            Some(Err(e)) if e.is_redis_outage() => Err(e),
            Some(decided) => return self.count_reserve(decided, tier_units),
            None => Err(Error::Unavailable { what: "redis" }),
        };
        // Not held in Redis: the hold script did not count this request, so count it here.
        if let Some(count) = count
            && count.counted().is_none()
            && let Some(check) = Box::pin(self.check_rate(&count.caller)).await
        {
            count.record(check);
            if !check.verdict.allowed {
                return Err(check.refusal());
            }
        }
        // The Postgres-only mode, or the fallback while Redis is down.
        let outcome = match (self.settings.holds.backend, self.settings.holds.fallback) {
            (HoldStore::Redis, HoldFallback::Reject) => result,
            _ => {
                let id = make_id(HoldStore::Postgres);
                // Boxed, as every branch off the hot path here: the reserve future stays small
                // (the router's layers move it into boxes on every request).
                Box::pin(self.reserve_in_postgres(event, id, user_id, asked, caller)).await
            }
        };
        self.count_reserve(outcome, tier_units)
    }

    /// Counts a reserve's outcome; a refusal by other buyers was counted where it was decided.
    fn count_reserve(&self, result: Result<HoldTaken>, tier_units: u64) -> Result<HoldTaken> {
        match &result {
            Ok(hold) => {
                telemetry::record_hold_acquired(tier_units);
                Span::current().record("hold.id", tracing::field::display(hold.id));
            }
            Err(Error::SeatsNotFound { .. } | Error::TiersNotFound { .. }) => {
                telemetry::record_hold_refused(HoldRefusal::UnknownSeat)
            }
            Err(_) => {}
        }
        result
    }

    async fn reserve_in_redis(
        &self,
        event: EventId,
        id: HoldGroupId,
        user_id: &str,
        asked: Wanted<'_>,
        count: Option<&DeferredCount>,
        caller: &HoldCaller,
    ) -> Result<HoldTaken> {
        let ttl = self.settings.holds.ttl();
        // Counted by the script unless something counted this request already.
        let mut rate = count
            .filter(|c| c.counted().is_none())
            .and_then(|c| Some((c, self.quota(c.caller.scope)?)));
        let counted = |verdict, (count, rate): (&DeferredCount, Rate)| {
            let check = RateCheck {
                scope: count.caller.scope,
                rate,
                verdict,
            };
            note_rate(&check);
            count.record(check);
            check
        };
        for _ in 0..REDIS_TRIES {
            let quota = rate.map(|(c, r)| (&c.caller, r));
            let (reply, seats) = match asked {
                Wanted::Named { codes, tiers } => {
                    let request = HoldRequest {
                        event,
                        hold: id,
                        user_id,
                        ttl,
                        codes,
                        tiers,
                        caps: self.caps(),
                        rate: quota,
                        record: true,
                        caller,
                        pools: &[],
                    };
                    (self.redis.acquire_hold(&request).await?, codes.to_vec())
                }
                Wanted::Best { count, filter } => {
                    let request = BestRequest {
                        event,
                        hold: id,
                        user_id,
                        ttl,
                        count,
                        filter,
                        caps: self.caps(),
                        rate: quota,
                        caller,
                    };
                    self.redis.acquire_best(&request).await?
                }
            };
            match reply {
                HoldReply::NoCache => {
                    // A rebuild reads the event from Postgres: count the request before it (an
                    // unknown event costs a rebuild attempt every time), and not again after.
                    if let Some((count, _)) = rate.take()
                        && let Some(check) = Box::pin(self.check_rate(&count.caller)).await
                    {
                        count.record(check);
                        if !check.verdict.allowed {
                            return Err(check.refusal());
                        }
                    }
                    Box::pin(self.rebuild_inventory(event)).await?
                }
                HoldReply::RateLimited(verdict) => match rate {
                    Some(rate) => return Err(counted(verdict, rate).refusal()),
                    None => return Err(Error::Internal("rate-limited without a limit".into())),
                },
                HoldReply::Decided {
                    attempt,
                    expired_trimmed,
                    rate: verdict,
                } => {
                    if let (Some(verdict), Some(rate)) = (verdict, rate) {
                        counted(verdict, rate);
                    }
                    telemetry::record_seats_expired(expired_trimmed);
                    return decide_attempt(id, asked, attempt, seats);
                }
            }
        }
        // The cache vanished again right after its rebuild (Redis restarted or flushed once
        // more): an outage to retry after, not a bug.
        Err(Error::Unavailable {
            what: "the inventory cache (it was lost again right after its rebuild)",
        })
    }

    async fn reserve_in_postgres(
        &self,
        event: EventId,
        id: HoldGroupId,
        user_id: &str,
        asked: Wanted<'_>,
        caller: &HoldCaller,
    ) -> Result<HoldTaken> {
        let ttl = self.settings.holds.ttl();
        let (attempt, seats, tiers) = match asked {
            Wanted::Named { codes, tiers } => {
                let attempt = self
                    .pg
                    .insert_hold(event, id, user_id, codes, tiers, ttl, self.caps(), caller)
                    .await?;
                (attempt, codes.to_vec(), tiers)
            }
            Wanted::Best { count, filter } => {
                let (attempt, seats) = self
                    .pg
                    .insert_best_hold(event, id, user_id, count, filter, ttl, self.caps(), caller)
                    .await?;
                (attempt, seats, &[][..])
            }
        };
        if matches!(attempt, HoldAttempt::Held { .. }) {
            self.announce(event, &seats, tiers).await;
        }
        match decide_attempt(id, asked, attempt, seats) {
            // Unknown seats or tiers of an event that does not exist: the event is unknown.
            Err(Error::SeatsNotFound { .. } | Error::TiersNotFound { .. })
                if self.pg.fetch_event(event).await?.is_none() =>
            {
                Err(Error::EventNotFound)
            }
            other => other,
        }
    }
}

/// The result of a hold attempt (`seats`: the seats held, when held); a refusal by other buyers
/// is counted by reason here.
fn decide_attempt(
    id: HoldGroupId,
    asked: Wanted<'_>,
    attempt: HoldAttempt,
    seats: Vec<String>,
) -> Result<HoldTaken> {
    match attempt {
        HoldAttempt::Held { expires_at_ms } => Ok(HoldTaken {
            id,
            expires_at_ms,
            seats,
        }),
        HoldAttempt::NoBlock { available } => {
            telemetry::record_hold_refused(HoldRefusal::NoBlock);
            Err(Error::NoAdjacentSeats { available })
        }
        HoldAttempt::Unknown(seats) => Err(Error::SeatsNotFound { seats }),
        HoldAttempt::UnknownTiers(tiers) => Err(Error::TiersNotFound { tiers }),
        HoldAttempt::UserLimit {
            limit,
            max,
            current,
        } => {
            telemetry::record_user_limit(match limit {
                UserLimitKind::Seats => UserLimitLabel::Seats,
                UserLimitKind::LiveHolds => UserLimitLabel::LiveHolds,
                UserLimitKind::AdmissionLiveHolds => UserLimitLabel::AdmissionLiveHolds,
            });
            Err(Error::UserLimit {
                limit,
                max,
                current,
            })
        }
        HoldAttempt::Unavailable {
            booked,
            mut held,
            short,
            blocked,
            channel,
        } => {
            let (codes, tiers) = match asked {
                Wanted::Named { codes, tiers } => (codes, tiers),
                Wanted::Best { .. } => (&[][..], &[][..]),
            };
            let only_channel = !channel.is_empty() && booked.is_empty() && held.is_empty();
            held.extend(channel);
            let (contention, err) = refusal(codes, tiers, &booked, &held, short);
            let only_blocked = !blocked.is_empty() && booked.iter().all(|b| blocked.contains(b));
            telemetry::record_hold_refused(match contention {
                Contention::Booked if only_blocked => HoldRefusal::Blocked,
                Contention::Held if only_channel => HoldRefusal::Channel,
                Contention::Held => HoldRefusal::Held,
                Contention::Booked => HoldRefusal::Booked,
            });
            Err(err)
        }
        HoldAttempt::NotOpen { opens_at_ms } => {
            telemetry::record_hold_refused(HoldRefusal::NotOpen);
            Err(Error::SalesNotOpen { opens_at_ms })
        }
        HoldAttempt::Closed { closed_at_ms } => {
            telemetry::record_hold_refused(HoldRefusal::Closed);
            Err(Error::SalesClosed { closed_at_ms })
        }
        HoldAttempt::AdmissionRefused => {
            telemetry::record_hold_refused(HoldRefusal::Admission);
            Err(Error::AdmissionRequired)
        }
    }
}
