//! Settings, layered: `config/default.toml` (compiled in) -> `config/{APP_ENV}.toml` ->
//! `APP__SECTION__KEY` environment variables -> the conventional `DATABASE_URL`, `REDIS_URL`
//! and `PORT`. This is the only module that reads the environment. Secrets (the JWT secret,
//! the admission keys, passwords in URLs) never show in `Debug` output.

mod access;
mod admission;
mod checks;
mod history;
mod lists;
mod redact;
mod redis;
mod server;
mod telemetry;

use std::collections::HashMap;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

pub use access::{
    AuthMode, AuthSettings, JwtSettings, LimitSettings, Limits, RateSettings, Secret,
};
pub use admission::{AdmissionJwtSettings, AdmissionMode, AdmissionSettings, QueueitSettings};
pub use history::{HistorySettings, WebhookSettings};
pub use redis::{RedisMode, RedisSettings};
pub use server::ServerSettings;
pub use telemetry::{OtlpSettings, TelemetrySettings};

use crate::domain::holds::HoldStore;

const DEFAULTS: &str = include_str!("../../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub holds: HoldSettings,
    pub events: EventSettings,
    pub stream: StreamSettings,
    pub breaker: BreakerSettings,
    pub idempotency: IdempotencySettings,
    pub auth: AuthSettings,
    pub admission: AdmissionSettings,
    #[serde(default)]
    pub limits: LimitSettings,
    pub log: LogSettings,
    pub history: HistorySettings,
    pub webhooks: WebhookSettings,
    pub telemetry: TelemetrySettings,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub create_if_missing: bool,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    pub max_retries: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldSettings {
    pub ttl_seconds: u64,
    pub max_seats_per_hold: usize,
    pub confirm_grace_seconds: u64,
    /// Where holds are taken: Redis, or Postgres for the Postgres-only mode.
    pub backend: HoldStore,
    pub fallback: HoldFallback,
    pub sweep_interval_seconds: u64,
    /// An extended hold never lives past this many seconds from when it was taken.
    pub max_lifetime_seconds: u64,
    /// How many times one hold may be extended.
    pub max_renewals: u32,
}

/// What happens to holds while Redis is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldFallback {
    Postgres,
    Reject,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerSettings {
    pub failure_threshold: u32,
    pub open_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencySettings {
    pub ttl_hours: u64,
    pub lease_seconds: u64,
    pub sweep_interval_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSettings {
    pub max_seats: u32,
    pub max_tiers: u32,
    pub max_tier_capacity: u32,
}

/// The live seat map (`GET /events/{id}/stream`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    /// Open streams one instance serves at most (503 beyond).
    pub max_connections: usize,
    /// Seconds between heartbeat comments.
    pub heartbeat_seconds: u64,
    /// Changes of one event folded into one update, in milliseconds (at most one update per
    /// event per connection this often).
    pub coalesce_ms: u64,
    /// Updates one connection may fall behind before it gets a fresh snapshot instead.
    pub buffer: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
    /// `NO_COLOR` is set to a non-empty value (no-color.org): text logs never carry colour codes.
    #[serde(skip)]
    pub no_color: bool,
}

/// Why the settings could not be loaded; the message names the offending key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct SettingsError(String);

impl Settings {
    /// Reads the files and the process environment.
    pub fn load() -> Result<Self, SettingsError> {
        Self::from_env(std::env::vars().collect())
    }

    /// Builds the settings from the files and the given environment (tests pass their own).
    pub fn from_env(env: HashMap<String, String>) -> Result<Self, SettingsError> {
        let app_env = env
            .get("APP_ENV")
            .cloned()
            .unwrap_or_else(|| "local".into());
        let mut app_vars: HashMap<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("APP__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // The conventional variables win over everything else.
        for (var, key) in [
            ("DATABASE_URL", "APP__DATABASE__URL"),
            ("REDIS_URL", "APP__REDIS__URL"),
            ("PORT", "APP__SERVER__PORT"),
        ] {
            if let Some(v) = env.get(var).filter(|v| !v.is_empty()) {
                app_vars.insert(key.into(), v.clone());
            }
        }
        let builder = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .add_source(File::with_name(&format!("config/{app_env}")).required(false));
        let builder =
            lists::overrides(builder, &mut app_vars).map_err(|e| SettingsError(e.to_string()))?;
        let mut settings: Settings = builder
            .add_source(
                Environment::with_prefix("APP")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(app_vars)),
            )
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|e| SettingsError(settings_words(&e.to_string())))?;
        settings.log.no_color = env.get("NO_COLOR").is_some_and(|v| !v.is_empty());
        let otel = env.get("OTEL_EXPORTER_OTLP_ENDPOINT");
        settings.telemetry.otlp.fill_from_env(otel);
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let checks = self.checks();
        let server = self.server.checks();
        let history = self.history.checks();
        let webhooks = self.webhooks.checks();
        let otlp = self.telemetry.otlp.checks();
        if let Some((key, _, why)) = checks
            .iter()
            .chain(&server)
            .chain(&history)
            .chain(&webhooks)
            .chain(&otlp)
            .find(|(_, ok, _)| !ok)
        {
            return Err(SettingsError(format!("{key} {why}")));
        }
        self.validate_redis()?;
        self.validate_access()
    }

    fn validate_access(&self) -> Result<(), SettingsError> {
        let fail = |key: &str, why: &str| Err(SettingsError(format!("{key} {why}")));
        let jwt = &self.auth.jwt;
        if jwt.hs256_secret.is_set() && jwt.hs256_secret.expose().len() < 32 {
            return fail("auth.jwt.hs256_secret", "must be at least 32 bytes");
        }
        if !(1..=30).contains(&self.auth.key_cache_seconds) {
            return fail("auth.key_cache_seconds", "must be 1..=30");
        }
        if jwt.leeway_seconds > 300 {
            return fail("auth.jwt.leeway_seconds", "must be 0..=300");
        }
        if let Some((key, why)) = self.admission.problem() {
            return fail(key, why);
        }
        for proxy in &self.server.trusted_proxies {
            if parse_proxy(proxy).is_none() {
                return fail(
                    "server.trusted_proxies",
                    &format!("has {proxy:?}, which is neither an IP address nor a CIDR range"),
                );
            }
        }
        Ok(())
    }

    /// The trusted proxies, parsed (validated at load).
    pub fn trusted_proxies(&self) -> Vec<ipnet::IpNet> {
        self.server
            .trusted_proxies
            .iter()
            .filter_map(|p| parse_proxy(p))
            .collect()
    }

    /// The caps and rates in force.
    pub fn limits(&self) -> Limits {
        self.limits.effective(self.auth.mode)
    }
}

/// The config crate's message for an unknown choice names the Rust enum
/// ("enum AuthMode does not have variant constructor bogus for key `auth.mode`"); say it in the
/// settings' words instead ("unknown value `bogus` for key `auth.mode`").
fn settings_words(message: &str) -> String {
    const VARIANT: &str = " does not have variant constructor ";
    if let (Some(start), Some(at)) = (message.find("enum "), message.find(VARIANT)) {
        let rest = &message[at + VARIANT.len()..];
        let (value, tail) = rest.split_once(" for key ").unwrap_or((rest, ""));
        let key = if tail.is_empty() {
            String::new()
        } else {
            format!(" for key {tail}")
        };
        return format!("{}unknown value `{value}`{key}", &message[..start]);
    }
    message.to_string()
}

fn parse_proxy(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

impl ServerSettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

impl HoldSettings {
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_choice_is_said_in_the_settings_words() {
        assert_eq!(
            settings_words(
                "invalid configuration: enum AuthMode does not have variant constructor bogus for key `auth.mode`"
            ),
            "invalid configuration: unknown value `bogus` for key `auth.mode`"
        );
        assert_eq!(settings_words("anything else"), "anything else");
    }

    #[test]
    fn proxies_are_addresses_or_ranges() {
        assert!(parse_proxy("10.0.0.0/8").is_some());
        assert!(parse_proxy("127.0.0.1").is_some());
        assert!(parse_proxy("::1").is_some());
        assert!(parse_proxy("proxy.example").is_none());
    }
}
