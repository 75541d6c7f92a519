//! The shared rate limit: one GCRA per caller in Redis (`lua/rate_limit.lua`), so every instance
//! counts the same requests.

use std::time::Duration;

use redis::Value;

use super::RedisStore;
use super::keys;
use super::scripts::{RATE_LIMIT, unexpected};
use crate::domain::limits::{Rate, RateRequest, RateVerdict};
use crate::error::Result;
use crate::telemetry::RedisOp;

impl RedisStore {
    /// The rate-limit key of a caller.
    pub(super) fn rate_key(&self, caller: &RateRequest) -> String {
        keys::rate(&self.prefix, caller.scope.as_str(), &caller.identity)
    }

    /// Counts one request of a caller against its quota (see `lua/rate_limit.lua`).
    pub async fn rate_limit(&self, caller: &RateRequest, rate: Rate) -> Result<RateVerdict> {
        let mut inv = RATE_LIMIT.prepare_invoke();
        inv.key(self.rate_key(caller))
            .arg(rate.interval_us())
            .arg(rate.burst.max(1));
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
