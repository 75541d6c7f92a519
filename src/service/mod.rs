//! The use cases: each flow coordinates the two stores (Redis for holds, Postgres for the
//! truth) and the domain's decisions. HTTP handlers call these; these call `store::*` and
//! `domain::*`. One file per flow:
//!
//! - [`reserve`](Seatlock::reserve): take a hold, in Redis or in the Postgres fallback.
//! - [`confirm`](Seatlock::confirm): pin the hold, write the booking through the Postgres guard.
//! - [`release`](Seatlock::release), [`cancel`](Seatlock::cancel).
//! - `reads`: events, the seat map, bookings; `events`: creating an event.
//! - `inventory`: rebuilding an event's Redis cache from Postgres.
//! - `outage`: the one guarded way to call Redis (breaker), and the reconcile after an outage.
//! - `health`: readiness; `idempotency`: stored responses of keyed requests.
//! - `auth`: who is calling (JWT, API keys), admission tokens; `rate`: rate limits per caller.
//! - [`breaker`]: the circuit breaker state machine.
//! - `stream`: the live seat map's fan-out (one hub per streamed event).
//! - `blocks`: blocked seats (held back from sale).
//! - `history`: the history flush (Redis stream + Postgres rows -> numbered changes) and its
//!   reads; `webhooks`: endpoints and the delivery loop.

mod auth;
mod blocks;
pub mod breaker;
mod cancel;
mod confirm;
mod events;
mod extend;
mod health;
mod history;
mod idempotency;
mod inventory;
mod outage;
mod policy;
mod rate;
mod reads;
mod release;
mod reserve;
mod stream;
mod webhooks;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;

pub use auth::{
    Admission, AdmissionRefused, AdmissionVerifier, AuthFailure, KeyCreated,
    MAX_ADMISSION_TOKEN_BYTES, check_keys,
};
pub use health::{HoldsGo, Readiness, ReadyStatus};
pub use reads::ChannelTierUse;
pub use reserve::Wanted;
pub use stream::{Audience, LiveSeat, LiveTier, Snapshot, Streams, Subscription};

use self::auth::Authenticator;
use self::breaker::Breaker;
use self::rate::LocalLimits;
use crate::config::{Limits, Settings};
use crate::domain::holds::Caps;
use crate::domain::holds::HoldStore;
use crate::store::postgres::{self, PgStore};
use crate::store::redis::RedisStore;
use crate::telemetry::{self, Backend, PoolStats};

/// The service: both stores, the breaker and the settings. Cheap to clone (every field is
/// shared), so a flow can hand a copy to a task of its own (the reconcile after an outage).
#[derive(Clone)]
pub struct Seatlock {
    pg: PgStore,
    redis: RedisStore,
    breaker: Arc<Breaker>,
    settings: Arc<Settings>,
    /// Set while the after-outage reconcile runs, so flapping cannot start several at once.
    reconciling: Arc<AtomicBool>,
    auth: Arc<Authenticator>,
    /// The caps and rates in force (`limits.*`, by `auth.mode`).
    limits: Limits,
    local_limits: Arc<LocalLimits>,
    /// The live seat maps this instance streams.
    streams: Arc<Streams>,
    /// One cache rebuild at a time per event.
    rebuilds: Arc<inventory::RebuildGates>,
    /// When the service was built (the history flush's clock for its scans).
    started: Instant,
    history_scan: Arc<history::ScanClock>,
    /// Wakes the webhook deliverer when a flush queued messages.
    webhooks_wake: Arc<tokio::sync::Notify>,
    webhook_client: Arc<webhooks::WebhookClient>,
}

impl Seatlock {
    /// Connects to Postgres (creating the database and applying migrations) and builds the Redis
    /// pool.
    pub async fn connect(settings: Settings) -> anyhow::Result<Self> {
        let pg = postgres::connect(&settings.database)
            .await
            .context("connecting to postgres (database.url / DATABASE_URL)")?;
        Self::with_store(settings, pg)
    }

    /// Builds the service around an existing Postgres pool (tests bring their own database).
    pub fn with_pool(settings: Settings, pool: PgPool) -> anyhow::Result<Self> {
        let retries = settings.database.max_retries;
        Self::with_store(settings, PgStore::new(pool, retries))
    }

    fn with_store(settings: Settings, pg: PgStore) -> anyhow::Result<Self> {
        let redis = RedisStore::new(&settings.redis)
            .context("building the redis pool (redis.url / REDIS_URL)")?
            .recording(settings.history.enabled);
        let pg = pg.recording(settings.history.enabled);
        telemetry::record_backend(match settings.holds.backend {
            HoldStore::Redis => Backend::Redis,
            HoldStore::Postgres => Backend::Postgres,
        });
        let breaker = Arc::new(Breaker::new(
            settings.breaker.failure_threshold,
            Duration::from_secs(settings.breaker.open_seconds),
        ));
        let auth = Arc::new(Authenticator::new(&settings.auth, &settings.admission)?);
        let settings_limits = settings.limits();
        let webhook_client = Arc::new(
            webhooks::WebhookClient::new(&settings.webhooks)
                .context("building the webhook HTTP client")?,
        );
        Ok(Seatlock {
            pg,
            redis,
            breaker,
            settings: Arc::new(settings),
            reconciling: Arc::default(),
            auth,
            limits: settings_limits,
            local_limits: Arc::new(LocalLimits::new(&settings_limits)),
            streams: Streams::new(),
            rebuilds: Arc::default(),
            started: Instant::now(),
            history_scan: Arc::default(),
            webhooks_wake: Arc::default(),
            webhook_client,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The caps and rates in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The per-buyer caps holds are taken under.
    fn caps(&self) -> Caps {
        Caps {
            max_seats: self.limits.max_seats_per_user,
            max_live_holds: self.limits.max_live_holds_per_user,
        }
    }

    /// The Redis store, for tests that drive a script directly.
    pub fn redis(&self) -> &RedisStore {
        &self.redis
    }

    /// The Postgres store, for tests that drive a transaction directly.
    pub fn postgres(&self) -> &PgStore {
        &self.pg
    }

    /// Both pools now, for the metrics scrape.
    pub fn pool_stats(&self) -> PoolStats {
        let pg = self.pg.pool_stats();
        let redis = self.redis.pool_stats();
        PoolStats {
            pg_size: pg.size,
            pg_idle: pg.idle,
            pg_max: self.settings.database.max_connections,
            redis_open: redis.open,
            redis_max: redis.max,
            redis_in_flight: redis.in_flight,
        }
    }

    /// Deletes expired Postgres holds (one batch) and counts their seats as expired.
    pub async fn sweep_expired_holds(&self) {
        match self.pg.sweep_expired_holds().await {
            Ok(n) => telemetry::record_seats_expired(n),
            Err(e) => tracing::warn!(error = %e, "sweeping expired postgres holds failed"),
        }
    }

    /// Deletes stored Idempotency-Key responses past `idempotency.ttl_hours` (one batch).
    pub async fn sweep_idempotency_keys(&self) {
        let ttl = Duration::from_secs(self.settings.idempotency.ttl_hours * 3600);
        if let Err(e) = self.pg.sweep_idempotency_keys(ttl).await {
            tracing::warn!(error = %e, "sweeping expired idempotency keys failed");
        }
    }

    /// Closes both pools.
    pub async fn close(&self) {
        self.pg.close().await;
        self.redis.close();
    }
}
