//! W3C trace context for every request, and the client spans of Redis and Postgres calls.
//!
//! With export on, the request span continues the caller's `traceparent` through the
//! OpenTelemetry layer and the response names that span. With export off there is no
//! OpenTelemetry at all: the ids are made here (the caller's trace id kept, a fresh span id) so
//! a response still carries a `traceparent` that a log line can be matched with, for the cost of
//! two random numbers and one header. The Redis and Postgres spans exist only with export on.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::labels::{PgOp, RedisOp};

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Marks the OpenTelemetry layer installed (at start-up, once).
pub(super) fn set_exporting() {
    EXPORTING.store(true, Ordering::Release);
}

/// Whether spans are made for export now: an endpoint is set and the export can take them (not
/// while its queue is full or it backs off after a failure, see `otel`).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed) && super::otel::making_spans()
}

/// Makes `span` (a request span with `trace_id` and `span_id` fields) continue the caller's
/// `traceparent`, if any and valid (with its `tracestate`, read only when exporting), and
/// returns the `traceparent` of the span for the response.
pub fn continue_trace<'a>(
    span: &Span,
    traceparent: Option<&'a str>,
    tracestate: impl FnOnce() -> Option<&'a str>,
) -> String {
    let (trace_id, span_id, flags) = if exporting() {
        set_parent(span, traceparent, tracestate());
        // Not valid when the span was started while export was paused: ids of its own.
        exported_ids(span).unwrap_or_else(|| unexported_ids(traceparent))
    } else {
        unexported_ids(traceparent)
    };
    // One string (the answer's header); the span's two fields are slices of it.
    let mut traceparent = String::with_capacity(55);
    let _ = write!(traceparent, "00-{trace_id:032x}-{span_id:016x}-{flags:02x}");
    span.record("trace_id", &traceparent[3..35]);
    span.record("span_id", &traceparent[36..52]);
    traceparent
}

/// Makes `span` a child of the span a W3C `traceparent` (with its `tracestate`) names.
fn set_parent(span: &Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    let carrier = Carrier {
        traceparent,
        tracestate,
    };
    let _ = span.set_parent(TraceContextPropagator::new().extract(&carrier));
}

/// The trace id, span id and flags of an exported span; None for a span that is not.
fn exported_ids(span: &Span) -> Option<(u128, u64, u8)> {
    let cx = span.context();
    let own = cx.span().span_context().clone();
    own.is_valid().then(|| {
        (
            u128::from_be_bytes(own.trace_id().to_bytes()),
            u64::from_be_bytes(own.span_id().to_bytes()),
            own.trace_flags().to_u8(),
        )
    })
}

/// The ids of a span that is not exported: the caller's trace continued, or a new one.
fn unexported_ids(traceparent: Option<&str>) -> (u128, u64, u8) {
    match traceparent.and_then(parse_traceparent) {
        Some((trace_id, _, flags)) => (trace_id, fresh_span_id(), flags & 1),
        None => (fresh_trace_id(), fresh_span_id(), 0),
    }
}

/// The trace context extractor's view of the request's two headers.
struct Carrier<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
}

impl opentelemetry::propagation::Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent,
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>` (W3C Trace Context, version 00; a
/// later version is read by the same fields). None when malformed or an id is all zeros.
pub fn parse_traceparent(value: &str) -> Option<(u128, u64, u8)> {
    let mut parts = value.trim().split('-');
    let version = parts.next().filter(|v| v.len() == 2 && *v != "ff")?;
    let trace = parts.next().filter(|t| t.len() == 32)?;
    let parent = parts.next().filter(|p| p.len() == 16)?;
    let flags = parts.next().filter(|f| f.len() == 2)?;
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !(hex(version) && hex(trace) && hex(parent) && hex(flags)) {
        return None;
    }
    let trace = u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)?;
    let parent = u64::from_str_radix(parent, 16).ok().filter(|p| *p != 0)?;
    Some((trace, parent, u8::from_str_radix(flags, 16).ok()?))
}

fn fresh_trace_id() -> u128 {
    rand::random::<u128>().max(1)
}

fn fresh_span_id() -> u64 {
    rand::random::<u64>().max(1)
}

/// Whether a client span is made now: export on, and inside a request's (or a webhook
/// delivery's) span. Background work (the sweeps, the history flush) makes no traces.
fn traced_call() -> bool {
    exporting() && !Span::current().is_none()
}

/// The client span of one Redis call (its op, never its arguments); None with export off or
/// outside a request.
pub fn redis_span(op: RedisOp) -> Option<Span> {
    traced_call().then(|| {
        tracing::info_span!(
            "redis",
            otel.name = op.as_str(),
            otel.kind = "client",
            db.system.name = "redis",
            seatlock.script = op.as_str(),
            otel.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
        )
    })
}

/// The client span of one Postgres transaction; None with export off or outside a request.
/// The runner records `seatlock.retries` when it ends.
pub fn postgres_span(op: PgOp) -> Option<Span> {
    traced_call().then(|| {
        tracing::info_span!(
            "postgres",
            otel.name = op.as_str(),
            otel.kind = "client",
            db.system.name = "postgresql",
            db.operation.name = op.as_str(),
            seatlock.retries = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
        )
    })
}

/// Marks a Redis or Postgres client span as failed: status ERROR and `error.type`, a short
/// class of the failure (never its message, which may quote data). A span without those fields
/// (the request's, when the call had no span of its own) is left as it is.
pub fn mark_failed(span: &Span, error_type: &'static str) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", error_type);
}

/// The span of one hold decision: the seats asked (a best-available request's count), then the
/// outcome (`held`, `refused` or `error`), the refusal's reason (as the
/// `seatlock_holds_refused_total` label) and the answer's code; None with export off.
pub fn hold_span(seats: usize) -> Option<Span> {
    exporting().then(|| {
        tracing::info_span!(
            "hold",
            otel.name = "seatlock.hold",
            seatlock.hold.seats = i64::try_from(seats).unwrap_or(i64::MAX),
            seatlock.hold.outcome = tracing::field::Empty,
            seatlock.hold.reason = tracing::field::Empty,
            seatlock.hold.code = tracing::field::Empty,
        )
    })
}

/// Names a hold's refusal reason on the hold span, if that is the current span (export on).
pub(super) fn record_refusal_reason(reason: &'static str) {
    if exporting() {
        Span::current().record("seatlock.hold.reason", reason);
    }
}

/// The client span of one webhook delivery attempt (the endpoint and message ids, never the
/// URL's query or the body); None with export off. A message made by a request (a booking's)
/// names that request's span in `parent`: the attempt is its child, in its trace; else the
/// attempt is the root of a trace of its own. The caller records the answer's status.
pub fn webhook_span(endpoint: &str, message: &str, parent: Option<&str>) -> Option<Span> {
    exporting().then(|| {
        let span = tracing::info_span!(
            "webhook",
            otel.name = "POST webhook",
            otel.kind = "client",
            http.request.method = "POST",
            http.response.status_code = tracing::field::Empty,
            seatlock.webhook.endpoint = endpoint,
            seatlock.webhook.message = message,
        );
        if parent.is_some() {
            set_parent(&span, parent, None);
        }
        span
    })
}

/// The W3C `traceparent` of the current span while traces are exported, inside a request (what
/// a booking's webhook messages continue); None otherwise.
pub fn current_traceparent() -> Option<String> {
    traced_call()
        .then(|| traceparent_of(&Span::current()))
        .flatten()
}

/// The W3C `traceparent` naming `span` (an exported one; None for a span that is not).
pub fn traceparent_of(span: &Span) -> Option<String> {
    exported_ids(span).map(|(trace, id, flags)| format!("00-{trace:032x}-{id:016x}-{flags:02x}"))
}

#[cfg(test)]
mod tests {
    use super::parse_traceparent;

    #[test]
    fn a_w3c_traceparent_is_read_and_a_bad_one_refused() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(tp),
            Some((0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7, 1))
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_unexported_span_continues_the_callers_trace_with_a_span_of_its_own() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ours = super::continue_trace(&tracing::Span::none(), Some(tp), || None);
        let (trace, span, flags) = parse_traceparent(&ours).expect("a valid traceparent");
        assert_eq!((trace, flags), (0x4bf92f3577b34da6a3ce929d0e0e4736, 1));
        assert_ne!(span, 0x00f067aa0ba902b7);
        assert_eq!(ours.len(), 55);
        let fresh = super::continue_trace(&tracing::Span::none(), None, || None);
        assert!(
            parse_traceparent(&fresh).is_some_and(|(_, _, flags)| flags == 0),
            "{fresh}"
        );
    }
}
