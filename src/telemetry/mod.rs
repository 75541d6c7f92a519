//! Logs and metrics. Called by every other module, calls none of them: recorders take plain
//! numbers and label enums (see [`labels`]), and the metric catalogue is declared once (see
//! [`catalogue`]).

mod catalogue;
mod connections;
mod labels;
mod live;
mod outbox;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use catalogue::*;
pub use connections::*;
pub use labels::*;
pub use live::*;
pub use outbox::*;

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
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_ansi(text_in_colour(
                std::io::stdout().is_terminal(),
                settings.no_color,
            )))
            .try_init(),
    };
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
