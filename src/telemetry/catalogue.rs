//! Prometheus metrics: every name declared here, once, with its HELP text and buckets, and the
//! small recorders the rest of the crate calls.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::labels::{
    AuthFailureReason, Backend, CancelResult, ConfirmResult, HoldRefusal, PgOp, RateScope, RedisOp,
    ReleaseResult, StoreName, UserLimitLabel,
};

/// Latency buckets, in seconds: 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
const SEAT_BUCKETS: &[f64] = &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 50.0, 100.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Whether [`metrics_handle`] has installed the recorder (and registered every series at zero).
pub(super) fn recorder_installed() -> bool {
    HANDLE.get().is_some()
}

/// Installs the Prometheus recorder once per process and returns its handle. A process that
/// builds several apps (the tests) shares one recorder.
pub fn metrics_handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_seats".into()), SEAT_BUCKETS)
                });
            let handle = match builder.map(PrometheusBuilder::install_recorder) {
                Ok(Ok(handle)) => handle,
                // Another recorder is installed already (an embedding application): render ours
                // detached so /metrics still answers.
                _ => PrometheusBuilder::new().build_recorder().handle(),
            };
            describe_metrics();
            register_at_zero();
            handle
        })
        .clone()
}

pub const HTTP_REQUESTS: &str = "seatlock_http_requests_total";
pub const HTTP_DURATION: &str = "seatlock_http_request_duration_seconds";
pub const HOLDS_ATTEMPTED: &str = "seatlock_holds_attempted_total";
pub const HOLDS_ACQUIRED: &str = "seatlock_holds_acquired_total";
pub const HOLDS_REFUSED: &str = "seatlock_holds_refused_total";
pub const HOLD_SIZE: &str = "seatlock_hold_size_seats";
pub const TIER_HOLDS_ATTEMPTED: &str = "seatlock_tier_holds_attempted_total";
pub const TIER_UNITS_REQUESTED: &str = "seatlock_tier_units_requested_total";
pub const TIER_UNITS_HELD: &str = "seatlock_tier_units_held_total";
pub const HOLD_SEATS_EXPIRED: &str = "seatlock_hold_seats_expired_total";
pub const CONFIRMS: &str = "seatlock_confirms_total";
pub const RELEASES: &str = "seatlock_releases_total";
pub const CANCELS: &str = "seatlock_cancels_total";
pub const REDIS_DURATION: &str = "seatlock_redis_command_duration_seconds";
pub const REDIS_ERRORS: &str = "seatlock_redis_errors_total";
pub const PG_DURATION: &str = "seatlock_postgres_query_duration_seconds";
pub const PG_ERRORS: &str = "seatlock_postgres_errors_total";
pub const PG_POOL_CONNECTIONS: &str = "seatlock_postgres_pool_connections";
pub const PG_POOL_MAX: &str = "seatlock_postgres_pool_max_connections";
pub const PG_POOL_ACQUIRE: &str = "seatlock_postgres_pool_acquire_duration_seconds";
pub const REDIS_POOL_CONNECTIONS: &str = "seatlock_redis_pool_connections";
pub const REDIS_POOL_MAX: &str = "seatlock_redis_pool_max_connections";
pub const REDIS_IN_FLIGHT: &str = "seatlock_redis_calls_in_flight";
pub const CACHE_REBUILDS: &str = "seatlock_cache_rebuilds_total";
pub const CACHE_REBUILD_DURATION: &str = "seatlock_cache_rebuild_duration_seconds";
pub const HOLD_BACKEND: &str = "seatlock_hold_backend_active";
pub const STORE_UP: &str = "seatlock_store_up";
pub const AUTH_FAILURES: &str = "seatlock_auth_failures_total";
pub const RATE_LIMITED: &str = "seatlock_rate_limited_total";
pub const USER_LIMIT_REFUSALS: &str = "seatlock_user_limit_refusals_total";

fn describe_metrics() {
    super::live::describe();
    super::outbox::describe();
    super::otel::describe();
    super::connections::describe();
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by matched route, method and status class."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request duration, by matched route and method."
    );
    describe_counter!(
        HOLDS_ATTEMPTED,
        "Hold requests that reached the hold logic."
    );
    describe_counter!(HOLDS_ACQUIRED, "Holds taken.");
    describe_counter!(
        HOLDS_REFUSED,
        format!("Holds refused, by reason: {}.", HoldRefusal::list())
    );
    describe_histogram!(
        HOLD_SIZE,
        "Units asked for per hold request: seats plus general-admission tier quantities."
    );
    describe_counter!(
        TIER_HOLDS_ATTEMPTED,
        "Hold requests asking for tier units (general admission), with or without seats."
    );
    describe_counter!(
        TIER_UNITS_REQUESTED,
        "Tier units asked for by hold requests."
    );
    describe_counter!(TIER_UNITS_HELD, "Tier units in holds taken.");
    describe_counter!(
        HOLD_SEATS_EXPIRED,
        "Seats whose hold ended by TTL expiry: counted when hold.lua trims them from the event's held set, and when the sweeper deletes expired Postgres holds."
    );
    describe_counter!(
        CONFIRMS,
        format!("Confirm requests by outcome: {}.", ConfirmResult::list())
    );
    describe_counter!(
        RELEASES,
        format!("Release requests by outcome: {}.", ReleaseResult::list())
    );
    describe_counter!(
        CANCELS,
        format!("Cancel requests by outcome: {}.", CancelResult::list())
    );
    describe_histogram!(
        REDIS_DURATION,
        Unit::Seconds,
        format!(
            "Redis script or command latency, by op: {}.",
            RedisOp::list()
        )
    );
    describe_counter!(REDIS_ERRORS, "Redis calls that failed, by op.");
    describe_histogram!(
        PG_DURATION,
        Unit::Seconds,
        format!(
            "Postgres transaction or query latency, by op: {}.",
            PgOp::list()
        )
    );
    describe_counter!(PG_ERRORS, "Postgres operations that failed, by op.");
    describe_gauge!(
        PG_POOL_CONNECTIONS,
        "Postgres pool connections, by state: in_use, idle."
    );
    describe_gauge!(PG_POOL_MAX, "Postgres pool size limit.");
    describe_histogram!(
        PG_POOL_ACQUIRE,
        Unit::Seconds,
        "Time to check out a Postgres connection and open a transaction (pool wait + BEGIN)."
    );
    describe_gauge!(
        REDIS_POOL_CONNECTIONS,
        "Redis connections open (state=open). They are multiplexed and shared, never lent out; see seatlock_redis_calls_in_flight for load."
    );
    describe_gauge!(REDIS_POOL_MAX, "Redis pool size limit.");
    describe_gauge!(
        REDIS_IN_FLIGHT,
        "Redis calls sent and awaiting their reply, over all connections."
    );
    describe_counter!(
        CACHE_REBUILDS,
        "Event inventory caches rebuilt in Redis from Postgres."
    );
    describe_histogram!(
        CACHE_REBUILD_DURATION,
        Unit::Seconds,
        "Duration of an inventory cache rebuild."
    );
    describe_counter!(
        AUTH_FAILURES,
        format!(
            "Requests refused with 401, by reason: {}.",
            AuthFailureReason::list()
        )
    );
    describe_counter!(
        RATE_LIMITED,
        format!(
            "Requests refused with 429, by whose limit: {}.",
            RateScope::list()
        )
    );
    describe_counter!(
        USER_LIMIT_REFUSALS,
        format!(
            "Holds and confirms refused by a per-buyer cap, by limit: {}.",
            UserLimitLabel::list()
        )
    );
    describe_gauge!(
        STORE_UP,
        format!(
            "1 when the store answered the instance's last probe (every 5 s, as /readyz asks), \
             0 when not; store: {}.",
            StoreName::list()
        )
    );
    describe_gauge!(
        HOLD_BACKEND,
        format!(
            "1 for the hold backend in use, 0 for the others; backend: {}.",
            Backend::list()
        )
    );
}

/// Every labelled counter exists from start-up with each known label value, and every
/// histogram a panel queries with its empty buckets (the exporter renders a histogram once it is
/// registered, not only after its first observation), so a dashboard shows 0 rather than
/// "No data" and `rate()` over it starts at once. `scripts/check-observability.sh` checks the
/// first scrape of a fresh instance against every panel's query.
fn register_at_zero() {
    super::outbox::register_at_zero();
    super::otel::register_at_zero();
    for name in [HOLD_SIZE, PG_POOL_ACQUIRE, CACHE_REBUILD_DURATION] {
        let _ = histogram!(name);
    }
    for op in RedisOp::ALL {
        let _ = histogram!(REDIS_DURATION, "op" => op.as_str());
    }
    for op in PgOp::ALL {
        let _ = histogram!(PG_DURATION, "op" => op.as_str());
    }
    super::live::register_at_zero();
    super::connections::register_at_zero();
    for r in HoldRefusal::ALL {
        counter!(HOLDS_REFUSED, "reason" => r.as_str()).absolute(0);
    }
    for r in ConfirmResult::ALL {
        counter!(CONFIRMS, "outcome" => r.as_str()).absolute(0);
    }
    for r in ReleaseResult::ALL {
        counter!(RELEASES, "outcome" => r.as_str()).absolute(0);
    }
    for r in CancelResult::ALL {
        counter!(CANCELS, "outcome" => r.as_str()).absolute(0);
    }
    for op in RedisOp::ALL {
        counter!(REDIS_ERRORS, "op" => op.as_str()).absolute(0);
    }
    for r in AuthFailureReason::ALL {
        counter!(AUTH_FAILURES, "reason" => r.as_str()).absolute(0);
    }
    for s in RateScope::ALL {
        counter!(RATE_LIMITED, "scope" => s.as_str()).absolute(0);
    }
    for l in UserLimitLabel::ALL {
        counter!(USER_LIMIT_REFUSALS, "limit" => l.as_str()).absolute(0);
    }
    for op in PgOp::ALL {
        counter!(PG_ERRORS, "op" => op.as_str()).absolute(0);
    }
    for counter in [
        HOLDS_ATTEMPTED,
        HOLDS_ACQUIRED,
        TIER_HOLDS_ATTEMPTED,
        TIER_UNITS_REQUESTED,
        TIER_UNITS_HELD,
        HOLD_SEATS_EXPIRED,
        CACHE_REBUILDS,
    ] {
        counter!(counter).absolute(0);
    }
}

pub fn record_postgres(op: PgOp, took: Duration, ok: bool) {
    histogram!(PG_DURATION, "op" => op.as_str()).record(took.as_secs_f64());
    if !ok {
        counter!(PG_ERRORS, "op" => op.as_str()).increment(1);
    }
}

pub fn record_pg_acquire(took: Duration) {
    histogram!(PG_POOL_ACQUIRE).record(took.as_secs_f64());
}

/// The pools as they are now, in plain numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStats {
    pub pg_size: u32,
    pub pg_idle: usize,
    pub pg_max: u32,
    pub redis_open: usize,
    pub redis_max: usize,
    pub redis_in_flight: i64,
}

/// Sets the pool gauges; called just before each scrape renders.
pub fn record_pools(stats: PoolStats) {
    let idle = stats.pg_idle as f64;
    gauge!(PG_POOL_CONNECTIONS, "state" => "in_use").set(f64::from(stats.pg_size) - idle);
    gauge!(PG_POOL_CONNECTIONS, "state" => "idle").set(idle);
    gauge!(PG_POOL_MAX).set(f64::from(stats.pg_max));
    gauge!(REDIS_POOL_CONNECTIONS, "state" => "open").set(stats.redis_open as f64);
    gauge!(REDIS_POOL_MAX).set(stats.redis_max as f64);
    gauge!(REDIS_IN_FLIGHT).set(stats.redis_in_flight as f64);
}

pub fn record_seats_expired(n: u64) {
    if n > 0 {
        counter!(HOLD_SEATS_EXPIRED).increment(n);
    }
}

pub fn record_confirm(result: ConfirmResult) {
    counter!(CONFIRMS, "outcome" => result.as_str()).increment(1);
}

pub fn record_release(result: ReleaseResult) {
    counter!(RELEASES, "outcome" => result.as_str()).increment(1);
}

pub fn record_cancel(result: CancelResult) {
    counter!(CANCELS, "outcome" => result.as_str()).increment(1);
}

pub fn record_auth_failure(reason: AuthFailureReason) {
    counter!(AUTH_FAILURES, "reason" => reason.as_str()).increment(1);
}

pub fn record_rate_limited(scope: RateScope) {
    counter!(RATE_LIMITED, "scope" => scope.as_str()).increment(1);
}

pub fn record_user_limit(limit: UserLimitLabel) {
    counter!(USER_LIMIT_REFUSALS, "limit" => limit.as_str()).increment(1);
}

pub fn record_rebuild(took: Duration) {
    counter!(CACHE_REBUILDS).increment(1);
    histogram!(CACHE_REBUILD_DURATION).record(took.as_secs_f64());
}

pub fn record_backend(active: Backend) {
    for backend in Backend::ALL {
        let on = if *backend == active { 1.0 } else { 0.0 };
        gauge!(HOLD_BACKEND, "backend" => backend.as_str()).set(on);
    }
}

/// What the periodic probe found: 1 for a store that answered, 0 for one that did not.
pub fn record_store_up(store: StoreName, up: bool) {
    gauge!(STORE_UP, "store" => store.as_str()).set(if up { 1.0 } else { 0.0 });
}
