//! Settings of who may do what: the auth mode, JWT verification, per-buyer caps and rate limits,
//! and the `Secret` wrapper that keeps secrets out of `Debug` output (and so out of logs).

use serde::Deserialize;

use crate::domain::limits::Rate;

/// A secret setting: its `Debug` shows only whether it is set.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_set() {
            "[redacted]"
        } else {
            "[unset]"
        })
    }
}

/// `none`: every caller is trusted (development, trusted networks). `token`: every route but
/// health, readiness, metrics and the API document needs a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    None,
    Token,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::Token => "token",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub mode: AuthMode,
    /// How long a looked-up API key (or its absence) is trusted before Postgres is asked again:
    /// the most a revoke takes to be seen.
    pub key_cache_seconds: u64,
    pub jwt: JwtSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// HS256 shared secret (at least 32 bytes); empty: HS256 not accepted.
    pub hs256_secret: Secret,
    /// PEM public key (RSA -> RS256, P-256 -> ES256, Ed25519 -> EdDSA); empty: none.
    pub public_key_file: String,
    /// Required `iss`; empty: not checked.
    pub issuer: String,
    /// Required `aud`; empty: not checked.
    pub audience: String,
    pub leeway_seconds: u64,
}

/// Per-buyer caps and rate limits. Each is off at 0; a key left out takes its default in `token`
/// mode and is off in `none` mode.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub max_seats_per_user: Option<u32>,
    pub max_live_holds_per_user: Option<u32>,
    #[serde(default)]
    pub rate: RateSettings,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSettings {
    pub user_per_second: Option<u32>,
    pub user_burst: Option<u32>,
    pub key_per_second: Option<u32>,
}

/// The caps and rates in force: None is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_seats_per_user: Option<u32>,
    pub max_live_holds_per_user: Option<u32>,
    /// For buyers (JWT `sub`), and for client addresses in `none` mode.
    pub user_rate: Option<Rate>,
    /// For API keys.
    pub key_rate: Option<Rate>,
}

impl LimitSettings {
    /// What is in force in `mode`: a set value (0 is off), else the `token`-mode default, else
    /// off.
    pub fn effective(&self, mode: AuthMode) -> Limits {
        let pick = |set: Option<u32>, token_default: u32| {
            let value = match (set, mode) {
                (Some(v), _) => v,
                (None, AuthMode::Token) => token_default,
                (None, AuthMode::None) => 0,
            };
            (value > 0).then_some(value)
        };
        let user_rate = pick(self.rate.user_per_second, 5).map(|per_second| Rate {
            per_second,
            burst: self
                .rate
                .user_burst
                .filter(|b| *b > 0)
                .unwrap_or(if mode == AuthMode::Token {
                    20
                } else {
                    per_second
                })
                .max(1),
        });
        let key_rate = pick(self.rate.key_per_second, 2000).map(|per_second| Rate {
            per_second,
            burst: per_second,
        });
        Limits {
            max_seats_per_user: pick(self.max_seats_per_user, 10),
            max_live_holds_per_user: pick(self.max_live_holds_per_user, 3),
            user_rate,
            key_rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s = Secret::new("hunter2-hunter2-hunter2-hunter2-x");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Secret::default()), "[unset]");
    }

    #[test]
    fn limits_default_on_in_token_mode_and_off_in_none_mode() {
        let unset = LimitSettings::default();
        let token = unset.effective(AuthMode::Token);
        assert_eq!(token.max_seats_per_user, Some(10));
        assert_eq!(token.max_live_holds_per_user, Some(3));
        assert_eq!(
            token.user_rate,
            Some(Rate {
                per_second: 5,
                burst: 20
            })
        );
        assert_eq!(
            token.key_rate,
            Some(Rate {
                per_second: 2000,
                burst: 2000
            })
        );
        let none = unset.effective(AuthMode::None);
        assert_eq!(none.max_seats_per_user, None);
        assert_eq!(none.user_rate, None);
        let set = LimitSettings {
            max_seats_per_user: Some(4),
            max_live_holds_per_user: Some(0),
            rate: RateSettings {
                user_per_second: Some(2),
                ..RateSettings::default()
            },
        };
        let none = set.effective(AuthMode::None);
        assert_eq!(none.max_seats_per_user, Some(4));
        assert_eq!(none.max_live_holds_per_user, None, "0 is off");
        assert_eq!(
            none.user_rate,
            Some(Rate {
                per_second: 2,
                burst: 2
            })
        );
    }
}
