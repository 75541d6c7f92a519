//! The settings that are lists, read from one environment variable each.

/// The settings that are lists, and their variables: comma-separated, spaces around an item
/// ignored, an empty value an empty list.
pub(super) const VARS: [(&str, &str); 3] = [
    ("APP__SERVER__TRUSTED_PROXIES", "server.trusted_proxies"),
    ("APP__REDIS__CLUSTER_URLS", "redis.cluster_urls"),
    (
        "APP__WEBHOOKS__RETRY_SCHEDULE_SECONDS",
        "webhooks.retry_schedule_seconds",
    ),
];

pub(super) fn split(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}
