//! Idempotency-Key (IETF draft "The Idempotency-Key HTTP Header Field"): what identifies a
//! stored response, and what a keyed request can find. No I/O here.

use super::events::EventId;

/// Identity of a stored response: (event, user, route, key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyScope {
    pub event: EventId,
    pub user_id: String,
    pub route: String,
    pub key: String,
}

/// What a keyed request found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// First use (or the first request's lease expired): run the request, then store.
    /// `claimed_at` (µs since epoch) identifies this use of the key: a key reused after its
    /// stored response expired is a new use.
    Owner { claimed_at: i64 },
    /// Completed before: answer with this.
    Replay { status: u16, body: Vec<u8> },
    /// Same key, different request body.
    Mismatch,
    /// The first request with this key is still running.
    InFlight,
}

/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;

/// Checks a key: 1 to 255 visible ASCII characters.
pub fn validate_key(key: &str) -> Result<&str, String> {
    if !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(key)
    } else {
        Err(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
        ))
    }
}

/// The fingerprint of a request body: SHA-256 of its canonical JSON (serde_json orders object
/// keys), so key order and whitespace do not matter.
pub fn fingerprint(body: &serde_json::Value) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(body.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One use of a key: the key, and when this use of it was claimed. A keyed reserve derives its
/// hold id from it, so a retry of the same use finds the same hold, and a reuse of the key after
/// its stored response expired takes a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUse {
    pub key: String,
    pub claimed_at: i64,
}

impl KeyUse {
    /// The seed of ids derived from this use.
    pub fn seed(&self) -> String {
        format!("{}/{}", self.claimed_at, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded_visible_ascii() {
        assert_eq!(validate_key("order-42"), Ok("order-42"));
        assert!(validate_key("").is_err());
        assert!(validate_key("two words").is_err());
        assert!(validate_key("caf\u{e9}").is_err());
        assert!(validate_key(&"k".repeat(MAX_KEY_LEN)).is_ok());
        assert!(validate_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn fingerprints_ignore_key_order_and_whitespace() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"userId":"u1","seatCodes":["S1"]}"#).expect("json");
        let b: serde_json::Value =
            serde_json::from_str(r#"{ "seatCodes": ["S1"], "userId": "u1" }"#).expect("json");
        let c: serde_json::Value =
            serde_json::from_str(r#"{"userId":"u1","seatCodes":["S2"]}"#).expect("json");
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }

    #[test]
    fn each_use_of_a_key_seeds_its_own_ids() {
        let first = KeyUse {
            key: "k".into(),
            claimed_at: 1,
        };
        let later = KeyUse {
            key: "k".into(),
            claimed_at: 2,
        };
        assert_ne!(first.seed(), later.seed());
        assert_eq!(first.seed(), "1/k");
    }
}
