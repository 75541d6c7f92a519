//! Settings of the trace export (OpenTelemetry over OTLP/HTTP). Off unless an endpoint is set:
//! `telemetry.otlp.endpoint`, else the standard `OTEL_EXPORTER_OTLP_ENDPOINT`.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub otlp: OtlpSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpSettings {
    /// Base URL of the collector (`/v1/traces` is appended); empty: no export.
    pub endpoint: String,
    /// Share of new traces sampled; a caller's sampled `traceparent` is always kept.
    pub sample_ratio: f64,
    /// Finished spans waiting for export at most; beyond it spans are dropped and counted.
    pub queue_size: usize,
    /// Deadline of one export call.
    pub export_timeout_ms: u64,
}

impl OtlpSettings {
    /// The URL spans are posted to, as `OTEL_EXPORTER_OTLP_ENDPOINT` means a base URL; None: no
    /// export.
    pub fn traces_url(&self) -> Option<String> {
        let base = self.endpoint.trim().trim_end_matches('/');
        (!base.is_empty()).then(|| format!("{base}/v1/traces"))
    }

    /// The standard variable fills in an endpoint the settings leave empty.
    pub(super) fn fill_from_env(&mut self, otel_endpoint: Option<&String>) {
        if self.endpoint.trim().is_empty()
            && let Some(v) = otel_endpoint.filter(|v| !v.trim().is_empty())
        {
            self.endpoint = v.clone();
        }
    }

    /// (key, valid, what a valid value is).
    pub(super) fn checks(&self) -> [(&'static str, bool, &'static str); 4] {
        let endpoint = self.endpoint.trim();
        [
            (
                "telemetry.otlp.endpoint",
                endpoint.is_empty()
                    || url::Url::parse(endpoint)
                        .is_ok_and(|u| matches!(u.scheme(), "http" | "https")),
                "must be empty or an http(s) URL",
            ),
            (
                "telemetry.otlp.sample_ratio",
                (0.0..=1.0).contains(&self.sample_ratio),
                "must be 0.0..=1.0",
            ),
            (
                "telemetry.otlp.queue_size",
                (1..=1_000_000).contains(&self.queue_size),
                "must be 1..=1000000",
            ),
            (
                "telemetry.otlp.export_timeout_ms",
                (1..=60_000).contains(&self.export_timeout_ms),
                "must be 1..=60000",
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::OtlpSettings;

    fn otlp(endpoint: &str) -> OtlpSettings {
        OtlpSettings {
            endpoint: endpoint.into(),
            sample_ratio: 1.0,
            queue_size: 2048,
            export_timeout_ms: 10_000,
        }
    }

    #[test]
    fn the_traces_path_is_appended_to_the_base_url() {
        assert_eq!(otlp("").traces_url(), None);
        assert_eq!(
            otlp("http://collector:4318/").traces_url().as_deref(),
            Some("http://collector:4318/v1/traces")
        );
    }

    #[test]
    fn the_setting_wins_over_the_standard_variable() {
        let var = "http://from-env:4318".to_string();
        let mut unset = otlp("");
        unset.fill_from_env(Some(&var));
        assert_eq!(unset.endpoint, var);
        let mut set = otlp("http://from-settings:4318");
        set.fill_from_env(Some(&var));
        assert_eq!(set.endpoint, "http://from-settings:4318");
    }
}
