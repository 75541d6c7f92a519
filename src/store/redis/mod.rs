//! Redis: seat holds and the cached seat inventory. Every change to a hold or to the cached
//! inventory is one Lua script, so check-then-write is atomic; the one exception,
//! [`RedisStore::drop_inventories`] (SCAN + DEL), only deletes whole caches, which is safe in any
//! order because a missing cache is rebuilt from Postgres.
//!
//! - [`keys`]: the key layout (one hash tag per event).
//! - [`scripts`]: the Lua scripts and their replies.
//! - [`holds`]: take, read, pin, unpin and settle a hold; [`best`]: a best-available hold.
//! - [`inventory`]: rebuild the cached inventory, mark seats booked, read the held seats.
//! - [`rate`]: the shared rate limit (GCRA).
//! - [`changes`]: seat changes through pub/sub, for the live seat map.
//! - [`pool`]: the connection pool (shared multiplexed connections).

mod best;
mod changes;
mod extend;
mod holds;
mod inventory;
mod keys;
mod pool;
mod rate;
mod rebuild_lock;
mod scripts;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use deadpool::Runtime;
use redis::{RedisResult, Value};

pub use best::BestRequest;
pub use changes::{ChangeFeed, FeedMessage, WATCH_TTL};
pub use holds::{HoldReply, HoldRequest, Settle};
pub use inventory::{Rebuild, TierHeld};

use self::keys::Keys;
use self::pool::{ConnectionManager, Pool};
use crate::config::RedisSettings;
use crate::domain::events::EventId;
use crate::error::{Error, Result};
use crate::telemetry::{self, RedisOp};

/// The pool of multiplexed connections plus the key prefix; cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    pool: Pool,
    prefix: Arc<str>,
    in_flight: Arc<AtomicI64>,
    /// For the pub/sub connection of [`ChangeFeed`] (a secret: never logged).
    url: Arc<str>,
    connect_timeout: Duration,
}

/// The pool's connections now.
#[derive(Debug, Clone, Copy)]
pub struct RedisPoolStats {
    pub open: usize,
    pub max: usize,
    pub in_flight: i64,
}

impl RedisStore {
    pub fn new(settings: &RedisSettings) -> Result<Self> {
        let conn_config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(settings.connect_timeout_ms)))
            .set_response_timeout(Some(Duration::from_millis(settings.response_timeout_ms)));
        let manager = ConnectionManager::new(&settings.url, conn_config)?;
        let wait = Some(Duration::from_millis(settings.pool_wait_timeout_ms));
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .wait_timeout(wait)
            .create_timeout(Some(Duration::from_millis(settings.connect_timeout_ms)))
            .recycle_timeout(Some(Duration::from_millis(settings.response_timeout_ms)))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| Error::Internal(format!("redis pool: {e}")))?;
        Ok(Self {
            pool,
            prefix: settings.key_prefix.as_str().into(),
            in_flight: Arc::default(),
            url: settings.url.as_str().into(),
            connect_timeout: Duration::from_millis(settings.connect_timeout_ms),
        })
    }

    /// Closes the pool: calls after this fail at once.
    pub fn close(&self) {
        self.pool.close();
    }

    pub fn pool_stats(&self) -> RedisPoolStats {
        let status = self.pool.status();
        RedisPoolStats {
            open: status.size,
            max: status.max_size,
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }

    fn keys(&self, event: EventId) -> Keys {
        Keys::new(&self.prefix, event)
    }

    /// Runs one call on a pooled connection, timing it under `op`; a connection-level failure
    /// marks the connection for replacement.
    async fn run<T, F>(&self, op: RedisOp, call: F) -> Result<T>
    where
        F: AsyncFnOnce(&mut redis::aio::MultiplexedConnection) -> RedisResult<T>,
    {
        // Boxed too: the pool's checkout carries the future that opens a connection.
        let mut lease = Box::pin(pool::lease(&self.pool)).await?;
        let started = Instant::now();
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        // Boxed: the redis crate's call futures are large (an EVALSHA with its NOSCRIPT reload is
        // kilobytes), and every future that awaits one would carry that size, copied by each
        // layer that boxes a request's future.
        let result = Box::pin(call(&mut lease.conn)).await;
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        telemetry::record_redis(op, started.elapsed(), result.is_ok());
        if let Err(e) = &result {
            lease.report(e);
        }
        Ok(result?)
    }

    /// Runs a script invocation (EVALSHA, reloading the script on NOSCRIPT).
    async fn invoke(&self, op: RedisOp, inv: &redis::ScriptInvocation<'_>) -> Result<Value> {
        self.run(op, async |conn| inv.invoke_async::<Value>(conn).await)
            .await
    }

    pub async fn ping(&self) -> Result<()> {
        self.run(RedisOp::Ping, async |conn| {
            redis::cmd("PING").query_async::<String>(conn).await
        })
        .await?;
        Ok(())
    }
}
