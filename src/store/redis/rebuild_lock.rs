//! One rebuild of an event's cache across instances: a short lock (`{e}:rebuilding`, SET NX PX
//! with a random token) taken by the instance that reads Postgres; the others wait for the cache.

use std::time::Duration;

use super::RedisStore;
use crate::domain::events::EventId;
use crate::error::Result;
use crate::telemetry::RedisOp;

/// Deletes the lock only if it still holds this token (it may have expired and been taken).
const UNLOCK: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

impl RedisStore {
    /// Takes the event's rebuild lock for `ttl`; false if another instance holds it.
    pub async fn lock_rebuild(&self, event: EventId, token: &str, ttl: Duration) -> Result<bool> {
        let key = self.keys(event).rebuilding();
        let ms = ttl.as_millis().max(1) as u64;
        self.run(RedisOp::RebuildLock, async |conn| {
            redis::cmd("SET")
                .arg(&key)
                .arg(token)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query_async::<Option<String>>(conn)
                .await
        })
        .await
        .map(|set| set.is_some())
    }

    /// Gives the lock back (if it is still this token's).
    pub async fn unlock_rebuild(&self, event: EventId, token: &str) -> Result<()> {
        let key = self.keys(event).rebuilding();
        self.run(RedisOp::RebuildLock, async |conn| {
            redis::cmd("EVAL")
                .arg(UNLOCK)
                .arg(1)
                .arg(&key)
                .arg(token)
                .query_async::<i64>(conn)
                .await
        })
        .await
        .map(|_| ())
    }

    /// Whether the event's inventory cache is there.
    pub async fn inventory_cached(&self, event: EventId) -> Result<bool> {
        let key = self.keys(event).seats();
        self.run(RedisOp::RebuildLock, async |conn| {
            redis::cmd("EXISTS")
                .arg(&key)
                .query_async::<i64>(conn)
                .await
        })
        .await
        .map(|n| n > 0)
    }
}
