//! JSON log lines with the request's `trace_id` and `span_id` at the top level, beside
//! `timestamp`, `level` and `message`, where log shippers and trace viewers look for them (they
//! are also in the request span's fields, under `span` and `spans`).

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

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
        let Some((trace_id, span_id)) = ids else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(
                writer,
                "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}"
            ),
            None => writer.write_str(&line),
        }
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
