//! The shared rate limit: one GCRA per caller in Redis (`lua/rate_limit.lua`), so every instance
//! counts the same requests.

use std::time::Duration;

use redis::Value;

use super::RedisStore;
use super::keys;
use super::scripts::{RATE_LIMIT, unexpected};
use crate::error::Result;
use crate::telemetry::RedisOp;

/// What the limiter said about one request.
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

impl RedisStore {
    /// Counts one request of `identity` against `per_second` with `burst`.
    pub async fn rate_limit(
        &self,
        scope: &str,
        identity: &str,
        per_second: u32,
        burst: u32,
    ) -> Result<RateVerdict> {
        let mut inv = RATE_LIMIT.prepare_invoke();
        let interval_us = 1_000_000 / u64::from(per_second.max(1));
        inv.key(keys::rate(&self.prefix, scope, identity))
            .arg(interval_us.max(1))
            .arg(burst.max(1));
        let Value::Array(items) = self.invoke(RedisOp::RateLimit, &inv).await? else {
            return Err(unexpected("rate_limit", "not an array"));
        };
        let int = |i: usize| match items.get(i) {
            Some(Value::Int(n)) => Ok((*n).max(0) as u64),
            other => Err(unexpected("rate_limit", &format!("{other:?}"))),
        };
        Ok(RateVerdict {
            allowed: int(0)? == 1,
            remaining: int(1)?.min(u64::from(u32::MAX)) as u32,
            retry_after: Duration::from_micros(int(2)?),
            reset: Duration::from_micros(int(3)?),
        })
    }
}
