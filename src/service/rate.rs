//! Rate limits per caller: a GCRA in Redis shared by every instance (a script of its own, or
//! counted inside the hold script for holds); while Redis cannot be asked (outage, or the
//! Postgres-only mode), each instance limits on its own with the same quota (`governor`), so a
//! caller gets at most one quota per instance then.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::Seatlock;
use crate::config::Limits;
use crate::domain::limits::{Rate, RateCheck, RateRequest, RateScope, RateVerdict};
use crate::telemetry::{self, RateScope as ScopeLabel};

type Local = DefaultKeyedRateLimiter<String, StateInformationMiddleware>;

/// The per-instance limiters used while Redis cannot be asked.
pub(super) struct LocalLimits {
    user: Option<Local>,
    key: Option<Local>,
}

impl LocalLimits {
    pub(super) fn new(limits: &Limits) -> Self {
        let make = |rate: Option<Rate>| {
            let rate = rate?;
            let per_second = NonZeroU32::new(rate.per_second)?;
            let burst = NonZeroU32::new(rate.burst).unwrap_or(per_second);
            let quota = Quota::per_second(per_second).allow_burst(burst);
            Some(RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>())
        };
        LocalLimits {
            user: make(limits.user_rate),
            key: make(limits.key_rate),
        }
    }

    fn check(&self, caller: &RateRequest) -> Option<RateVerdict> {
        let limiter = match caller.scope {
            RateScope::Key => self.key.as_ref()?,
            RateScope::User | RateScope::Address => self.user.as_ref()?,
        };
        Some(match limiter.check_key(&caller.identity) {
            Ok(state) => RateVerdict {
                allowed: true,
                remaining: state.remaining_burst_capacity(),
                retry_after: Duration::ZERO,
                reset: Duration::ZERO,
            },
            Err(not_until) => RateVerdict {
                allowed: false,
                remaining: 0,
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
                reset: Duration::ZERO,
            },
        })
    }

    /// Forgets callers whose bucket is whole again (keeps memory bounded).
    pub(super) fn shrink(&self) {
        for limiter in [&self.user, &self.key].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

impl Seatlock {
    /// The quota a caller's scope is counted against; None when its limit is off.
    pub(super) fn quota(&self, scope: RateScope) -> Option<Rate> {
        match scope {
            RateScope::Key => self.limits.key_rate,
            RateScope::User | RateScope::Address => self.limits.user_rate,
        }
    }

    /// Whether a rate limit applies to callers of this scope.
    pub fn is_rate_limited(&self, scope: RateScope) -> bool {
        self.quota(scope).is_some()
    }

    /// Counts one request of a caller; None when no limit applies to its scope.
    pub async fn check_rate(&self, caller: &RateRequest) -> Option<RateCheck> {
        let rate = self.quota(caller.scope)?;
        let verdict = match self.read_redis(self.redis.rate_limit(caller, rate)).await {
            Some(Ok(verdict)) => verdict,
            _ => self.local_limits.check(caller)?,
        };
        let check = RateCheck {
            scope: caller.scope,
            rate,
            verdict,
        };
        note_rate(&check);
        Some(check)
    }

    /// Whether the hold script may count a hold's rate limit itself: the rate key is in
    /// another hash slot than the event's keys, which a standalone Redis allows (on a cluster the
    /// rate is counted by its own script first: one more round trip).
    pub fn counts_rate_in_holds(&self) -> bool {
        (self.limits.user_rate.is_some() || self.limits.key_rate.is_some())
            && !self.redis.is_cluster()
    }

    /// Forgets idle callers of the per-instance limiters.
    pub fn shrink_local_limits(&self) {
        self.local_limits.shrink();
    }
}

/// Counts a refusal in the metrics.
pub(super) fn note_rate(check: &RateCheck) {
    if !check.verdict.allowed {
        telemetry::record_rate_limited(match check.scope {
            RateScope::User => ScopeLabel::User,
            RateScope::Key => ScopeLabel::Key,
            RateScope::Address => ScopeLabel::Address,
        });
    }
}
