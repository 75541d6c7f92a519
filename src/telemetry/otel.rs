//! The OTLP trace exporter, off unless `telemetry.otlp.endpoint` (or
//! `OTEL_EXPORTER_OTLP_ENDPOINT`) is set. Spans are batched on a thread of the SDK's own, behind
//! a bounded queue: a request only ever hands a finished span over without waiting, and when the
//! queue is full (a slow or unreachable collector) the span is dropped and counted in
//! `seatlock_otel_spans_dropped_total`.
//!
//! The SDK's batch processor drops silently once its queue is full, so the queue is bounded here
//! instead ([`Gate`]): a span is admitted only while fewer than `queue_size` wait, counted out
//! again when the exporter takes its batch ([`Counted`]); the SDK's own queue has the same size
//! and so never overflows first.
//!
//! Spans that cannot be delivered are not made either ([`making_spans`]): while the queue is
//! full, and for a back-off after a failed export (1 s, doubling to 30 s; the first export after
//! it is the probe), no span is started, so an unreachable collector costs the requests nothing
//! but the check. Their responses still carry a `traceparent` (made as with no endpoint).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use metrics::{counter, describe_counter, describe_gauge, gauge};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, Span, SpanData,
    SpanExporter, SpanProcessor,
};

use crate::config::OtlpSettings;

pub const OTEL_SPANS_DROPPED: &str = "seatlock_otel_spans_dropped_total";
pub const OTEL_EXPORT_FAILURES: &str = "seatlock_otel_export_failures_total";
pub const OTEL_EXPORT_PAUSED: &str = "seatlock_otel_export_paused";

pub(super) fn describe() {
    describe_counter!(
        OTEL_SPANS_DROPPED,
        "Finished spans dropped because the export queue (telemetry.otlp.queue_size) was full: the collector is slow or unreachable."
    );
    describe_counter!(
        OTEL_EXPORT_FAILURES,
        "Span exports that failed (the collector refused, timed out or could not be reached)."
    );
    describe_gauge!(
        OTEL_EXPORT_PAUSED,
        "1 while no spans are made: the last export failed (back-off) or the export queue is full."
    );
}

pub(super) fn register_at_zero() {
    counter!(OTEL_SPANS_DROPPED).absolute(0);
    counter!(OTEL_EXPORT_FAILURES).absolute(0);
    gauge!(OTEL_EXPORT_PAUSED).set(0.0);
}

/// The first back-off after a failed export; each further failure doubles it, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// Whether the export can take spans: the queue has room and no back-off is running.
struct Health {
    queue_full: AtomicBool,
    /// End of the running back-off, ms since `epoch` (0: none).
    paused_until_ms: AtomicU64,
    /// Failed exports in a row.
    failures: AtomicU32,
    epoch: Instant,
}

static HEALTH: LazyLock<Health> = LazyLock::new(|| Health {
    queue_full: AtomicBool::new(false),
    paused_until_ms: AtomicU64::new(0),
    failures: AtomicU32::new(0),
    epoch: Instant::now(),
});

impl Health {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn open(&self) -> bool {
        if self.queue_full.load(Ordering::Relaxed) {
            return false;
        }
        let until = self.paused_until_ms.load(Ordering::Relaxed);
        until == 0 || self.now_ms() >= until
    }

    fn exported(&self, ok: bool) {
        if ok {
            self.failures.store(0, Ordering::Relaxed);
            self.paused_until_ms.store(0, Ordering::Relaxed);
        } else {
            let failures = self
                .failures
                .fetch_add(1, Ordering::Relaxed)
                .saturating_add(1);
            let until = self.now_ms() + backoff(failures).as_millis() as u64;
            self.paused_until_ms.store(until.max(1), Ordering::Relaxed);
            counter!(OTEL_EXPORT_FAILURES).increment(1);
        }
        self.show();
    }

    fn set_queue_full(&self, full: bool) {
        if self.queue_full.swap(full, Ordering::Relaxed) != full {
            self.show();
        }
    }

    fn show(&self) {
        let paused = self.queue_full.load(Ordering::Relaxed)
            || self.paused_until_ms.load(Ordering::Relaxed) != 0;
        gauge!(OTEL_EXPORT_PAUSED).set(if paused { 1.0 } else { 0.0 });
    }
}

/// The back-off after `failures` failed exports in a row (1 or more).
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_PAUSE.saturating_mul(1 << doublings).min(MAX_PAUSE)
}

/// Whether a span made now can be delivered: false while the export queue is full or the export
/// backs off after a failure. Then no span is started (see the module's documentation).
pub(super) fn making_spans() -> bool {
    HEALTH.open()
}

/// The running exporter; [`TraceExport::shutdown`] sends what is queued before the process
/// exits. Without an endpoint it holds nothing.
#[derive(Default)]
pub struct TraceExport {
    provider: Option<SdkTracerProvider>,
}

impl TraceExport {
    /// Flushes the queued spans (for at most a few seconds) and stops the export thread.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown_with_timeout(Duration::from_secs(5))
        {
            tracing::warn!(error = %e, "trace export did not shut down cleanly");
        }
    }
}

/// The tracer of the export and the handle that stops it; None without an endpoint.
pub(super) fn tracer(settings: &OtlpSettings) -> Option<(SdkTracer, TraceExport)> {
    let url = settings.traces_url()?;
    install_crypto_provider();
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url.as_str())
        .with_timeout(Duration::from_millis(settings.export_timeout_ms))
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("seatlock: trace export off: the OTLP exporter failed to start: {e}");
            return None;
        }
    };
    let queued = Arc::new(AtomicUsize::new(0));
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(settings.queue_size)
        .with_max_export_batch_size(settings.queue_size.min(512))
        .build();
    let processor = BatchSpanProcessor::builder(Counted {
        inner: exporter,
        queued: queued.clone(),
    })
    .with_batch_config(batch)
    .build();
    // `service.instance.id`: as set in `OTEL_RESOURCE_ATTRIBUTES`, else a UUID of this process.
    let instance = opentelemetry::Key::from_static_str("service.instance.id");
    let instance = Resource::builder()
        .build()
        .get(&instance)
        .map(|id| id.to_string())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let resource = Resource::builder()
        .with_service_name("seatlock")
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.instance.id", instance),
        ])
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(Gate {
            inner: processor,
            queued,
            limit: settings.queue_size,
        })
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            settings.sample_ratio,
        ))))
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("seatlock");
    Some((
        tracer,
        TraceExport {
            provider: Some(provider),
        },
    ))
}

/// rustls (the exporter's client, for an https endpoint) needs one process-wide crypto provider;
/// a second install is a harmless error.
#[expect(
    deprecated,
    reason = "ring builds with the C compiler alone, as for the webhook client; a collector \
              negotiates classic key exchange"
)]
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Admits a finished span to the batch processor only while its queue has room; else drops and
/// counts it.
#[derive(Debug)]
struct Gate {
    inner: BatchSpanProcessor,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

impl SpanProcessor for Gate {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if admit(&self.queued, self.limit) {
            self.inner.on_end(span);
        } else {
            HEALTH.set_queue_full(true);
            counter!(OTEL_SPANS_DROPPED).increment(1);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Takes a place in a queue of at most `limit`; false when it is full.
fn admit(queued: &AtomicUsize, limit: usize) -> bool {
    queued
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < limit).then_some(n + 1)
        })
        .is_ok()
}

/// The OTLP exporter, giving back the queue places of each batch it takes.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    queued: Arc<AtomicUsize>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                Some(q.saturating_sub(n))
            });
        HEALTH.set_queue_full(false);
        let result = self.inner.export(batch).await;
        HEALTH.exported(result.is_ok());
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_admits_up_to_its_limit() {
        let queued = AtomicUsize::new(0);
        assert!(admit(&queued, 2));
        assert!(admit(&queued, 2));
        assert!(!admit(&queued, 2));
        queued.fetch_sub(1, Ordering::AcqRel);
        assert!(admit(&queued, 2));
    }

    #[test]
    fn the_back_off_doubles_from_one_second_to_thirty() {
        let secs: Vec<u64> = (1..=7).map(|f| backoff(f).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(u32::MAX), MAX_PAUSE);
    }

    #[test]
    fn no_spans_are_made_while_the_queue_is_full_or_during_a_back_off() {
        let h = Health {
            queue_full: AtomicBool::new(false),
            paused_until_ms: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            // A process that has run for a minute.
            epoch: Instant::now() - Duration::from_secs(60),
        };
        assert!(h.open());
        h.set_queue_full(true);
        assert!(!h.open());
        h.set_queue_full(false);
        assert!(h.open());
        h.exported(false);
        assert!(!h.open(), "a failed export pauses");
        assert_eq!(h.failures.load(Ordering::Relaxed), 1);
        // The back-off over: the next spans are the probe.
        h.paused_until_ms.store(1, Ordering::Relaxed);
        assert!(h.open());
        h.exported(false);
        let second = h.paused_until_ms.load(Ordering::Relaxed) - h.now_ms();
        assert!(second > 1000 && second <= 2000, "{second}");
        h.exported(true);
        assert!(h.open());
        assert_eq!(h.failures.load(Ordering::Relaxed), 0);
    }
}
