//! Settings of admission from a waiting room: whether a hold needs an admission token, and the
//! keys that verify one (an AWS Virtual Waiting Room JWT, or a Queue-it KnownUser token).
//! Checked at start-up, so a mode without its key never starts.

use serde::Deserialize;

use super::access::Secret;

/// Which admission tokens a hold needs. `off`: none. `jwt`: a JWT whose `aud` is the event
/// (the AWS Virtual Waiting Room's token). `queueit`: a Queue-it KnownUser token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdmissionMode {
    Off,
    Jwt,
    Queueit,
}

impl AdmissionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AdmissionMode::Off => "off",
            AdmissionMode::Jwt => "jwt",
            AdmissionMode::Queueit => "queueit",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmissionSettings {
    pub mode: AdmissionMode,
    /// Clock skew allowed on a JWT's `exp` and `nbf`, in seconds.
    pub leeway_seconds: u64,
    /// Live holds one admission may have in one event.
    pub max_live_holds: u32,
    pub jwt: AdmissionJwtSettings,
    pub queueit: QueueitSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmissionJwtSettings {
    /// PEM public key (RSA -> RS256, P-256 -> ES256, Ed25519 -> EdDSA); empty: none.
    pub public_key_file: String,
    /// HS256 shared secret (at least 32 bytes); empty: HS256 not accepted.
    pub hs256_secret: Secret,
    /// Required `iss`; empty: not checked.
    pub issuer: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueitSettings {
    /// The Queue-it customer's secret key: the HMAC-SHA256 key of every token.
    pub secret_key: Secret,
}

impl AdmissionSettings {
    /// The problem with these settings, as (key, why), if any.
    pub(super) fn problem(&self) -> Option<(&'static str, &'static str)> {
        let jwt = &self.jwt;
        let checks = [
            (
                "admission.max_live_holds",
                self.max_live_holds >= 1,
                "must be at least 1",
            ),
            (
                "admission.leeway_seconds",
                self.leeway_seconds <= 300,
                "must be 0..=300",
            ),
            (
                "admission.jwt.hs256_secret",
                !jwt.hs256_secret.is_set() || jwt.hs256_secret.expose().len() >= 32,
                "must be at least 32 bytes",
            ),
            (
                "admission.jwt.public_key_file",
                self.mode != AdmissionMode::Jwt
                    || jwt.hs256_secret.is_set()
                    || !jwt.public_key_file.is_empty(),
                "(or admission.jwt.hs256_secret) must be set when admission.mode is jwt",
            ),
            (
                "admission.queueit.secret_key",
                self.mode != AdmissionMode::Queueit || self.queueit.secret_key.is_set(),
                "must be set when admission.mode is queueit",
            ),
        ];
        checks
            .into_iter()
            .find(|(_, ok, _)| !ok)
            .map(|(key, _, why)| (key, why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off() -> AdmissionSettings {
        AdmissionSettings {
            mode: AdmissionMode::Off,
            leeway_seconds: 30,
            max_live_holds: 1,
            jwt: AdmissionJwtSettings {
                public_key_file: String::new(),
                hs256_secret: Secret::default(),
                issuer: String::new(),
            },
            queueit: QueueitSettings {
                secret_key: Secret::default(),
            },
        }
    }

    #[test]
    fn each_mode_needs_its_key_and_a_hold_count_of_at_least_one() {
        assert_eq!(off().problem(), None);
        let mut s = off();
        s.mode = AdmissionMode::Jwt;
        assert_eq!(
            s.problem().map(|p| p.0),
            Some("admission.jwt.public_key_file")
        );
        s.jwt.hs256_secret = Secret::new("short");
        assert_eq!(s.problem().map(|p| p.0), Some("admission.jwt.hs256_secret"));
        s.jwt.hs256_secret = Secret::new("x".repeat(32));
        assert_eq!(s.problem(), None);
        s.jwt.hs256_secret = Secret::default();
        s.jwt.public_key_file = "/keys/vwr.pem".into();
        assert_eq!(s.problem(), None);

        let mut s = off();
        s.mode = AdmissionMode::Queueit;
        assert_eq!(
            s.problem().map(|p| p.0),
            Some("admission.queueit.secret_key")
        );
        s.queueit.secret_key = Secret::new("4e1deweb-e2c6-4a7c-a3be-0a4bb05e8fba");
        assert_eq!(s.problem(), None);
        s.max_live_holds = 0;
        assert_eq!(s.problem().map(|p| p.0), Some("admission.max_live_holds"));
    }
}
