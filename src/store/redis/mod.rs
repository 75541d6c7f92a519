//! Redis: seat holds and the cached seat inventory. Every change to a hold or to the cached
//! inventory is one Lua script, so check-then-write is atomic; the one exception,
//! [`RedisStore::drop_inventories`] (SCAN + DEL), only deletes whole caches, which is safe in any
//! order because a missing cache is rebuilt from Postgres.
//!
//! - [`keys`]: the key layout (one hash tag per event).
//! - [`scripts`]: the Lua scripts and their replies.
//! - [`holds`]: take, read, pin, unpin and settle a hold ([`hold_plain`]: the plain path of a
//!   take; [`hold_head`]: the keys and arguments every hold script starts with); [`best`]: a
//!   best-available hold.
//! - [`inventory`]: rebuild the cached inventory, mark seats booked, read the held seats.
//! - [`blocks`]: blocked seats in the cache.
//! - [`rate`]: the shared rate limit (GCRA).
//! - [`changes`]: seat changes through pub/sub, for the live seat map ([`feed_cluster`]: its
//!   sharded pub/sub feed on a cluster).
//! - [`history`]: the event's history stream: read with the Redis clock, trimmed, found.
//! - [`pool`]: the connection pool (shared multiplexed connections).

mod best;
mod blocks;
mod changes;
mod extend;
mod feed;
mod feed_cluster;
mod history;
mod hold_fields;
mod hold_head;
mod hold_plain;
mod holds;
mod inventory;
mod keys;
mod policy;
mod pool;
mod rate;
mod rebuild_lock;
mod scan;
mod scripts;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use deadpool::Runtime;
use redis::{Cmd, ErrorKind, RedisResult, Script, ServerErrorKind, Value};
use tracing::Instrument;

pub use best::BestRequest;
pub use changes::{ChangeFeed, FeedMessage, WATCH_TTL};
pub use history::HistoryRead;
pub use holds::{HoldReply, HoldRequest, Settle};

pub use inventory::{Rebuild, TierHeld};

use self::keys::Keys;
pub use self::pool::RedisConnection;
use self::pool::{ConnectionManager, Pool};
use crate::config::{RedisMode, RedisSettings};
use crate::domain::events::EventId;
use crate::error::{Error, Result};
use crate::telemetry::{self, RedisOp};

/// The pool of multiplexed connections plus the key prefix; cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    pool: Pool,
    prefix: Arc<str>,
    in_flight: Arc<AtomicI64>,
    /// For the pub/sub connection of [`ChangeFeed`] (the URLs are secrets: never logged).
    settings: Arc<RedisSettings>,
    /// Events whose history stream this instance appended to since the last flush.
    touched: Arc<std::sync::Mutex<std::collections::HashSet<EventId>>>,
    /// Whether the scripts append to the history streams (`history.enabled`).
    record: bool,
    /// Events whose holds need `hold.lua` rather than `hold_plain.lua`.
    full_events: hold_plain::FullEvents,
}

/// A Redis Cluster's state (`CLUSTER INFO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClusterHealth {
    /// `cluster_state:ok`: every slot is served.
    pub ok: bool,
    /// Slots served by a master that is up.
    pub slots_ok: u32,
    /// Slots whose master is failing.
    pub slots_fail: u32,
    /// Masters serving slots.
    pub size: u32,
    /// Nodes known, replicas included.
    pub known_nodes: u32,
}

impl ClusterHealth {
    fn parse(info: &str) -> Self {
        let mut health = ClusterHealth::default();
        for line in info.lines() {
            let Some((field, value)) = line.trim().split_once(':') else {
                continue;
            };
            let n = || value.parse().unwrap_or(0);
            match field {
                "cluster_state" => health.ok = value == "ok",
                "cluster_slots_ok" => health.slots_ok = n(),
                "cluster_slots_fail" => health.slots_fail = n(),
                "cluster_size" => health.size = n(),
                "cluster_known_nodes" => health.known_nodes = n(),
                _ => {}
            }
        }
        health
    }
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
        let manager = ConnectionManager::new(settings)?;
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
            settings: Arc::new(settings.clone()),
            touched: Arc::default(),
            record: true,
            full_events: Default::default(),
        })
    }

    /// Whether the scripts record their changes in the events' history streams (on unless
    /// `history.enabled` is false).
    pub fn recording(self, record: bool) -> Self {
        Self { record, ..self }
    }

    /// The scripts' last argument: "1" to append to the history stream, "0" not to.
    pub(super) fn record_arg(&self) -> &'static str {
        if self.record { "1" } else { "0" }
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.settings.mode == RedisMode::Cluster
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

    /// Runs one call on a pooled connection, timing it under `op` (and, with trace export on,
    /// in a client span named by `op`); a connection-level failure marks the connection for
    /// replacement.
    async fn run<T, F>(&self, op: RedisOp, call: F) -> Result<T>
    where
        F: AsyncFnOnce(&mut RedisConnection) -> RedisResult<T>,
    {
        // Boxed too: the pool's checkout carries the future that opens a connection.
        let mut lease = match Box::pin(pool::lease(&self.pool)).await {
            Ok(lease) => lease,
            Err(e) => return Err(lease_failed(op, e)),
        };
        let started = Instant::now();
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        // Boxed: the redis crate's call futures are large (an EVALSHA with its NOSCRIPT reload is
        // kilobytes), and every future that awaits one would carry that size, copied by each
        // layer that boxes a request's future.
        let call = Box::pin(call(&mut lease.conn));
        // The off branch is the bare `.await`; the traced one is a boxed future of its own. The
        // error mark written inline here cost the hot path (3 pairs of the cost table: plain
        // 0.43x against 0.50x, refusals 0.48x against 0.55x): the same lesson as the hold span's
        // (bench/README.md).
        let result = match telemetry::redis_span(op) {
            Some(span) => Box::pin(traced(call, span)).await,
            None => call.await,
        };
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

    /// Runs an EVALSHA built by [`scripts::evalsha`], loading the script and trying again on NOSCRIPT
    /// (as `ScriptInvocation` does).
    async fn invoke_cmd(&self, op: RedisOp, script: &Script, cmd: &Cmd) -> Result<Value> {
        self.run(op, async |conn| {
            match cmd.query_async::<Value>(conn).await {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    script.load_async(conn).await?;
                    cmd.query_async::<Value>(conn).await
                }
                other => other,
            }
        })
        .await
    }

    /// The cluster's state as one of its nodes sees it (`CLUSTER INFO`); None on a standalone
    /// Redis.
    pub async fn cluster_health(&self) -> Result<Option<ClusterHealth>> {
        if !self.is_cluster() {
            return Ok(None);
        }
        let info = self
            .run(RedisOp::Ping, async |conn| {
                redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async::<String>(conn)
                    .await
            })
            .await?;
        Ok(Some(ClusterHealth::parse(&info)))
    }

    pub async fn ping(&self) -> Result<()> {
        self.run(RedisOp::Ping, async |conn| {
            redis::cmd("PING").query_async::<String>(conn).await
        })
        .await?;
        Ok(())
    }
}

/// A call with its span (export on): a failed one marks it.
#[inline(never)]
async fn traced<T>(
    call: impl std::future::Future<Output = RedisResult<T>>,
    span: tracing::Span,
) -> RedisResult<T> {
    let result = call.instrument(span.clone()).await;
    if let Err(e) = &result {
        telemetry::mark_failed(&span, failure_type(e));
    }
    result
}

/// No connection: the call's span (export on) says so, and ends at once.
#[cold]
#[inline(never)]
fn lease_failed(op: RedisOp, e: crate::error::RedisPoolError) -> crate::error::Error {
    if let Some(span) = telemetry::redis_span(op) {
        telemetry::mark_failed(&span, "connection");
    }
    e.into()
}

/// The `error.type` of a failed call's span: a short class, never the message.
fn failure_type(e: &redis::RedisError) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        "connection"
    } else {
        "response"
    }
}

#[cfg(test)]
mod tests {
    use super::ClusterHealth;

    #[test]
    fn cluster_info_is_read() {
        let info = "cluster_state:fail\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:10923\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:5461\r\ncluster_known_nodes:6\r\ncluster_size:3\r\n";
        let h = ClusterHealth::parse(info);
        assert_eq!(
            h,
            ClusterHealth {
                ok: false,
                slots_ok: 10923,
                slots_fail: 5461,
                size: 3,
                known_nodes: 6
            }
        );
        assert!(ClusterHealth::parse("cluster_state:ok\r\n").ok);
    }
}
