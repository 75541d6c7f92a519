//! Application state, the router, and the server loop with graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::breaker::Breaker;
use crate::config::Settings;
use crate::store::redis::RedisStore;
use crate::{http, store, telemetry};

/// Everything a request needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pg: PgPool,
    pub redis: RedisStore,
    pub settings: Arc<Settings>,
    pub metrics: PrometheusHandle,
    pub breaker: Arc<Breaker>,
    /// Set while the after-outage reconcile runs, so flapping cannot start several at once.
    pub reconciling: Arc<std::sync::atomic::AtomicBool>,
}

impl AppState {
    /// Connects to Postgres (applying migrations) and builds the Redis pool.
    pub async fn connect(settings: Settings) -> anyhow::Result<Self> {
        let pg = store::postgres::connect(&settings.database)
            .await
            .context("connecting to postgres (database.url / DATABASE_URL)")?;
        Self::with_pg(settings, pg)
    }

    /// Builds the state around an existing Postgres pool (tests bring their own database).
    pub fn with_pg(settings: Settings, pg: PgPool) -> anyhow::Result<Self> {
        let redis = RedisStore::new(&settings.redis)
            .context("building the redis pool (redis.url / REDIS_URL)")?;
        let metrics = telemetry::metrics_handle();
        telemetry::record_backend(settings.holds.backend.as_str());
        let breaker = Arc::new(Breaker::new(
            settings.breaker.failure_threshold,
            Duration::from_secs(settings.breaker.open_seconds),
        ));
        Ok(Self {
            pg,
            redis,
            settings: Arc::new(settings),
            metrics,
            breaker,
            reconciling: Arc::default(),
        })
    }
}

/// The whole HTTP API; the tests call this same function.
pub fn router(state: AppState) -> Router {
    http::router(state)
}

/// Serves until SIGTERM/SIGINT, then drains in-flight requests for up to
/// `server.shutdown_grace_seconds` and closes the pools.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let addr = format!("{}:{}", settings.server.host, settings.server.port);
    let grace = Duration::from_secs(settings.server.shutdown_grace_seconds);
    let state = AppState::connect(settings).await?;
    telemetry::spawn_upkeep(state.metrics.clone());
    spawn_sweepers(&state);
    let listener = TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr} (server.port / PORT)"))?;
    tracing::info!(%addr, "seatlock listening");

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, router(state.clone())).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested; draining in-flight requests");
        let _ = stop_tx.send(true);
    });
    let deadline = async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result.context("serving")?,
        () = deadline => tracing::warn!(?grace, "shutdown grace elapsed with requests still in flight"),
    }
    state.pg.close().await;
    state.redis.pool().close();
    tracing::info!("seatlock stopped");
    Ok(())
}

/// Background upkeep: expired Postgres holds and expired Idempotency-Key responses.
fn spawn_sweepers(state: &AppState) {
    let s = state.clone();
    tokio::spawn(async move {
        let mut tick =
            tokio::time::interval(Duration::from_secs(s.settings.holds.sweep_interval_seconds));
        loop {
            tick.tick().await;
            match store::postgres::sweep_expired_holds(&s.pg).await {
                Ok(n) => telemetry::record_seats_expired(n as i64),
                Err(e) => tracing::warn!(error = %e, "sweeping expired postgres holds failed"),
            }
        }
    });
    let s = state.clone();
    tokio::spawn(async move {
        let ttl = Duration::from_secs(s.settings.idempotency.ttl_hours * 3600);
        let mut tick = tokio::time::interval(Duration::from_secs(
            s.settings.idempotency.sweep_interval_seconds,
        ));
        loop {
            tick.tick().await;
            if let Err(e) = store::postgres::sweep_idempotency_keys(&s.pg, ttl).await {
                tracing::warn!(error = %e, "sweeping expired idempotency keys failed");
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
