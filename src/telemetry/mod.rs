//! Logs and metrics. Called by every other module, calls none of them: recorders take plain
//! numbers and label enums (see [`labels`]), and the metric catalogue is declared once (see
//! [`catalogue`]).

mod catalogue;
mod connections;
mod labels;
mod live;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use catalogue::*;
pub use connections::*;
pub use labels::*;
pub use live::*;

use crate::config::{LogFormat, LogSettings};

/// Installs the global tracing subscriber: human-readable by default, JSON when configured.
/// `RUST_LOG` overrides the configured level. Safe to call twice (the second call is a no-op).
pub fn init_tracing(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match settings.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(true),
            )
            .try_init(),
        LogFormat::Text => registry.with(tracing_subscriber::fmt::layer()).try_init(),
    };
}
