//! Rate limits per caller: a GCRA in Redis shared by every instance; while Redis cannot be
//! asked (outage, or the Postgres-only mode), each instance limits on its own with the same
//! quota (`governor`), so a caller gets at most one quota per instance then.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::Seatlock;
use crate::config::{Limits, Rate};
use crate::store::redis::RateVerdict;
use crate::telemetry::{self, RateScope};

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

    fn check(&self, scope: RateScope, identity: &str) -> Option<RateVerdict> {
        let limiter = match scope {
            RateScope::Key => self.key.as_ref()?,
            RateScope::User | RateScope::Address => self.user.as_ref()?,
        };
        Some(match limiter.check_key(&identity.to_string()) {
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

/// A rate-limit answer with the quota it was measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateCheck {
    pub scope: RateScope,
    pub rate: Rate,
    pub verdict: RateVerdict,
}

impl Seatlock {
    /// Counts one request of a caller; None when no limit applies to its scope.
    pub async fn check_rate(&self, scope: RateScope, identity: &str) -> Option<RateCheck> {
        let rate = match scope {
            RateScope::Key => self.limits.key_rate?,
            RateScope::User | RateScope::Address => self.limits.user_rate?,
        };
        let shared = self
            .redis
            .rate_limit(scope.as_str(), identity, rate.per_second, rate.burst);
        let verdict = match self.read_redis(shared).await {
            Some(Ok(verdict)) => verdict,
            _ => self.local_limits.check(scope, identity)?,
        };
        if !verdict.allowed {
            telemetry::record_rate_limited(scope);
        }
        Some(RateCheck {
            scope,
            rate,
            verdict,
        })
    }

    /// Forgets idle callers of the per-instance limiters.
    pub fn shrink_local_limits(&self) {
        self.local_limits.shrink();
    }
}
