//! Settings of the HTTP server and its connections.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub max_body_bytes: usize,
    pub request_timeout_ms: u64,
    pub shutdown_grace_seconds: u64,
    /// Addresses or CIDR ranges of reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// How long a client may take to send a request's header, from its connection (first
    /// request) or from the first byte of the request (later ones on a kept-alive connection).
    pub header_read_timeout_ms: u64,
    /// How long a kept-alive connection may sit without a request before it is closed.
    pub idle_timeout_ms: u64,
    /// Open connections at most (lowered at start-up to what the open-files limit allows).
    pub max_connections: usize,
}

impl ServerSettings {
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// (key, valid, what a valid value is).
    pub(super) fn checks(&self) -> [(&'static str, bool, &'static str); 6] {
        [
            ("server.port", self.port > 0, "must be 1..=65535"),
            (
                "server.request_timeout_ms",
                self.request_timeout_ms >= 1,
                "must be at least 1",
            ),
            (
                "server.max_body_bytes",
                self.max_body_bytes >= 1024,
                "must be at least 1024",
            ),
            (
                "server.header_read_timeout_ms",
                (100..=600_000).contains(&self.header_read_timeout_ms),
                "must be 100..=600000",
            ),
            (
                "server.idle_timeout_ms",
                (100..=3_600_000).contains(&self.idle_timeout_ms),
                "must be 100..=3600000",
            ),
            (
                "server.max_connections",
                (1..=1_000_000).contains(&self.max_connections),
                "must be 1..=1000000",
            ),
        ]
    }
}
