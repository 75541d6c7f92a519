//! Settings of the history and of webhooks.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySettings {
    /// Whether changes are recorded at all. Off, no hold script writes the history stream, no
    /// transaction writes history rows, no flush runs, and the history and webhook routes answer
    /// 404 `HISTORY_DISABLED`: for deployments that need neither, whose holds then pay nothing
    /// for them.
    pub enabled: bool,
    /// Every change is recorded within this long of the service going quiet (the flush runs
    /// every quarter of it).
    pub flush_ms: u64,
    /// Numbered changes older than this are deleted.
    pub retention_days: u32,
}

impl HistorySettings {
    /// How often the flush runs.
    pub fn flush_every(&self) -> Duration {
        Duration::from_millis((self.flush_ms / 4).max(10))
    }

    pub(super) fn checks(&self) -> [(&'static str, bool, &'static str); 2] {
        [
            (
                "history.flush_ms",
                (40..=60_000).contains(&self.flush_ms),
                "must be 40..=60000",
            ),
            (
                "history.retention_days",
                (1..=36_500).contains(&self.retention_days),
                "must be 1..=36500",
            ),
        ]
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Longest wait for a receiver's answer.
    pub timeout_seconds: u64,
    /// Delay before each retry after a failed attempt; one attempt more than its length.
    pub retry_schedule_seconds: Vec<u64>,
    /// An endpoint whose every attempt failed for this long is disabled.
    pub disable_after_hours: u64,
    /// Allows loopback, private and other non-public addresses (tests, closed networks).
    pub allow_private_networks: bool,
    /// Delivered and failed messages older than this are deleted.
    pub retention_days: u32,
}

impl WebhookSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    pub(super) fn checks(&self) -> [(&'static str, bool, &'static str); 4] {
        [
            (
                "webhooks.timeout_seconds",
                (1..=300).contains(&self.timeout_seconds),
                "must be 1..=300",
            ),
            (
                "webhooks.retry_schedule_seconds",
                self.retry_schedule_seconds.len() <= 100
                    && self
                        .retry_schedule_seconds
                        .iter()
                        .all(|s| (1..=604_800).contains(s)),
                "must list at most 100 delays of 1..=604800 seconds",
            ),
            (
                "webhooks.disable_after_hours",
                (1..=8760).contains(&self.disable_after_hours),
                "must be 1..=8760",
            ),
            (
                "webhooks.retention_days",
                (1..=3650).contains(&self.retention_days),
                "must be 1..=3650",
            ),
        ]
    }
}
