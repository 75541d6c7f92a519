//! Every seat's history: what changed a seat (or some units of a tier), who, and what the seat
//! became, as records numbered per event (`seq`). The records are made in two places, because
//! holds live in Redis and sales in Postgres: the hold scripts append what they change to the
//! event's stream in Redis (in the same script, so nothing a hold changes goes unrecorded and a
//! refusal records nothing), and the confirm, cancel and Postgres-hold transactions write their
//! rows in Postgres unnumbered, in the same transaction as the change. One flush per event at a
//! time ([`merge`]) puts both in the order they happened and numbers them.
//!
//! [`replay`] applies records to seat statuses and tier counts: what "replay is exact" is
//! checked against. No I/O here.

mod entries;
pub mod merge;
mod replay;

use super::holds::HoldGroupId;
use super::tiers::TierLine;

pub use replay::{Replayed, TierCounts, replay};

/// What happened to a seat or to some units of a tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// A hold took it.
    Held,
    /// The extend route moved its hold's expiry.
    Extended,
    /// Its hold was released (by its buyer, or dropped because nothing could be sold by it).
    Released,
    /// Its hold ran out.
    Expired,
    /// A confirm sold it.
    Booked,
    /// Its booking was cancelled; it is free again.
    Cancelled,
    /// Held back from sale by an administrator (no hold: `hold` is the nil id).
    Blocked,
    /// Put on sale again.
    Unblocked,
}

impl Change {
    pub const ALL: [Change; 8] = [
        Change::Held,
        Change::Extended,
        Change::Released,
        Change::Expired,
        Change::Booked,
        Change::Cancelled,
        Change::Blocked,
        Change::Unblocked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Change::Held => "HELD",
            Change::Extended => "EXTENDED",
            Change::Released => "RELEASED",
            Change::Expired => "EXPIRED",
            Change::Booked => "BOOKED",
            Change::Cancelled => "CANCELLED",
            Change::Blocked => "BLOCKED",
            Change::Unblocked => "UNBLOCKED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Change::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The status a seat has after this change (a released seat that another booking sold is
    /// the exception: see [`merge`]).
    pub fn status(self) -> Status {
        match self {
            Change::Held | Change::Extended => Status::Held,
            Change::Booked => Status::Booked,
            Change::Blocked => Status::Blocked,
            Change::Released | Change::Expired | Change::Cancelled | Change::Unblocked => {
                Status::Available
            }
        }
    }

    /// The webhook message type of one change of a hold or booking (None: no message).
    pub fn message_type(self) -> Option<&'static str> {
        Some(match self {
            Change::Held => "hold.created",
            Change::Extended => "hold.extended",
            Change::Released => "hold.released",
            Change::Expired => "hold.expired",
            Change::Booked => "booking.confirmed",
            Change::Cancelled => "booking.cancelled",
            Change::Blocked | Change::Unblocked => return None,
        })
    }
}

/// A seat's status after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Available,
    Held,
    Booked,
    Blocked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Available => "AVAILABLE",
            Status::Held => "HELD",
            Status::Booked => "BOOKED",
            Status::Blocked => "BLOCKED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Status::Available,
            Status::Held,
            Status::Booked,
            Status::Blocked,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// What one record is about: a seat, or some units of a tier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Item {
    Seat(String),
    Tier { code: String, quantity: u32 },
}

/// One change of one seat or tier line, as stored and served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    /// Per event, strictly increasing.
    pub seq: i64,
    /// When it happened, in ms since the epoch (the clock of the store that made the change).
    pub at_ms: i64,
    pub item: Item,
    pub change: Change,
    pub status: Status,
    pub hold: HoldGroupId,
    /// Set when booked or cancelled (the booking's id is its hold's).
    pub booking: Option<HoldGroupId>,
    pub user_id: String,
    /// Set when held or extended.
    pub expires_at_ms: Option<i64>,
}

/// One operation's records (a hold taken, a booking cancelled, ...): what one webhook message
/// tells, and what the flush numbers together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub change: Change,
    pub hold: HoldGroupId,
    pub user_id: String,
    pub at_ms: i64,
    pub expires_at_ms: Option<i64>,
    /// Seats with their status after the change.
    pub seats: Vec<(String, Status)>,
    pub tiers: Vec<TierLine>,
    /// Price of what it sold or gave back, in cents (booked and cancelled groups).
    pub price_cents: i64,
    /// The Postgres rows this group is made of (numbered in place), or empty when it comes from
    /// the Redis stream (inserted).
    pub pending_ids: Vec<i64>,
    /// The span of the request that made the change (Postgres rows of a confirm or cancel,
    /// while traces are exported); its webhook message continues it.
    pub traceparent: Option<String>,
}

impl Group {
    /// Whether this group changes anything (a hold that ended owning no seat and no units
    /// records nothing).
    pub fn is_empty(&self) -> bool {
        self.seats.is_empty() && self.tiers.is_empty()
    }

    /// The records of this group, numbered from `first_seq`.
    pub fn records(&self, first_seq: i64) -> Vec<ChangeRecord> {
        let booking =
            matches!(self.change, Change::Booked | Change::Cancelled).then_some(self.hold);
        let expires = match self.change {
            Change::Held | Change::Extended => self.expires_at_ms,
            _ => None,
        };
        let items = self
            .seats
            .iter()
            .map(|(code, status)| (Item::Seat(code.clone()), *status))
            .chain(self.tiers.iter().map(|l| {
                let item = Item::Tier {
                    code: l.code.clone(),
                    quantity: l.quantity,
                };
                (item, self.change.status())
            }));
        items
            .enumerate()
            .map(|(i, (item, status))| ChangeRecord {
                seq: first_seq + i as i64,
                at_ms: self.at_ms,
                item,
                change: self.change,
                status,
                hold: self.hold,
                booking,
                user_id: self.user_id.clone(),
                expires_at_ms: expires,
            })
            .collect()
    }

    /// How many records it makes.
    pub fn len(&self) -> usize {
        self.seats.len() + self.tiers.len()
    }
}

/// A hold the history knows to be live: taken and not yet ended in the records. The flush keeps
/// these, so it can record a hold's end (expiry) without Redis remembering the hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenHold {
    pub hold: HoldGroupId,
    pub user_id: String,
    /// The seats it still holds (a seat taken by a later hold after this one lost it in Redis is
    /// no longer its own).
    pub seats: Vec<String>,
    pub tiers: Vec<TierLine>,
    /// When it runs out, in ms since the epoch, by the clock of its store.
    pub expires_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::EventId;
    use crate::domain::holds::HoldStore;

    #[test]
    fn names_round_trip() {
        for c in Change::ALL {
            assert_eq!(Change::parse(c.as_str()), Some(c));
        }
        for s in [Status::Available, Status::Held, Status::Booked] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Change::Expired.status(), Status::Available);
        assert_eq!(Change::Extended.message_type(), Some("hold.extended"));
        assert_eq!(Change::Blocked.message_type(), None);
        assert_eq!(Change::Blocked.status(), Status::Blocked);
    }

    #[test]
    fn a_group_numbers_its_seats_then_its_tiers() {
        let hold = HoldGroupId::new(EventId(1), HoldStore::Redis);
        let group = Group {
            change: Change::Booked,
            hold,
            user_id: "u1".into(),
            at_ms: 5,
            expires_at_ms: Some(9),
            seats: vec![("A1".into(), Status::Booked)],
            tiers: vec![TierLine {
                code: "GA".into(),
                quantity: 2,
            }],
            price_cents: 0,
            pending_ids: vec![],
            traceparent: None,
        };
        let records = group.records(10);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].seq, 10);
        assert_eq!(records[1].seq, 11);
        assert_eq!(records[1].booking, Some(hold));
        assert_eq!(
            records[0].expires_at_ms, None,
            "expiresAt only when held or extended"
        );
        assert_eq!(
            records[1].item,
            Item::Tier {
                code: "GA".into(),
                quantity: 2
            }
        );
    }
}
