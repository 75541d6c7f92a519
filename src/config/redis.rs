//! The Redis settings: one Redis or a cluster.

use serde::Deserialize;

use super::{Settings, SettingsError};

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// The Redis of `standalone` mode.
    pub url: String,
    /// One Redis, or a Redis Cluster.
    pub mode: RedisMode,
    /// Seed nodes of the cluster in `cluster` mode (the rest of the cluster is found from them).
    pub cluster_urls: Vec<String>,
    pub pool_size: usize,
    pub pool_wait_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub response_timeout_ms: u64,
    pub key_prefix: String,
}

/// How seatlock reaches Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// One Redis (or a primary with replicas behind one address) at `redis.url`.
    #[default]
    Standalone,
    /// A Redis Cluster found from `redis.cluster_urls`: every event lives on one shard.
    Cluster,
}

impl RedisMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RedisMode::Standalone => "standalone",
            RedisMode::Cluster => "cluster",
        }
    }
}

impl Settings {
    pub(super) fn validate_redis(&self) -> Result<(), SettingsError> {
        let fail = |key: &str, why: &str| Err(SettingsError(format!("{key} {why}")));
        if self.redis.mode == RedisMode::Cluster && self.redis.cluster_urls.is_empty() {
            return fail(
                "redis.cluster_urls",
                "must name at least one seed node when redis.mode is cluster",
            );
        }
        if self.redis.cluster_urls.len() > 64 {
            return fail("redis.cluster_urls", "must name at most 64 seed nodes");
        }
        for url in &self.redis.cluster_urls {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return fail(
                    "redis.cluster_urls",
                    "must be redis:// or rediss:// URLs, separated by commas",
                );
            }
        }
        Ok(())
    }
}
