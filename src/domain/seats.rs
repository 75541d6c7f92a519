//! The seat map: each seat with where it stands now, decided from what Postgres (sales, Postgres
//! holds) and Redis (Redis holds) know of it, and the inventory snapshot the Redis cache of an
//! event is rebuilt from. No I/O here.

use super::holds::HoldGroupId;
use crate::domain::policy::PolicySnapshot;

/// One seat as stored, with what Postgres knows of it: booked, or held by a live Postgres hold
/// (milliseconds left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatRecord {
    pub code: String,
    pub seat_type: String,
    pub price_cents: i64,
    pub row: Option<String>,
    pub number: Option<i32>,
    pub booked: bool,
    pub postgres_held_ms: Option<i64>,
    /// Why it is held back from sale, when it is.
    pub blocked: Option<String>,
    /// The sales channel it is allocated to, if any.
    pub channel: Option<String>,
}

/// Where a seat stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatStatus {
    Available,
    /// Held, with the milliseconds its hold has left.
    Held {
        ms_left: i64,
    },
    Booked,
    /// Held back from sale by an administrator.
    Blocked,
}

impl SeatStatus {
    /// A seat's status from Postgres (booked; blocked; live Postgres hold) and Redis (live
    /// Redis hold): a sale wins over anything, a block over a hold (blocking a held seat is
    /// refused, so they meet only in a stale read), and a Redis hold over a Postgres one (after
    /// an outage the Redis copy of a Postgres hold is the one kept up to date).
    pub fn decide(
        booked: bool,
        blocked: bool,
        redis_held_ms: Option<i64>,
        postgres_held_ms: Option<i64>,
    ) -> Self {
        if booked {
            return SeatStatus::Booked;
        }
        if blocked {
            return SeatStatus::Blocked;
        }
        match redis_held_ms.or(postgres_held_ms) {
            Some(ms_left) => SeatStatus::Held { ms_left },
            None => SeatStatus::Available,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SeatStatus::Available => "AVAILABLE",
            SeatStatus::Held { .. } => "HELD",
            SeatStatus::Booked => "BOOKED",
            SeatStatus::Blocked => "BLOCKED",
        }
    }

    /// Whole seconds a hold has left, rounded up; None unless held.
    pub fn seconds_remaining(self) -> Option<i64> {
        match self {
            SeatStatus::Held { ms_left } => Some((ms_left + 999) / 1000),
            _ => None,
        }
    }
}

/// One seat of the seat map with its status now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatState {
    pub code: String,
    pub seat_type: String,
    pub price_cents: i64,
    pub row: Option<String>,
    pub number: Option<i32>,
    pub status: SeatStatus,
    /// Why it is blocked (shown to admins and service keys only).
    pub blocked_reason: Option<String>,
    /// Its sales channel (shown to admins and service keys only).
    pub channel: Option<String>,
}

/// What the Redis cache of an event is rebuilt from: one Postgres snapshot of its seat codes,
/// its booked seat codes and its confirmed bookings (for the per-buyer caps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub seats: SeatCodes,
    /// Seats sold, and seats blocked (the cache refuses both).
    pub booked: Vec<String>,
    /// The blocked seats among `booked`.
    pub blocked: Vec<String>,
    pub tiers: Vec<TierStock>,
    /// The rows in creation order, each its seats in number order.
    pub rows: Vec<Vec<RowSeat>>,
    pub sold: Vec<SoldBooking>,
    /// The sales policy: windows, Queue-it id, channels and their seats.
    pub policy: PolicySnapshot,
    /// (tier code, booking, channel part) of every confirmed booking's units taken from
    /// channels' allocations (see `lua/pools.lua`).
    pub sold_pools: Vec<(String, HoldGroupId, String)>,
}

/// Every seat code of an event, as a cache rebuild sends them to Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatCodes {
    /// The codes, read from Postgres.
    Listed(Vec<String>),
    /// `S1..Sn`, the seats of an event created with `totalSeats` (not read: made in Redis).
    Numbered(u32),
}

impl SeatCodes {
    pub fn count(&self) -> usize {
        match self {
            SeatCodes::Listed(codes) => codes.len(),
            SeatCodes::Numbered(n) => *n as usize,
        }
    }
}

/// A seat of a row, as the layout cache keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSeat {
    pub code: String,
    pub number: i32,
    pub seat_type: String,
    pub price_cents: i64,
}

/// Groups the seats of an event's rows, read in any order, into rows in creation order (a row's
/// place is its first seat's position) with each row's seats in number order, as
/// [`Inventory::rows`] keeps them. Lets one unordered read of the seats serve both the seat codes
/// and the layout (no sort in Postgres).
#[derive(Debug, Default)]
pub struct RowsBuilder {
    index: std::collections::HashMap<String, usize>,
    rows: Vec<(i32, Vec<RowSeat>)>,
}

impl RowsBuilder {
    /// Adds a seat of row `label` at `position` (the event's 1-based seat order).
    pub fn push(&mut self, label: String, position: i32, seat: RowSeat) {
        let at = match self.index.get(&label) {
            Some(&at) => at,
            None => {
                self.index.insert(label, self.rows.len());
                self.rows.push((position, Vec::new()));
                self.rows.len() - 1
            }
        };
        if let Some((first, seats)) = self.rows.get_mut(at) {
            *first = (*first).min(position);
            seats.push(seat);
        }
    }

    pub fn finish(mut self) -> Vec<Vec<RowSeat>> {
        self.rows.sort_by_key(|(first, _)| *first);
        self.rows
            .into_iter()
            .map(|(_, mut seats)| {
                seats.sort_by_key(|s| s.number);
                seats
            })
            .collect()
    }
}

/// A tier as the inventory cache keeps it: its capacity and the units sold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierStock {
    pub code: String,
    pub capacity: i64,
    pub sold: i64,
}

/// A confirmed booking of a buyer: how many seats and tier units it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoldBooking {
    pub booking: HoldGroupId,
    pub user_id: String,
    pub seats: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(code: &str, number: i32) -> RowSeat {
        RowSeat {
            code: code.into(),
            number,
            seat_type: "STANDARD".into(),
            price_cents: 0,
        }
    }

    #[test]
    fn rows_come_in_creation_order_with_their_seats_in_number_order() {
        let mut b = RowsBuilder::default();
        b.push("B".into(), 5, seat("B2", 2));
        b.push("A".into(), 3, seat("A3", 3));
        b.push("B".into(), 4, seat("B1", 1));
        b.push("A".into(), 1, seat("A1", 1));
        b.push("A".into(), 2, seat("A2", 2));
        let rows = b.finish();
        let codes: Vec<Vec<&str>> = rows
            .iter()
            .map(|r| r.iter().map(|s| s.code.as_str()).collect())
            .collect();
        assert_eq!(codes, vec![vec!["A1", "A2", "A3"], vec!["B1", "B2"]]);
        assert!(RowsBuilder::default().finish().is_empty());
    }

    #[test]
    fn a_sale_wins_over_holds_and_a_redis_hold_over_a_postgres_one() {
        assert_eq!(
            SeatStatus::decide(true, false, Some(5), Some(7)),
            SeatStatus::Booked
        );
        assert_eq!(
            SeatStatus::decide(false, false, Some(5), Some(7)),
            SeatStatus::Held { ms_left: 5 }
        );
        assert_eq!(
            SeatStatus::decide(false, false, None, Some(7)),
            SeatStatus::Held { ms_left: 7 }
        );
        assert_eq!(
            SeatStatus::decide(false, false, None, None),
            SeatStatus::Available
        );
        assert_eq!(
            SeatStatus::decide(false, true, Some(5), None),
            SeatStatus::Blocked
        );
        assert_eq!(
            SeatStatus::decide(true, true, None, None),
            SeatStatus::Booked
        );
    }

    #[test]
    fn seconds_remaining_round_up_and_exist_only_for_holds() {
        assert_eq!(SeatStatus::Held { ms_left: 1 }.seconds_remaining(), Some(1));
        assert_eq!(
            SeatStatus::Held { ms_left: 1000 }.seconds_remaining(),
            Some(1)
        );
        assert_eq!(
            SeatStatus::Held { ms_left: 1001 }.seconds_remaining(),
            Some(2)
        );
        assert_eq!(SeatStatus::Booked.seconds_remaining(), None);
        assert_eq!(SeatStatus::Available.seconds_remaining(), None);
        assert_eq!(SeatStatus::Booked.as_str(), "BOOKED");
    }
}
