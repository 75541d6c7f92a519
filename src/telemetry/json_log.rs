//! JSON log lines with the request's `trace_id` and `span_id` at the top level, beside
//! `timestamp`, `level` and `message`, where log shippers and trace viewers look for them (they
//! are also in the request span's fields, under `span` and `spans`).
//!
//! At a level that keeps the request's span (an `info` span) out of the logs (`warn`, `error`),
//! the request carries its ids in a task-local instead ([`with_log_ids`]), and its lines get
//! `trace_id`, `span_id` and `request_id` from there: the lines such a level keeps are the ones
//! an operator must match to a trace. Only then: at `info` the span has them already.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Whether the requests carry their ids for the log lines (JSON logs at a level above `info`).
static IDS_NEEDED: AtomicBool = AtomicBool::new(false);

pub(super) fn set_ids_needed(needed: bool) {
    IDS_NEEDED.store(needed, Ordering::Relaxed);
}

/// Whether a request should run under [`with_log_ids`].
pub fn log_ids_needed() -> bool {
    IDS_NEEDED.load(Ordering::Relaxed)
}

/// A request's ids as its log lines write them.
struct LogIds {
    request_id: String,
    /// `00-<trace id>-<span id>-<flags>`, the response's.
    traceparent: String,
}

tokio::task_local! {
    static LOG_IDS: LogIds;
}

/// Runs a request's future with its ids where its log lines find them (boxed, so that the
/// future of a request that does not need them stays as small as it was).
pub fn with_log_ids<F: Future>(
    request_id: &str,
    traceparent: &str,
    inner: F,
) -> Pin<Box<impl Future<Output = F::Output>>> {
    let ids = LogIds {
        request_id: request_id.to_string(),
        traceparent: traceparent.to_string(),
    };
    Box::pin(LOG_IDS.scope(ids, inner))
}

/// The ids of the request whose task is logging, if it carries them: trace id, span id, request id.
fn task_ids() -> Option<(String, String, String)> {
    LOG_IDS
        .try_with(|ids| {
            let trace_id = ids.traceparent.get(3..35)?;
            let span_id = ids.traceparent.get(36..52)?;
            Some((
                trace_id.to_string(),
                span_id.to_string(),
                json_string(&ids.request_id),
            ))
        })
        .ok()
        .flatten()
}

/// `s` as a JSON string, quotes included.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// Wraps the JSON event format: a line inside a span carrying the ids starts with them.
pub(super) struct WithTraceIds<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let ids = ctx.event_scope().and_then(|scope| {
            scope.from_root().find_map(|span| {
                let extensions = span.extensions();
                let fields = extensions.get::<FormattedFields<N>>()?;
                Some((
                    id_in(fields, TRACE_ID, 32)?.to_string(),
                    id_in(fields, SPAN_ID, 16)?.to_string(),
                ))
            })
        });
        // Beside the span's ids, the request id when they come from the task (no span fields).
        let ids = match ids {
            Some((trace_id, span_id)) => Some((trace_id, span_id, None)),
            None => task_ids().map(|(t, s, r)| (t, s, Some(r))),
        };
        let Some((trace_id, span_id, request_id)) = ids else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let Some(rest) = line.strip_prefix('{') else {
            return writer.write_str(&line);
        };
        write!(
            writer,
            "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\","
        )?;
        if let Some(request_id) = request_id {
            write!(writer, "\"request_id\":{request_id},")?;
        }
        writer.write_str(rest)
    }
}

/// The two fields as the JSON span fields write them, up to their values.
const TRACE_ID: &str = "\"trace_id\":\"";
const SPAN_ID: &str = "\"span_id\":\"";

/// The value of `key` (`"name":"`) followed by `len` hex digits and a quote in a span's JSON
/// fields.
fn id_in<'a>(fields: &'a str, key: &str, len: usize) -> Option<&'a str> {
    let start = fields.find(key)? + key.len();
    let id = fields.get(start..start + len)?;
    let closed = fields[start + len..].starts_with('"');
    (closed && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::{SPAN_ID, TRACE_ID, id_in};

    #[test]
    fn the_ids_are_read_from_the_span_fields() {
        let fields = r#"{"request_id":"r1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}"#;
        assert_eq!(
            id_in(fields, TRACE_ID, 32),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(id_in(fields, SPAN_ID, 16), Some("00f067aa0ba902b7"));
        assert_eq!(id_in(r#"{"trace_id":"short"}"#, TRACE_ID, 32), None);
        assert_eq!(id_in(r#"{"request_id":"r1"}"#, SPAN_ID, 16), None);
    }
}
