//! API keys and a caller's channel codes: the shape of a key, its name and its digest, a key
//! as stored and as created, and the channel codes a key or a JWT may carry. No I/O here.

use super::Role;
use crate::domain::fields::is_code;
use crate::domain::policy::{MAX_CHANNEL_LEN, MAX_CHANNELS, is_channel_code};

/// Prefix of every API key.
pub const KEY_PREFIX: &str = "sl_";
/// Random URL-safe characters after the prefix.
pub const KEY_RANDOM_LEN: usize = 43;
/// Longest accepted key name.
pub const MAX_KEY_NAME_LEN: usize = 64;

/// An API key's role, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    Service,
    Admin,
}

impl KeyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Service => "service",
            KeyRole::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "service" => Some(KeyRole::Service),
            "admin" => Some(KeyRole::Admin),
            _ => None,
        }
    }

    pub fn role(self) -> Role {
        match self {
            KeyRole::Service => Role::Service,
            KeyRole::Admin => Role::Admin,
        }
    }
}

/// A live key as the request path needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub name: String,
    pub role: KeyRole,
    pub channels: Vec<String>,
    pub skips_admission: bool,
}

/// A key to create: `seatlock keys create --name N --role R [--channel C]... [--no-admission]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub name: String,
    pub role: KeyRole,
    /// Checked with [`check_channels`].
    pub channels: Vec<String>,
    /// Always true for an admin key.
    pub skips_admission: bool,
}

impl NewApiKey {
    /// A key in no channel; an admin key skips admission, a service key does not.
    pub fn new(name: impl Into<String>, role: KeyRole) -> Self {
        NewApiKey {
            name: name.into(),
            role,
            channels: Vec::new(),
            skips_admission: role == KeyRole::Admin,
        }
    }
}

/// A key as `seatlock keys list` shows it (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub name: String,
    pub role: KeyRole,
    pub channels: Vec<String>,
    pub skips_admission: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Checks a caller's channel codes (each 1-64 of `A-Z a-z 0-9 . _ -`, at most 20 once
/// duplicates are dropped); returns them without duplicates, in their first order.
pub fn check_channels(codes: Vec<String>) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::with_capacity(codes.len().min(MAX_CHANNELS));
    for code in codes {
        if !is_channel_code(&code) {
            return Err(format!(
                "a channel code is 1 to {MAX_CHANNEL_LEN} of A-Z a-z 0-9 . _ -"
            ));
        }
        if !out.contains(&code) {
            if out.len() == MAX_CHANNELS {
                return Err(format!("at most {MAX_CHANNELS} channels"));
            }
            out.push(code);
        }
    }
    Ok(out)
}

/// Checks a key name: 1-64 of `A-Z a-z 0-9 . _ -`.
pub fn validate_key_name(name: &str) -> Result<(), String> {
    if is_code(name, MAX_KEY_NAME_LEN) {
        Ok(())
    } else {
        Err(format!(
            "a key name is 1 to {MAX_KEY_NAME_LEN} of A-Z a-z 0-9 . _ -"
        ))
    }
}

/// Whether a bearer token looks like an API key (else it is taken for a JWT).
pub fn is_api_key(token: &str) -> bool {
    token.starts_with(KEY_PREFIX)
        && token.len() >= KEY_PREFIX.len() + 32
        && token[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A new API key: the prefix and 43 random URL-safe characters (258 bits).
pub fn generate_key() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    let random: String = (0..KEY_RANDOM_LEN)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{KEY_PREFIX}{random}")
}

/// The digest an API key is stored and looked up by.
pub fn key_digest(key: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_names_have_a_shape() {
        let key = format!("sl_{}", "a".repeat(43));
        assert!(is_api_key(&key));
        assert!(!is_api_key("sl_short"));
        assert!(!is_api_key(&format!("sl_{}", "a/".repeat(20))));
        assert!(!is_api_key("eyJhbGciOiJIUzI1NiJ9.e30.sig"));
        assert!(validate_key_name("checkout-eu.1").is_ok());
        assert!(validate_key_name("").is_err());
        assert!(validate_key_name("has space").is_err());
        assert_ne!(key_digest("a"), key_digest("b"));
        let (a, b) = (generate_key(), generate_key());
        assert!(is_api_key(&a) && is_api_key(&b));
        assert_eq!(a.len(), KEY_PREFIX.len() + KEY_RANDOM_LEN);
        assert_ne!(a, b);
    }

    #[test]
    fn channel_codes_have_a_shape_and_a_count() {
        let codes = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_channels(codes(&["presale", "vip.1", "presale", "fan_club-2"])),
            Ok(codes(&["presale", "vip.1", "fan_club-2"]))
        );
        assert_eq!(check_channels(Vec::new()), Ok(Vec::new()));
        assert!(check_channels(codes(&[""])).is_err());
        assert!(check_channels(codes(&["has space"])).is_err());
        assert!(check_channels(codes(&["a,b"])).is_err());
        assert!(check_channels(vec!["x".repeat(65)]).is_err());
        assert!(check_channels(vec!["x".repeat(64)]).is_ok());
        let twenty: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
        assert!(check_channels(twenty.clone()).is_ok());
        let mut twenty_one = twenty;
        twenty_one.push("c20".into());
        assert!(check_channels(twenty_one).is_err());
    }
}
