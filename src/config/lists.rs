//! The settings that are lists, read from one environment variable each. They are split here
//! rather than by the `config` crate's environment source, which reads a lone number (`=5`) as a
//! number, not a list of one, and keeps the spaces of `5, 300`.

use std::collections::HashMap;

use config::builder::DefaultState;
use config::{ConfigBuilder, ConfigError};

/// The settings that are lists, and their variables: comma-separated, spaces around an item
/// ignored, an empty value an empty list.
const VARS: [(&str, &str); 3] = [
    ("APP__SERVER__TRUSTED_PROXIES", "server.trusted_proxies"),
    ("APP__REDIS__CLUSTER_URLS", "redis.cluster_urls"),
    (
        "APP__WEBHOOKS__RETRY_SCHEDULE_SECONDS",
        "webhooks.retry_schedule_seconds",
    ),
];

fn split(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

/// Takes the list variables out of `vars` and sets each, split, over the files.
pub(super) fn overrides(
    mut builder: ConfigBuilder<DefaultState>,
    vars: &mut HashMap<String, String>,
) -> Result<ConfigBuilder<DefaultState>, ConfigError> {
    for (var, key) in VARS {
        if let Some(value) = vars.remove(var) {
            builder = builder.set_override(key, split(&value))?;
        }
    }
    Ok(builder)
}
