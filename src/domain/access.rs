//! Who may do what. A caller is trusted (`none` mode), a buyer (a JWT), or a key-holding backend
//! (`service`) or admin (an API key or a JWT with `"role": "admin"`); each action is decided
//! by one pure table of role x action x ownership. No I/O here.

use crate::error::{Error, Result};

/// Prefix of every API key.
pub const KEY_PREFIX: &str = "sl_";
/// Random URL-safe characters after the prefix.
pub const KEY_RANDOM_LEN: usize = 43;
/// Longest accepted key name.
pub const MAX_KEY_NAME_LEN: usize = 64;

/// What a caller is allowed to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `auth.mode = none`: everyone.
    Trusted,
    /// A buyer calling directly with a JWT; acts only as its `sub`.
    Buyer,
    /// A checkout backend with a `service` API key; acts for the buyers it names.
    Service,
    /// An admin API key, or a JWT with `"role": "admin"`.
    Admin,
}

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

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    /// The JWT `sub` (buyers, admin JWTs); None for API keys and trusted callers.
    pub subject: Option<String>,
    /// The name of the API key; None otherwise.
    pub key_name: Option<String>,
}

impl Caller {
    /// Every caller of `none` mode.
    pub fn trusted() -> Self {
        Caller {
            role: Role::Trusted,
            subject: None,
            key_name: None,
        }
    }
}

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CreateEvent,
    /// Events, seat maps, the API document.
    Read,
    /// Reserve, confirm, release: acts for one buyer.
    ActOnHold,
    ReadBooking,
    CancelBooking,
    /// An event's history, a seat's history: the seller's systems (admins, service keys).
    ReadHistory,
    /// Webhook endpoints and their deliveries: admins.
    ManageWebhooks,
    /// Blocking and unblocking seats: admins.
    ManageSeats,
}

/// Whether the buyer a request acts for is the caller itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// The caller is that buyer (its JWT `sub`).
    Own,
    /// Another buyer.
    Other,
    /// The request names no buyer, or the caller has no buyer identity.
    None,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// 403 `FORBIDDEN`: the caller's role may not do this.
    Forbidden,
    /// 403 `USER_MISMATCH`: a buyer named another buyer.
    UserMismatch,
    /// 404: the thing exists but is not the caller's; its existence is not revealed.
    Hidden,
}

/// Who may do what.
pub fn decide(role: Role, action: Action, ownership: Ownership) -> Decision {
    use Action::*;
    match (role, action, ownership) {
        (Role::Trusted | Role::Admin, _, _) => Decision::Allow,
        (_, Read, _) => Decision::Allow,
        (Role::Service, CreateEvent, _) | (Role::Buyer, CreateEvent, _) => Decision::Forbidden,
        (Role::Service, ActOnHold | ReadBooking | CancelBooking, _) => Decision::Allow,
        (Role::Buyer, ActOnHold | CancelBooking, Ownership::Own) => Decision::Allow,
        (Role::Buyer, ActOnHold | CancelBooking, _) => Decision::UserMismatch,
        (Role::Buyer, ReadBooking, Ownership::Own) => Decision::Allow,
        (Role::Buyer, ReadBooking, _) => Decision::Hidden,
        (Role::Service, ReadHistory, _) => Decision::Allow,
        (Role::Buyer, ReadHistory, _) => Decision::Forbidden,
        (Role::Service | Role::Buyer, ManageWebhooks | ManageSeats, _) => Decision::Forbidden,
    }
}

/// The buyer a hold, confirm, release or cancel acts for, given the body's `userId`: a buyer's
/// own `sub` when it leaves `userId` out (and only its own); for keys, admins and trusted
/// callers, the `userId` the body names (required).
pub fn acting_user(caller: &Caller, body_user: Option<String>) -> Result<String> {
    match (caller.role, body_user, &caller.subject) {
        (Role::Buyer, None, Some(sub)) => Ok(sub.clone()),
        (Role::Buyer, Some(user), Some(sub)) if &user == sub => Ok(user),
        (Role::Buyer, Some(_), _) => Err(Error::UserMismatch),
        (Role::Admin, None, Some(sub)) => Ok(sub.clone()),
        (_, Some(user), _) => Ok(user),
        (_, None, _) => Err(Error::Validation("userId is required".into())),
    }
}

/// Enforces a decision for the buyer `user` a request acts for.
pub fn authorize(caller: &Caller, action: Action, user: Option<&str>) -> Result<()> {
    let ownership = match (user, &caller.subject) {
        (Some(u), Some(sub)) if u == sub => Ownership::Own,
        (Some(_), Some(_)) => Ownership::Other,
        _ => Ownership::None,
    };
    match decide(caller.role, action, ownership) {
        Decision::Allow => Ok(()),
        Decision::Forbidden => Err(Error::Forbidden),
        Decision::UserMismatch => Err(Error::UserMismatch),
        Decision::Hidden => Err(Error::BookingNotFound),
    }
}

/// A live key as the request path needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub name: String,
    pub role: KeyRole,
}

/// A key as `seatlock keys list` shows it (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub name: String,
    pub role: KeyRole,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Checks a key name: 1-64 of `A-Z a-z 0-9 . _ -`.
pub fn validate_key_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_KEY_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
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
    use Action::*;
    use Decision::*;

    #[test]
    fn the_table_of_who_may_do_what() {
        let own = Ownership::Own;
        let other = Ownership::Other;
        let none = Ownership::None;
        let rows = [
            (Role::Trusted, CreateEvent, none, Allow),
            (Role::Trusted, ActOnHold, other, Allow),
            (Role::Admin, CreateEvent, none, Allow),
            (Role::Admin, ReadBooking, other, Allow),
            (Role::Admin, ReadHistory, none, Allow),
            (Role::Admin, ManageWebhooks, none, Allow),
            (Role::Trusted, ManageWebhooks, none, Allow),
            (Role::Service, ReadHistory, none, Allow),
            (Role::Service, ManageWebhooks, none, Forbidden),
            (Role::Buyer, ReadHistory, own, Forbidden),
            (Role::Buyer, ManageWebhooks, none, Forbidden),
            (Role::Admin, ManageSeats, none, Allow),
            (Role::Service, ManageSeats, none, Forbidden),
            (Role::Buyer, ManageSeats, none, Forbidden),
            (Role::Service, CreateEvent, none, Forbidden),
            (Role::Service, Read, none, Allow),
            (Role::Service, ActOnHold, none, Allow),
            (Role::Service, ReadBooking, none, Allow),
            (Role::Service, CancelBooking, none, Allow),
            (Role::Buyer, CreateEvent, own, Forbidden),
            (Role::Buyer, Read, none, Allow),
            (Role::Buyer, ActOnHold, own, Allow),
            (Role::Buyer, ActOnHold, other, UserMismatch),
            (Role::Buyer, CancelBooking, own, Allow),
            (Role::Buyer, CancelBooking, other, UserMismatch),
            (Role::Buyer, ReadBooking, own, Allow),
            (Role::Buyer, ReadBooking, other, Hidden),
            (Role::Buyer, ReadBooking, none, Hidden),
        ];
        for (role, action, ownership, want) in rows {
            assert_eq!(
                decide(role, action, ownership),
                want,
                "{role:?} {action:?} {ownership:?}"
            );
        }
    }

    fn buyer(sub: &str) -> Caller {
        Caller {
            role: Role::Buyer,
            subject: Some(sub.into()),
            key_name: None,
        }
    }

    fn key(role: KeyRole) -> Caller {
        Caller {
            role: role.role(),
            subject: None,
            key_name: Some("checkout".into()),
        }
    }

    #[test]
    fn the_acting_user_comes_from_the_token_or_the_body() {
        assert_eq!(acting_user(&buyer("a"), None).ok(), Some("a".into()));
        assert_eq!(
            acting_user(&buyer("a"), Some("a".into())).ok(),
            Some("a".into())
        );
        assert!(matches!(
            acting_user(&buyer("a"), Some("b".into())),
            Err(Error::UserMismatch)
        ));
        assert_eq!(
            acting_user(&key(KeyRole::Service), Some("b".into())).ok(),
            Some("b".into())
        );
        assert!(matches!(
            acting_user(&key(KeyRole::Service), None),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            acting_user(&Caller::trusted(), None),
            Err(Error::Validation(_))
        ));
        let admin_jwt = Caller {
            role: Role::Admin,
            subject: Some("ops".into()),
            key_name: None,
        };
        assert_eq!(acting_user(&admin_jwt, None).ok(), Some("ops".into()));
        assert_eq!(
            acting_user(&admin_jwt, Some("b".into())).ok(),
            Some("b".into())
        );
    }

    #[test]
    fn another_buyers_booking_is_hidden_and_events_are_for_admins() {
        assert!(authorize(&buyer("a"), ReadBooking, Some("a")).is_ok());
        assert!(matches!(
            authorize(&buyer("a"), ReadBooking, Some("b")),
            Err(Error::BookingNotFound)
        ));
        assert!(authorize(&key(KeyRole::Service), ReadBooking, Some("b")).is_ok());
        assert!(matches!(
            authorize(&key(KeyRole::Service), CreateEvent, None),
            Err(Error::Forbidden)
        ));
        assert!(authorize(&key(KeyRole::Admin), CreateEvent, None).is_ok());
    }

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
}
