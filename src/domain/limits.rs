//! Rate limits: whose requests are counted together, the quota they are counted against, what a
//! limiter answers, and the IETF `RateLimit-Policy` / `RateLimit` headers of an answer
//! (draft-ietf-httpapi-ratelimit-headers). No I/O here.

use std::time::Duration;

use crate::error::Error;

/// Whose requests one limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateScope {
    /// A buyer (JWT `sub`).
    User,
    /// An API key (by name).
    Key,
    /// A client address (`none` mode).
    Address,
}

impl RateScope {
    pub fn as_str(self) -> &'static str {
        match self {
            RateScope::User => "user",
            RateScope::Key => "key",
            RateScope::Address => "address",
        }
    }
}

/// A quota: requests per second with a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    /// The GCRA emission interval in microseconds.
    pub fn interval_us(self) -> u64 {
        (1_000_000 / u64::from(self.per_second.max(1))).max(1)
    }
}

/// One caller to count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateRequest {
    pub scope: RateScope,
    pub identity: String,
}

/// A request whose rate count is left to the work it does: the hold script counts it in the same
/// round trip, and records the result here; if nothing counted it, the gate does afterwards.
#[derive(Debug)]
pub struct DeferredCount {
    pub caller: RateRequest,
    counted: std::sync::OnceLock<RateCheck>,
}

impl DeferredCount {
    pub fn new(caller: RateRequest) -> Self {
        DeferredCount {
            caller,
            counted: std::sync::OnceLock::new(),
        }
    }

    /// Records the count (the first one stands).
    pub fn record(&self, check: RateCheck) {
        let _ = self.counted.set(check);
    }

    pub fn counted(&self) -> Option<RateCheck> {
        self.counted.get().copied()
    }
}

/// What a limiter said about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateVerdict {
    pub allowed: bool,
    /// Requests of the burst left now.
    pub remaining: u32,
    /// When refused: how long until one request is allowed.
    pub retry_after: Duration,
    /// How long until the burst is whole again.
    pub reset: Duration,
}

/// A verdict with the quota it was measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateCheck {
    pub scope: RateScope,
    pub rate: Rate,
    pub verdict: RateVerdict,
}

impl RateCheck {
    /// `RateLimit-Policy: "<scope>";q=<burst>;w=<seconds to refill it>` and
    /// `RateLimit: "<scope>";r=<remaining>;t=<seconds until whole again>`.
    pub fn headers(&self) -> (String, String) {
        let scope = self.scope.as_str();
        let window = self.rate.burst.div_ceil(self.rate.per_second.max(1)).max(1);
        let policy = format!("\"{scope}\";q={};w={window}", self.rate.burst);
        let wait = self.verdict.reset.max(self.verdict.retry_after);
        let reset = wait.as_millis().div_ceil(1000);
        let state = format!("\"{scope}\";r={};t={reset}", self.verdict.remaining);
        (policy, state)
    }

    /// Whole seconds to wait before retrying (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        self.verdict.retry_after.as_millis().div_ceil(1000).max(1) as u64
    }

    /// The 429 of a refused request.
    pub fn refusal(&self) -> Error {
        let (policy, state) = self.headers();
        Error::RateLimited {
            retry_after_s: self.retry_after_secs(),
            policy,
            state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(allowed: bool, remaining: u32, retry_ms: u64, reset_ms: u64) -> RateCheck {
        RateCheck {
            scope: RateScope::User,
            rate: Rate {
                per_second: 5,
                burst: 20,
            },
            verdict: RateVerdict {
                allowed,
                remaining,
                retry_after: Duration::from_millis(retry_ms),
                reset: Duration::from_millis(reset_ms),
            },
        }
    }

    #[test]
    fn headers_follow_the_ietf_draft() {
        let (policy, state) = check(true, 12, 0, 1_600).headers();
        assert_eq!(policy, "\"user\";q=20;w=4");
        assert_eq!(state, "\"user\";r=12;t=2");
    }

    #[test]
    fn a_refusal_says_when_to_retry() {
        let refused = check(false, 0, 150, 3_800);
        assert_eq!(refused.retry_after_secs(), 1);
        assert_eq!(check(false, 0, 2_001, 0).retry_after_secs(), 3);
        let Error::RateLimited {
            retry_after_s,
            policy,
            state,
        } = refused.refusal()
        else {
            panic!("a 429");
        };
        assert_eq!((retry_after_s, policy.as_str()), (1, "\"user\";q=20;w=4"));
        assert_eq!(state, "\"user\";r=0;t=4");
    }

    #[test]
    fn the_interval_is_never_zero() {
        let rate = |per_second| Rate {
            per_second,
            burst: 1,
        };
        assert_eq!(rate(5).interval_us(), 200_000);
        assert_eq!(rate(0).interval_us(), 1_000_000);
        assert_eq!(rate(2_000_000).interval_us(), 1);
    }
}
