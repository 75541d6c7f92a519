//! What every handler gets: the service, the settings and the metrics handle; cheap to clone.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::config::Settings;
use crate::service::Seatlock;
use crate::telemetry;

#[derive(Clone)]
pub struct AppState {
    pub seatlock: Seatlock,
    pub settings: Arc<Settings>,
    pub metrics: PrometheusHandle,
    /// `server.trusted_proxies`, parsed.
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
}

impl AppState {
    /// `metrics` comes from [`telemetry::metrics_handle`], called before the service is built
    /// so that what the service records at start-up (the active hold backend) is kept.
    pub fn new(seatlock: Seatlock, metrics: PrometheusHandle) -> Self {
        AppState {
            trusted_proxies: seatlock.settings().trusted_proxies().into(),
            settings: Arc::new(seatlock.settings().clone()),
            seatlock,
            metrics,
        }
    }

    /// The state over an existing Postgres pool (the tests bring their own database).
    pub fn with_pool(settings: Settings, pool: PgPool) -> anyhow::Result<Self> {
        let metrics = telemetry::metrics_handle();
        Ok(Self::new(Seatlock::with_pool(settings, pool)?, metrics))
    }
}
