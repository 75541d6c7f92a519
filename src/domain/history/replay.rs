//! The replay of a history: every seat's status after its last change, and every tier's held
//! and confirmed units. What a consumer of `GET /events/{id}/changes` computes, and what the
//! tests compare with the seat map.

use std::collections::HashMap;

use super::{Change, ChangeRecord, Item, Status};

/// A tier's units as the history tells them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierCounts {
    pub held: i64,
    pub confirmed: i64,
}

/// The state a history replays to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Seats with at least one change; a seat never changed is available.
    pub seats: HashMap<String, Status>,
    pub tiers: HashMap<String, TierCounts>,
}

/// Applies `records` in order (oldest first).
pub fn replay<'a>(records: impl IntoIterator<Item = &'a ChangeRecord>) -> Replayed {
    let mut out = Replayed::default();
    for r in records {
        match &r.item {
            Item::Seat(code) => {
                out.seats.insert(code.clone(), r.status);
            }
            Item::Tier { code, quantity } => {
                let q = i64::from(*quantity);
                let counts = out.tiers.entry(code.clone()).or_default();
                match r.change {
                    Change::Held => counts.held += q,
                    Change::Extended => {}
                    Change::Released | Change::Expired => counts.held -= q,
                    Change::Booked => {
                        counts.held -= q;
                        counts.confirmed += q;
                    }
                    Change::Cancelled => counts.confirmed -= q,
                    Change::Blocked | Change::Unblocked => {}
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::EventId;
    use crate::domain::holds::{HoldGroupId, HoldStore};

    fn record(seq: i64, item: Item, change: Change) -> ChangeRecord {
        ChangeRecord {
            seq,
            at_ms: seq,
            item,
            change,
            status: change.status(),
            hold: HoldGroupId::new(EventId(1), HoldStore::Redis),
            booking: None,
            user_id: "u".into(),
            expires_at_ms: None,
        }
    }

    #[test]
    fn the_last_change_of_a_seat_decides_and_tier_units_add_up() {
        let seat = |c: &str| Item::Seat(c.into());
        let ga = |q| Item::Tier {
            code: "GA".into(),
            quantity: q,
        };
        let records = [
            record(1, seat("A1"), Change::Held),
            record(2, seat("A2"), Change::Held),
            record(3, ga(3), Change::Held),
            record(4, seat("A1"), Change::Expired),
            record(5, seat("A2"), Change::Booked),
            record(6, ga(3), Change::Booked),
            record(7, ga(2), Change::Held),
            record(8, ga(3), Change::Cancelled),
            record(9, seat("A3"), Change::Held),
            record(10, seat("A3"), Change::Extended),
        ];
        let r = replay(&records);
        assert_eq!(r.seats["A1"], Status::Available);
        assert_eq!(r.seats["A2"], Status::Booked);
        assert_eq!(r.seats["A3"], Status::Held);
        assert_eq!(
            r.tiers["GA"],
            TierCounts {
                held: 2,
                confirmed: 0
            }
        );
    }
}
