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

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use metrics::{counter, describe_counter};
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

pub(super) fn describe() {
    describe_counter!(
        OTEL_SPANS_DROPPED,
        "Finished spans dropped because the export queue (telemetry.otlp.queue_size) was full: the collector is slow or unreachable."
    );
}

pub(super) fn register_at_zero() {
    counter!(OTEL_SPANS_DROPPED).absolute(0);
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
    let resource = Resource::builder()
        .with_service_name("seatlock")
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.instance.id", uuid::Uuid::new_v4().to_string()),
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
        self.inner.export(batch).await
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
}
