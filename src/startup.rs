//! Start-up and shutdown: [`Application::build`] connects the stores and binds the port,
//! [`Application::port`] tells which port it got (tests bind port 0), and
//! [`Application::run_until`] serves until the shutdown future completes, then drains in-flight
//! requests for up to `server.shutdown_grace_seconds`, stops the background tasks and closes
//! the pools. The binary and the tests start the service the same way.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{AuthMode, Settings};
use crate::http::serve::{ConnectionLimits, serve};
use crate::http::{self, AppState};
use crate::service::Seatlock;
use crate::telemetry;

/// How often the metrics exporter runs its upkeep (histogram bucket maintenance).
const METRICS_UPKEEP: Duration = Duration::from_secs(5);
/// How often both stores are asked whether they answer (`seatlock_store_up`).
const STORE_PROBE: Duration = Duration::from_secs(5);
/// The longest the history flush may run at shutdown.
const FINAL_FLUSH: Duration = Duration::from_secs(3);
/// How often history and webhook messages past their retention are deleted.
const RETENTION_SWEEP: Duration = Duration::from_secs(3600);

pub struct Application {
    state: AppState,
    listener: TcpListener,
    port: u16,
}

impl Application {
    /// Connects to Postgres (creating the database and applying migrations), builds the Redis
    /// pool and binds `server.host:server.port`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let addr = format!("{}:{}", settings.server.host, settings.server.port);
        let metrics = telemetry::metrics_handle();
        let seatlock = Seatlock::connect(settings).await?;
        let listener = TcpListener::bind(&addr)
            .await
            .with_context(|| format!("binding {addr} (server.port / PORT)"))?;
        let port = listener.local_addr()?.port();
        Ok(Application {
            state: AppState::new(seatlock, metrics),
            listener,
            port,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` completes, then drains and stops.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            state, listener, ..
        } = self;
        let grace = Duration::from_secs(state.settings.server.shutdown_grace_seconds);
        let (stop_tx, stop_rx) = watch::channel(false);
        let background = spawn_background(&state, stop_rx);
        tracing::info!(addr = %listener.local_addr()?, "seatlock listening");
        if state.settings.auth.mode == AuthMode::None {
            tracing::warn!(
                "auth.mode = none: every caller is trusted (any client may create events and act \
                 for any buyer); set auth.mode = token before exposing this service"
            );
        }
        let limits = ConnectionLimits {
            max_connections: connection_cap(&state.settings),
            header_read_timeout: state.settings.server.header_read_timeout(),
            idle_timeout: state.settings.server.idle_timeout(),
            grace,
        };
        let seatlock = state.seatlock.clone();
        let shutdown = async move {
            shutdown.await;
            tracing::info!("shutdown requested; draining in-flight requests");
            // Open seat-map streams end now, so they do not hold up the drain.
            seatlock.close_streams();
            let _ = stop_tx.send(true);
        };
        if !serve(listener, http::router(state.clone()), limits, shutdown).await {
            tracing::warn!(
                ?grace,
                "shutdown grace elapsed with requests still in flight"
            );
        }
        for task in background {
            task.abort();
        }
        // What the drained requests changed is recorded before the pools close (for at most a
        // few seconds: what is left stays in Redis and Postgres for the next flush anywhere).
        let _ = tokio::time::timeout(FINAL_FLUSH, state.seatlock.flush_history()).await;
        state.seatlock.close().await;
        tracing::info!("seatlock stopped");
        Ok(())
    }
}

/// Reads and parses the configured key files as the service will (see
/// [`check_keys`](crate::service::check_keys)), so a bad one stops start-up before anything runs.
pub fn check_keys(settings: &Settings) -> anyhow::Result<()> {
    crate::service::check_keys(settings)
}

/// Raises the soft open-files limit to the hard limit (as most servers do: 1,024 is a common
/// default soft limit, far below what an on-sale's connections need), once per process.
pub fn raise_open_files_limit() {
    match rlimit::Resource::NOFILE.get() {
        Ok((soft, hard)) if soft < hard => match rlimit::Resource::NOFILE.set(hard, hard) {
            Ok(()) => tracing::info!(from = soft, to = hard, "raised the open-files limit"),
            Err(e) => {
                tracing::warn!(soft, hard, error = %e, "could not raise the open-files limit")
            }
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the open-files limit"),
    }
}

/// `server.max_connections`, at most the open-files limit minus what the pools and the process
/// need besides (listener, logs, Redis and Postgres connections, a margin).
fn connection_cap(settings: &Settings) -> usize {
    let wanted = settings.server.max_connections;
    let Ok((soft, _)) = rlimit::Resource::NOFILE.get() else {
        return wanted;
    };
    let reserved = settings.database.max_connections as u64 + settings.redis.pool_size as u64 + 64;
    let room = soft.saturating_sub(reserved).max(1);
    let cap = wanted.min(usize::try_from(room).unwrap_or(usize::MAX));
    if cap < wanted {
        tracing::warn!(
            wanted,
            cap,
            open_files_limit = soft,
            "server.max_connections lowered to what the open-files limit allows"
        );
    }
    cap
}

/// The background tasks: the sweepers of expired Postgres holds and of expired Idempotency-Key
/// responses, the history flush and its retention sweep, the webhook deliveries, and the upkeep (metrics exporter, idle callers of the per-instance rate limiters). Each stops at the next tick after `stop` turns true.
pub fn spawn_background(state: &AppState, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let settings = &state.settings;
    let holds_every = Duration::from_secs(settings.holds.sweep_interval_seconds);
    let keys_every = Duration::from_secs(settings.idempotency.sweep_interval_seconds);
    let seatlock = state.seatlock.clone();
    let holds = every(holds_every, stop.clone(), move || {
        let seatlock = seatlock.clone();
        async move { seatlock.sweep_expired_holds().await }
    });
    let seatlock = state.seatlock.clone();
    let keys = every(keys_every, stop.clone(), move || {
        let seatlock = seatlock.clone();
        async move { seatlock.sweep_idempotency_keys().await }
    });
    let seatlock = state.seatlock.clone();
    let history = every(settings.history.flush_every(), stop.clone(), move || {
        let seatlock = seatlock.clone();
        async move { seatlock.flush_history().await }
    });
    let seatlock = state.seatlock.clone();
    let retention = every(RETENTION_SWEEP, stop.clone(), move || {
        let seatlock = seatlock.clone();
        async move { seatlock.sweep_history().await }
    });
    let seatlock = state.seatlock.clone();
    let probe = every(STORE_PROBE, stop.clone(), move || {
        let seatlock = seatlock.clone();
        async move { seatlock.probe_stores().await }
    });
    let stop_deliveries = stop.clone();
    let metrics = state.metrics.clone();
    let seatlock = state.seatlock.clone();
    let upkeep = every(METRICS_UPKEEP, stop, move || {
        let (metrics, seatlock) = (metrics.clone(), seatlock.clone());
        async move {
            metrics.run_upkeep();
            seatlock.shrink_local_limits();
        }
    });
    let deliveries = tokio::spawn(
        state
            .seatlock
            .clone()
            .run_webhook_deliveries(stop_deliveries),
    );
    vec![holds, keys, upkeep, probe, history, retention, deliveries]
}

/// Runs `job` every `period` until `stop` turns true (or its sender is gone).
fn every<F, Fut>(period: Duration, mut stop: watch::Receiver<bool>, job: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                _ = stop.wait_for(|stop| *stop) => true,
            };
            if stopping {
                return;
            }
            job().await;
        }
    })
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
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
