//! Logs, metrics and traces. Called by every other module, calls none of them: recorders take
//! plain numbers and label enums (see [`labels`]), and the metric catalogue is declared once (see
//! [`catalogue`]). Traces: [`trace`] (W3C trace context, client spans), [`otel`] (the OTLP
//! export, off unless an endpoint is set).

mod catalogue;
mod connections;
mod hot;
mod json_log;
mod labels;
mod live;
mod otel;
mod outbox;
mod trace;

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, LogSettings, OtlpSettings};
pub use catalogue::*;
pub use connections::*;
pub use hot::{
    record_hold_acquired, record_hold_attempt, record_hold_refused, record_http, record_redis,
};
pub use json_log::{log_ids_needed, with_log_ids};
pub use labels::*;
pub use live::*;
pub use otel::{OTEL_EXPORT_FAILURES, OTEL_EXPORT_PAUSED, OTEL_SPANS_DROPPED, TraceExport};
pub use outbox::*;
pub use trace::*;

/// Installs the global tracing subscriber: human-readable by default, JSON when configured.
/// `RUST_LOG` overrides the configured level. With an OTLP endpoint, spans of this crate at info
/// level and above are exported whatever the log level (the level filters the logs only).
/// Safe to call twice (the second call is a no-op); the returned handle flushes the export.
pub fn init_tracing(settings: &LogSettings, otlp: &OtlpSettings) -> TraceExport {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // JSON lines must name their request and trace; where the level keeps the request's span
    // from the log layer, the request passes its ids to the lines another way (`json_log`).
    json_log::set_ids_needed(
        settings.format == LogFormat::Json
            && filter
                .max_level_hint()
                .is_none_or(|max| max < tracing::level_filters::LevelFilter::INFO),
    );
    let Some((tracer, export)) = otel::tracer(otlp) else {
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(log_layer(settings))
            .try_init();
        return TraceExport::default();
    };
    // This crate's spans, and none while the export cannot take them (see `otel`). A dynamic
    // filter: asked per span, where `filter_fn` would cache its first answer per callsite.
    let spans = tracing_subscriber::filter::Targets::new()
        .with_target("seatlock", tracing::Level::INFO)
        .and(tracing_subscriber::filter::dynamic_filter_fn(|_, _| {
            otel::making_spans()
        }));
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_threads(false);
    let installed = tracing_subscriber::registry()
        .with(log_layer(settings).with_filter(filter))
        .with(otel.with_filter(spans))
        .try_init();
    if installed.is_ok() {
        trace::set_exporting();
    }
    export
}

/// The log lines on stdout, text or JSON.
fn log_layer<S>(settings: &LogSettings) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    match settings.format {
        LogFormat::Json => {
            let format = tracing_subscriber::fmt::format()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(true);
            tracing_subscriber::fmt::layer()
                .json()
                .event_format(json_log::WithTraceIds(format))
                .boxed()
        }
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(text_in_colour(
                std::io::stdout().is_terminal(),
                settings.no_color,
            ))
            .boxed(),
    }
}

/// Colour codes only for a person at a terminal: never in a file or a pipe (they break `grep`,
/// log shippers and `journalctl`), never when `NO_COLOR` asks for none. Logs go to stdout, so
/// stdout is the stream that must be a terminal.
fn text_in_colour(stdout_is_terminal: bool, no_color: bool) -> bool {
    stdout_is_terminal && !no_color
}

#[cfg(test)]
mod tests {
    use super::text_in_colour;

    #[test]
    fn colour_only_at_a_terminal_and_never_with_no_color() {
        assert!(text_in_colour(true, false));
        assert!(!text_in_colour(true, true));
        assert!(!text_in_colour(false, false));
        assert!(!text_in_colour(false, true));
    }
}
