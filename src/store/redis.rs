//! Seat holds in Redis. Every mutation is one Lua script, so check-then-write is atomic; every
//! key of an event shares the hash tag `{e:<id>}`, so the scripts also run on Redis Cluster.
//!
//! Key layout, under the configured prefix `P`:
//! - `P:{e:ID}:seats`        SET of the event's seat codes (cache of Postgres, rebuilt on miss)
//! - `P:{e:ID}:booked`       SET of booked seat codes (cache of Postgres)
//! - `P:{e:ID}:held`         ZSET seat code -> hold expiry in ms (Redis clock), for counts
//! - `P:{e:ID}:seat:CODE`    holdGroupId holding the seat, with the hold's TTL
//! - `P:{e:ID}:hold:UUID`    HASH {user, exp, seats}, with the hold's TTL

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use deadpool::Runtime;
use redis::{RedisResult, Script, Value};

use crate::config::RedisSettings;
use crate::error::{Error, Result};
use crate::events::EventId;
use crate::holds::HoldGroupId;
use crate::store::redis_pool::{self, ConnectionManager, Pool};

static HOLD: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../../lua/hold.lua")));
static PIN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../../lua/pin.lua")));
static SETTLE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../lua/settle.lua")));
static REBUILD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../lua/rebuild.lua")));
static MARK_BOOKED: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../lua/mark_booked.lua")));
static UNPIN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../../lua/unpin.lua")));
static HELD: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../../lua/held.lua")));

/// Pool of multiplexed connections plus the key prefix.
#[derive(Clone)]
pub struct RedisStore {
    pool: Pool,
    prefix: Arc<str>,
    in_flight: Arc<AtomicI64>,
}

/// Result of `hold.lua`.
#[derive(Debug, PartialEq, Eq)]
pub enum HoldAttempt {
    Held {
        expires_at_ms: i64,
        expired_trimmed: i64,
    },
    NoCache,
    Unknown(Vec<String>),
    Unavailable {
        booked: Vec<String>,
        held: Vec<String>,
    },
}

/// Result of `rebuild.lua`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuild {
    Written,
    AlreadyCached,
    /// The booked seats changed after the Postgres snapshot: take a new one.
    Stale,
}

/// Result of `pin.lua` and of `settle.lua` in release mode.
#[derive(Debug, PartialEq, Eq)]
pub enum HoldCheck {
    Ok,
    Gone,
    NotOwner,
    /// A confirm of this hold is in progress (release only).
    Pinned,
}

/// A live hold as stored in Redis.
#[derive(Debug, Clone)]
pub struct HoldRecord {
    pub user_id: String,
    pub seats: Vec<String>,
    pub expires_at_ms: i64,
}

/// How `settle.lua` ends a hold.
#[derive(Debug, Clone, Copy)]
pub enum Settle<'a> {
    /// The owner released it: checked against the owner, no seat becomes booked.
    Release { user_id: &'a str },
    /// Its booking committed in Postgres: unconditional, the seats become booked.
    Book,
    /// The Postgres guard refused its booking: unconditional, nothing becomes booked.
    Drop,
}

/// Keys of one event.
struct Keys(String);

impl Keys {
    fn seats(&self) -> String {
        format!("{}:seats", self.0)
    }
    fn booked(&self) -> String {
        format!("{}:booked", self.0)
    }
    fn generation(&self) -> String {
        format!("{}:gen", self.0)
    }
    fn held(&self) -> String {
        format!("{}:held", self.0)
    }
    fn seat(&self, code: &str) -> String {
        format!("{}:seat:{code}", self.0)
    }
    fn hold(&self, id: HoldGroupId) -> String {
        format!("{}:hold:{id}", self.0)
    }
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
        })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Redis calls sent and not yet answered.
    pub fn calls_in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn keys(&self, event: EventId) -> Keys {
        Keys(format!("{}:{{e:{}}}", self.prefix, event.0))
    }

    /// Runs one call on a pooled connection, timing it under `op`; a connection-level failure
    /// marks the connection for replacement.
    async fn run<T, F>(&self, op: &'static str, call: F) -> Result<T>
    where
        F: AsyncFnOnce(&mut redis::aio::MultiplexedConnection) -> RedisResult<T>,
    {
        let mut lease = redis_pool::lease(&self.pool).await?;
        let started = Instant::now();
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let result = call(&mut lease.conn).await;
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        crate::telemetry::record_redis(op, started.elapsed(), result.is_ok());
        if let Err(e) = &result {
            lease.report(e);
        }
        Ok(result?)
    }

    /// Runs a script invocation (EVALSHA, reloading the script on NOSCRIPT).
    async fn invoke(&self, op: &'static str, inv: &redis::ScriptInvocation<'_>) -> Result<Value> {
        self.run(op, async |conn| inv.invoke_async::<Value>(conn).await)
            .await
    }

    pub async fn ping(&self) -> Result<()> {
        self.run("ping", async |conn| {
            redis::cmd("PING").query_async::<String>(conn).await
        })
        .await?;
        Ok(())
    }

    /// Takes an all-or-nothing hold (see `lua/hold.lua`).
    pub async fn acquire_hold(
        &self,
        event: EventId,
        hold: HoldGroupId,
        user_id: &str,
        ttl: Duration,
        codes: &[String],
    ) -> Result<HoldAttempt> {
        let k = self.keys(event);
        let mut inv = HOLD.prepare_invoke();
        inv.key(k.seats())
            .key(k.booked())
            .key(k.held())
            .key(k.hold(hold));
        for code in codes {
            inv.key(k.seat(code));
        }
        inv.arg(hold.to_string())
            .arg(user_id)
            .arg(ttl.as_millis() as u64);
        for code in codes {
            inv.arg(code);
        }
        let (tag, rest) = tagged(self.invoke("hold", &inv).await?)?;
        match tag.as_str() {
            "OK" => Ok(HoldAttempt::Held {
                expires_at_ms: int_at(&rest, 0)?,
                expired_trimmed: int_at(&rest, 1)?,
            }),
            "NOCACHE" => Ok(HoldAttempt::NoCache),
            "UNKNOWN" => Ok(HoldAttempt::Unknown(strings_at(&rest, 0)?)),
            "UNAVAILABLE" => Ok(HoldAttempt::Unavailable {
                booked: strings_at(&rest, 0)?,
                held: strings_at(&rest, 1)?,
            }),
            other => Err(unexpected("hold", other)),
        }
    }

    /// Loads an event's inventory into Redis unless another caller already did.
    pub async fn rebuild_inventory(
        &self,
        event: EventId,
        generation: &str,
        seats: &[String],
        booked: &[String],
    ) -> Result<Rebuild> {
        let k = self.keys(event);
        let mut inv = REBUILD.prepare_invoke();
        inv.key(k.seats())
            .key(k.booked())
            .key(k.generation())
            .arg(generation)
            .arg(seats.len());
        for code in seats.iter().chain(booked) {
            inv.arg(code);
        }
        Ok(match self.invoke("rebuild", &inv).await? {
            Value::Int(1) => Rebuild::Written,
            Value::Int(-1) => Rebuild::Stale,
            _ => Rebuild::AlreadyCached,
        })
    }

    /// The event's cache generation, read before a rebuild's Postgres snapshot (see rebuild.lua).
    pub async fn inventory_generation(&self, event: EventId) -> Result<String> {
        let key = self.keys(event).generation();
        let value = self
            .run("generation", async |conn| {
                redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Option<String>>(conn)
                    .await
            })
            .await?;
        Ok(value.unwrap_or_else(|| "0".to_string()))
    }

    /// Reads a live hold, or None when it expired, was settled or never existed.
    pub async fn fetch_hold(
        &self,
        event: EventId,
        hold: HoldGroupId,
    ) -> Result<Option<HoldRecord>> {
        let key = self.keys(event).hold(hold);
        let fields = self
            .run("fetch_hold", async |conn| {
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg("user")
                    .arg("seats")
                    .arg("exp")
                    .query_async::<(Option<String>, Option<String>, Option<i64>)>(conn)
                    .await
            })
            .await?;
        Ok(match fields {
            (Some(user_id), Some(seats), Some(expires_at_ms)) => Some(HoldRecord {
                user_id,
                seats: seats.split('\n').map(str::to_string).collect(),
                expires_at_ms,
            }),
            _ => None,
        })
    }

    /// Checks owner and liveness and extends the hold to last at least `grace` (see `lua/pin.lua`).
    pub async fn pin_hold(
        &self,
        event: EventId,
        hold: HoldGroupId,
        user_id: &str,
        seats: &[String],
        grace: Duration,
        token: &str,
    ) -> Result<HoldCheck> {
        let k = self.keys(event);
        let mut inv = PIN.prepare_invoke();
        inv.key(k.hold(hold)).key(k.held());
        for code in seats {
            inv.key(k.seat(code));
        }
        inv.arg(hold.to_string())
            .arg(user_id)
            .arg(grace.as_millis() as u64)
            .arg(token);
        for code in seats {
            inv.arg(code);
        }
        hold_check("pin", self.invoke("pin", &inv).await?)
    }

    /// Clears the confirm-in-progress mark of a hold whose confirm failed, so its owner may
    /// release it again.
    pub async fn unpin_hold(&self, event: EventId, hold: HoldGroupId, token: &str) -> Result<()> {
        let mut inv = UNPIN.prepare_invoke();
        inv.key(self.keys(event).hold(hold)).arg(token);
        self.invoke("unpin", &inv).await?;
        Ok(())
    }

    /// Ends a hold (see `lua/settle.lua`).
    pub async fn settle_hold(
        &self,
        event: EventId,
        hold: HoldGroupId,
        how: Settle<'_>,
        seats: &[String],
    ) -> Result<HoldCheck> {
        let k = self.keys(event);
        let mut inv = SETTLE.prepare_invoke();
        inv.key(k.hold(hold))
            .key(k.seats())
            .key(k.booked())
            .key(k.held());
        for code in seats {
            inv.key(k.seat(code));
        }
        inv.arg(hold.to_string());
        match how {
            Settle::Release { user_id } => inv.arg("release").arg(user_id),
            Settle::Book => inv.arg("book").arg(""),
            Settle::Drop => inv.arg("drop").arg(""),
        };
        for code in seats {
            inv.arg(code);
        }
        let op = match how {
            Settle::Release { .. } => "release",
            Settle::Book => "settle_booked",
            Settle::Drop => "settle_dropped",
        };
        hold_check(op, self.invoke(op, &inv).await?)
    }

    /// Adds seats to, or removes them from, the cached booked set.
    pub async fn mark_booked(&self, event: EventId, booked: bool, codes: &[String]) -> Result<()> {
        let k = self.keys(event);
        let mut inv = MARK_BOOKED.prepare_invoke();
        inv.key(k.seats())
            .key(k.booked())
            .key(k.generation())
            .arg(if booked { "add" } else { "remove" });
        for code in codes {
            inv.arg(code);
        }
        self.invoke("mark_booked", &inv).await?;
        Ok(())
    }

    /// Drops every cached event inventory under this prefix, so each rebuilds from Postgres on
    /// its next hold. Returns how many were dropped.
    pub async fn drop_inventories(&self) -> Result<usize> {
        let pattern = format!("{}:{{e:*}}:seats", self.prefix);
        let keys: Vec<String> = self
            .run("scan_inventories", async |conn| {
                let mut keys = Vec::new();
                let mut cursor: u64 = 0;
                loop {
                    let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(conn)
                        .await?;
                    keys.extend(batch);
                    if next == 0 {
                        return Ok(keys);
                    }
                    cursor = next;
                }
            })
            .await?;
        for key in &keys {
            self.run("drop_inventory", async |conn| {
                redis::cmd("DEL").arg(key).query_async::<i64>(conn).await
            })
            .await?;
        }
        Ok(keys.len())
    }

    /// Number of seats held right now, by the Redis clock.
    pub async fn held_count(&self, event: EventId) -> Result<i64> {
        let mut inv = HELD.prepare_invoke();
        inv.key(self.keys(event).held()).arg("count");
        match self.invoke("held_count", &inv).await? {
            Value::Int(n) => Ok(n),
            other => Err(unexpected("held", &format!("{other:?}"))),
        }
    }

    /// Seats held right now with the milliseconds each has left.
    pub async fn held_seats(&self, event: EventId) -> Result<Vec<(String, i64)>> {
        let mut inv = HELD.prepare_invoke();
        inv.key(self.keys(event).held()).arg("list");
        let Value::Array(items) = self.invoke("held_list", &inv).await? else {
            return Err(unexpected("held", "not an array"));
        };
        items
            .chunks(2)
            .map(|pair| match pair {
                [code, Value::Int(ms)] => Ok((string(code)?, *ms)),
                _ => Err(unexpected("held", "bad pair")),
            })
            .collect()
    }
}

fn unexpected(script: &str, what: &str) -> Error {
    Error::Internal(format!("unexpected reply from {script}.lua: {what}"))
}

fn string(v: &Value) -> Result<String> {
    match v {
        Value::BulkString(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Ok(s.clone()),
        other => Err(unexpected("script", &format!("{other:?}"))),
    }
}

fn tagged(v: Value) -> Result<(String, Vec<Value>)> {
    match v {
        Value::Array(mut items) if !items.is_empty() => {
            let rest = items.split_off(1);
            Ok((string(&items[0])?, rest))
        }
        other => Err(unexpected("script", &format!("{other:?}"))),
    }
}

fn int_at(items: &[Value], i: usize) -> Result<i64> {
    match items.get(i) {
        Some(Value::Int(n)) => Ok(*n),
        other => Err(unexpected("script", &format!("{other:?}"))),
    }
}

fn strings_at(items: &[Value], i: usize) -> Result<Vec<String>> {
    match items.get(i) {
        Some(Value::Array(list)) => list.iter().map(string).collect(),
        other => Err(unexpected("script", &format!("{other:?}"))),
    }
}

fn hold_check(script: &str, v: Value) -> Result<HoldCheck> {
    let (tag, _) = tagged(v)?;
    match tag.as_str() {
        "OK" => Ok(HoldCheck::Ok),
        "GONE" => Ok(HoldCheck::Gone),
        "NOT_OWNER" => Ok(HoldCheck::NotOwner),
        "PINNED" => Ok(HoldCheck::Pinned),
        other => Err(unexpected(script, other)),
    }
}
