//! Holds: the id that follows a purchase from hold to booking, the rules a hold request must
//! follow, what a store answers to a hold attempt, and the decisions taken on those answers.
//! No I/O here.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::events::EventId;
use super::tiers::TierLine;
use crate::error::{Error, Result, TierShortage, UserLimitKind};

/// Which store takes a hold: the configured backend (`holds.backend`), and the store a
/// `HoldGroupId` says its hold lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldStore {
    Redis,
    Postgres,
}

impl HoldStore {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldStore::Redis => "redis",
            HoldStore::Postgres => "postgres",
        }
    }
}

/// Id of a hold, and later of the booking that confirms it (`bookingGroupId == holdGroupId`).
///
/// A UUID version 8 (RFC 9562, vendor-defined) whose first 48 bits are the event id, whose bit
/// 48+7 (the lowest bit of byte 6) says which store holds it (0 Redis, 1 Postgres), and whose
/// other 73 free bits are random. Carrying the shard key in the id lets `GET /bookings/{id}`
/// find its event's rows without a global index, lets confirm tell "a hold of another event"
/// (400) from "no such hold" (410) without a lookup, and routes confirm and release to the store
/// that has the hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct HoldGroupId(pub Uuid);

impl HoldGroupId {
    /// Largest event id an id can carry.
    pub const MAX_EVENT_ID: i64 = (1 << 48) - 1;

    /// A fresh random id.
    pub fn new(event: EventId, store: HoldStore) -> Self {
        Self::from_bytes(event, store, rand::random())
    }

    /// The id a keyed request (Idempotency-Key) always gets, so a retry that re-executes after a
    /// crash takes the same hold instead of a second one. `seed` names one use of the key.
    pub fn derived(event: EventId, store: HoldStore, user_id: &str, seed: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(event.0.to_be_bytes())
            .chain_update(user_id.as_bytes())
            .chain_update([0])
            .chain_update(seed.as_bytes())
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self::from_bytes(event, store, bytes)
    }

    fn from_bytes(event: EventId, store: HoldStore, mut bytes: [u8; 16]) -> Self {
        let id = event.0.clamp(0, Self::MAX_EVENT_ID) as u64;
        bytes[..6].copy_from_slice(&id.to_be_bytes()[2..]);
        bytes[6] = (bytes[6] & !1) | u8::from(store == HoldStore::Postgres);
        HoldGroupId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }

    /// The store that took this hold (Redis for ids seatlock did not issue).
    pub fn store(&self) -> HoldStore {
        if self.0.get_version_num() == 8 && self.0.as_bytes()[6] & 1 == 1 {
            HoldStore::Postgres
        } else {
            HoldStore::Redis
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Uuid::parse_str(s.trim()).ok().map(HoldGroupId)
    }

    /// The event this id was issued for, or None for a UUID seatlock did not issue.
    pub fn event(&self) -> Option<EventId> {
        if self.0.get_version_num() != 8 {
            return None;
        }
        let b = self.0.as_bytes();
        let mut id = [0u8; 8];
        id[2..].copy_from_slice(&b[..6]);
        Some(EventId(i64::from_be_bytes(id))).filter(|e| e.0 > 0)
    }

    /// Refuses (400) a hold id issued for another event than the one in the URL.
    pub fn check_event(&self, event: EventId) -> Result<()> {
        match self.event() {
            Some(owner) if owner != event => Err(Error::HoldEventMismatch),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for HoldGroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A hold just taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldTaken {
    pub id: HoldGroupId,
    pub expires_at_ms: i64,
    /// The seats held (those asked for, or those best-available chose), in the order given.
    pub seats: Vec<String>,
}

/// What a store answered to an all-or-nothing hold attempt (Redis's `hold.lua` or the Postgres
/// hold transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldAttempt {
    /// Every seat is held until then (ms since the epoch, by the store's clock).
    Held { expires_at_ms: i64 },
    /// These codes are not seats of the event; nothing was held.
    Unknown(Vec<String>),
    /// These codes are not tiers of the event; nothing was held.
    UnknownTiers(Vec<String>),
    /// These requested seats are booked (or blocked: `blocked` is the blocked ones among them)
    /// / held by someone else / another channel's, these tiers have too few units left;
    /// nothing was held.
    Unavailable {
        booked: Vec<String>,
        held: Vec<String>,
        short: Vec<TierShortage>,
        blocked: Vec<String>,
        /// Seats of a channel the caller is not in.
        channel: Vec<String>,
    },
    /// Sales of the seats asked open then (ms since the epoch); nothing was held.
    NotOpen { opens_at_ms: i64 },
    /// Sales of the seats asked closed then; nothing was held.
    Closed { closed_at_ms: i64 },
    /// The admission names another event (a Queue-it token's `e`); nothing was held.
    AdmissionRefused,
    /// Best-available found no block of the size asked for; this many matching seats are free.
    NoBlock { available: u32 },
    /// The buyer would pass a per-buyer cap (`max`; `current` before this hold); nothing was
    /// held.
    UserLimit {
        limit: UserLimitKind,
        max: u32,
        current: u32,
    },
}

/// The per-buyer caps a hold is taken under (None: off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caps {
    pub max_seats: Option<u32>,
    pub max_live_holds: Option<u32>,
}

impl Caps {
    pub fn any(&self) -> bool {
        self.max_seats.is_some() || self.max_live_holds.is_some()
    }
}

/// Why a seat hold was refused because of other buyers: someone holds a seat, or bought it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contention {
    Held,
    Booked,
}

/// The 409 of a refused hold: exactly the requested seats that are taken, in request order, the
/// short tiers in request order (when the hold asked for tiers), and whether any seat is sold
/// (`Booked`) or the seats are only held and the tiers short (`Held`).
pub fn refusal(
    codes: &[String],
    lines: &[TierLine],
    booked: &[String],
    held: &[String],
    short: Vec<TierShortage>,
) -> (Contention, Error) {
    let kind = if booked.is_empty() {
        Contention::Held
    } else {
        Contention::Booked
    };
    let taken: HashSet<&String> = booked.iter().chain(held).collect();
    let seats = codes
        .iter()
        .filter(|c| taken.contains(c))
        .cloned()
        .collect();
    let tiers = (!lines.is_empty()).then(|| {
        let mut short = short;
        let order = |code: &str| lines.iter().position(|l| l.code == code);
        short.sort_by_key(|s| order(&s.code));
        short
    });
    (kind, Error::SeatsUnavailable { seats, tiers })
}

/// A live hold as Redis keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRecord {
    pub user_id: String,
    pub seats: Vec<String>,
    pub tiers: Vec<TierLine>,
    /// (tier code, channel part) of its units taken from channels' allocations, e.g.
    /// ("GA", "presale=3"); empty when all were open units (see `lua/pools.lua`).
    pub pools: Vec<(String, String)>,
    /// When it was taken, in ms since the epoch by the Redis clock (None: not recorded).
    pub taken_ms: Option<i64>,
}

/// A hold as Postgres keeps it (alive, or expired and not yet swept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHold {
    pub user_id: String,
    pub seats: Vec<String>,
    pub tiers: Vec<TierLine>,
    pub alive: bool,
}

/// A live Postgres hold to copy into Redis after an outage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveHold {
    pub event: EventId,
    pub id: HoldGroupId,
    pub user_id: String,
    pub seats: Vec<String>,
    pub tiers: Vec<TierLine>,
    /// (tier code, channel part) of its units taken from channels' allocations.
    pub pools: Vec<(String, String)>,
    /// Time it has left.
    pub ttl: Duration,
    /// The admission it was taken under (a waiting room's buyer), if any.
    pub admission: Option<String>,
}

/// What a check-and-mark script answered about a hold (`pin.lua`, and `settle.lua` in release
/// mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldCheck {
    Ok,
    /// Expired, released or unknown.
    Gone,
    NotOwner,
    /// A confirm of this hold is in progress (release only).
    Pinned,
}

/// Release of a Redis hold: `Ok(true)` released, `Ok(false)` Redis no longer has it (ask
/// Postgres what became of it), or the refusal.
pub fn release_decision(check: HoldCheck) -> Result<bool> {
    match check {
        HoldCheck::Ok => Ok(true),
        HoldCheck::Gone => Ok(false),
        HoldCheck::NotOwner => Err(Error::NotHoldOwner),
        HoldCheck::Pinned => Err(Error::HoldAlreadyConfirmed),
    }
}

/// Release of a Postgres hold that was not deleted: refused when a live hold of another user
/// has that id, else decided from what became of it.
pub fn postgres_release_refused(hold: Option<&StoredHold>, user_id: &str) -> bool {
    matches!(hold, Some(h) if h.alive && h.user_id != user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hold_ids_carry_their_event() {
        for e in [1, 42, 1 << 40, HoldGroupId::MAX_EVENT_ID] {
            for store in [HoldStore::Redis, HoldStore::Postgres] {
                let id = HoldGroupId::new(EventId(e), store);
                assert_eq!(id.0.get_version_num(), 8);
                assert_eq!(id.event(), Some(EventId(e)));
                assert_eq!(id.store(), store);
            }
        }
    }

    #[test]
    fn foreign_uuids_carry_no_event() {
        assert_eq!(HoldGroupId(Uuid::new_v4()).event(), None);
        assert_eq!(HoldGroupId(Uuid::new_v4()).store(), HoldStore::Redis);
    }

    #[test]
    fn a_hold_id_of_another_event_is_refused() {
        let id = HoldGroupId::new(EventId(7), HoldStore::Redis);
        assert!(id.check_event(EventId(7)).is_ok());
        assert!(matches!(
            id.check_event(EventId(8)),
            Err(Error::HoldEventMismatch)
        ));
        assert!(HoldGroupId(Uuid::new_v4()).check_event(EventId(8)).is_ok());
    }

    #[test]
    fn hold_ids_are_not_repeated() {
        let a = HoldGroupId::new(EventId(7), HoldStore::Redis);
        let b = HoldGroupId::new(EventId(7), HoldStore::Redis);
        assert_ne!(a, b);
        let k1 = HoldGroupId::derived(EventId(7), HoldStore::Redis, "u1", "key-1");
        assert_eq!(
            k1,
            HoldGroupId::derived(EventId(7), HoldStore::Redis, "u1", "key-1")
        );
        assert_ne!(
            k1,
            HoldGroupId::derived(EventId(7), HoldStore::Redis, "u2", "key-1")
        );
        assert_eq!(k1.event(), Some(EventId(7)));
    }

    #[test]
    fn a_refusal_lists_the_taken_seats_and_short_tiers_in_request_order() {
        let asked = codes(&["S3", "S1", "S2", "S4"]);
        let (kind, err) = refusal(&asked, &[], &codes(&["S2"]), &codes(&["S1", "S3"]), vec![]);
        assert_eq!(kind, Contention::Booked);
        let Error::SeatsUnavailable { seats, tiers } = err else {
            panic!("{err:?}")
        };
        assert_eq!((seats, tiers), (codes(&["S3", "S1", "S2"]), None));
        let (kind, _) = refusal(&asked, &[], &[], &codes(&["S4"]), vec![]);
        assert_eq!(kind, Contention::Held);
        let lines = [
            TierLine {
                code: "B".into(),
                quantity: 2,
            },
            TierLine {
                code: "A".into(),
                quantity: 3,
            },
        ];
        let short = |code: &str| TierShortage {
            code: code.into(),
            requested: 2,
            available: 1,
        };
        let (_, err) = refusal(&[], &lines, &[], &[], vec![short("A"), short("B")]);
        let Error::SeatsUnavailable { seats, tiers } = err else {
            panic!("{err:?}")
        };
        let order: Vec<String> = tiers
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.code)
            .collect();
        assert_eq!((seats.len(), order), (0, codes(&["B", "A"])));
    }

    #[test]
    fn release_decisions_cover_every_check() {
        assert!(matches!(release_decision(HoldCheck::Ok), Ok(true)));
        assert!(matches!(release_decision(HoldCheck::Gone), Ok(false)));
        assert!(matches!(
            release_decision(HoldCheck::NotOwner),
            Err(Error::NotHoldOwner)
        ));
        assert!(matches!(
            release_decision(HoldCheck::Pinned),
            Err(Error::HoldAlreadyConfirmed)
        ));
    }

    #[test]
    fn a_live_postgres_hold_of_another_user_refuses_the_release() {
        let hold = |user: &str, alive| StoredHold {
            user_id: user.into(),
            seats: codes(&["S1"]),
            tiers: vec![],
            alive,
        };
        assert!(postgres_release_refused(Some(&hold("u2", true)), "u1"));
        assert!(!postgres_release_refused(Some(&hold("u2", false)), "u1"));
        assert!(!postgres_release_refused(Some(&hold("u1", true)), "u1"));
        assert!(!postgres_release_refused(None, "u1"));
    }
}
