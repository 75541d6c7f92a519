//! Holds: the id that follows a purchase from hold to booking, and the rules a hold request must
//! follow. No I/O here.

use std::collections::HashSet;

use serde::Serialize;
use uuid::Uuid;

use crate::events::{EventId, check_seat_code};

/// Which store a hold lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldStore {
    Redis,
    Postgres,
}

/// Longest accepted user id.
pub const MAX_USER_ID_LEN: usize = 128;

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
    /// crash takes the same hold instead of a second one.
    pub fn derived(event: EventId, store: HoldStore, user_id: &str, key: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(event.0.to_be_bytes())
            .chain_update(user_id.as_bytes())
            .chain_update([0])
            .chain_update(key.as_bytes())
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
}

impl std::fmt::Display for HoldGroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Checks a user id: present, not blank, bounded.
pub fn validate_user_id(user_id: Option<&str>) -> Result<String, String> {
    match user_id.map(str::trim) {
        None | Some("") => Err("userId is required".into()),
        Some(u) if u.chars().count() > MAX_USER_ID_LEN => Err(format!(
            "userId must be at most {MAX_USER_ID_LEN} characters"
        )),
        Some(u) if u.chars().any(char::is_control) => {
            Err("userId must not contain control characters".into())
        }
        Some(u) => Ok(u.to_string()),
    }
}

/// Checks the seat list of a hold request: not empty, no duplicates, at most `max` seats.
pub fn validate_seat_codes(codes: &[String], max: usize) -> Result<(), String> {
    if codes.is_empty() {
        return Err("seatCodes must list at least one seat".into());
    }
    if codes.len() > max {
        return Err(format!(
            "a hold may ask for at most {max} seats, this one asks for {}",
            codes.len()
        ));
    }
    for code in codes {
        check_seat_code(code)?;
    }
    let mut seen = HashSet::with_capacity(codes.len());
    let mut dups: Vec<&str> = codes
        .iter()
        .filter(|c| !seen.insert(c.as_str()))
        .map(String::as_str)
        .collect();
    if !dups.is_empty() {
        dups.sort_unstable();
        dups.dedup();
        return Err(format!("duplicate seat codes: {}", dups.join(", ")));
    }
    Ok(())
}

/// Why a hold was refused, as counted in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    Held,
    Booked,
    UnknownSeat,
    Invalid,
}

impl RefusalReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::Held => "held",
            RefusalReason::Booked => "booked",
            RefusalReason::UnknownSeat => "unknown_seat",
            RefusalReason::Invalid => "invalid",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn seat_lists_are_checked() {
        let codes = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(validate_seat_codes(&codes(&["S1", "S2"]), 10).is_ok());
        assert!(validate_seat_codes(&codes(&[]), 10).is_err());
        assert!(validate_seat_codes(&codes(&["S1", "S1"]), 10).is_err());
        assert!(validate_seat_codes(&codes(&["S1", "S2", "S3"]), 2).is_err());
        assert!(validate_seat_codes(&codes(&["S 1"]), 10).is_err());
    }

    #[test]
    fn user_ids_are_checked() {
        assert_eq!(validate_user_id(Some(" u1 ")), Ok("u1".to_string()));
        assert!(validate_user_id(None).is_err());
        assert!(validate_user_id(Some("  ")).is_err());
    }
}
