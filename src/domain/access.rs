//! Who may do what. A caller is trusted (`none` mode), a buyer (a JWT), or a key-holding backend
//! (`service`) or admin (an API key or a JWT with `"role": "admin"`); each action is decided
//! by one pure table of role x action x ownership. A caller also brings the sales channels it is
//! in and whether it skips admission from a waiting room. No I/O here.

mod keys;

pub use keys::{
    ApiKey, ApiKeyInfo, KEY_PREFIX, KEY_RANDOM_LEN, KeyRole, MAX_KEY_NAME_LEN, NewApiKey,
    check_channels, generate_key, is_api_key, key_digest, validate_key_name,
};

use crate::error::{Error, Result};

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

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    /// The JWT `sub` (buyers, admin JWTs); None for API keys and trusted callers.
    pub subject: Option<String>,
    /// The name of the API key; None otherwise.
    pub key_name: Option<String>,
    /// The sales channels the caller is in (an API key's `--channel`s, a JWT's `channels`
    /// claim); empty for trusted callers.
    pub channels: Vec<String>,
    /// Holds need no admission token from this caller: trusted callers, admins (keys and
    /// JWTs), keys created with `--no-admission`.
    pub skips_admission: bool,
}

impl Caller {
    /// Every caller of `none` mode.
    pub fn trusted() -> Self {
        Caller {
            role: Role::Trusted,
            subject: None,
            key_name: None,
            channels: Vec::new(),
            skips_admission: true,
        }
    }

    /// The caller of a live API key: admin keys always skip admission.
    pub fn of_key(key: ApiKey) -> Self {
        Caller {
            role: key.role.role(),
            subject: None,
            skips_admission: key.skips_admission || key.role == KeyRole::Admin,
            key_name: Some(key.name),
            channels: key.channels,
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
            channels: Vec::new(),
            skips_admission: false,
        }
    }

    fn key(role: KeyRole) -> Caller {
        Caller::of_key(ApiKey {
            name: "checkout".into(),
            role,
            channels: Vec::new(),
            skips_admission: false,
        })
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
            channels: Vec::new(),
            skips_admission: true,
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
    fn admins_and_keys_marked_so_skip_admission() {
        assert!(Caller::trusted().skips_admission);
        assert!(Caller::trusted().channels.is_empty());
        assert!(
            key(KeyRole::Admin).skips_admission,
            "admin keys always skip"
        );
        assert!(!key(KeyRole::Service).skips_admission);
        let partner = Caller::of_key(ApiKey {
            name: "partner".into(),
            role: KeyRole::Service,
            channels: vec!["presale".into()],
            skips_admission: true,
        });
        assert!(partner.skips_admission);
        assert_eq!(partner.channels, ["presale"]);
        assert!(NewApiKey::new("ops", KeyRole::Admin).skips_admission);
        assert!(!NewApiKey::new("shop", KeyRole::Service).skips_admission);
    }
}
