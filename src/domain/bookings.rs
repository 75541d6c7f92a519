//! Bookings: a confirmed hold, kept in Postgres; what the cancel transaction can answer, and the
//! decisions on holds that are already settled (cancel, a release after the fact). Confirming is
//! in `confirm`. No I/O here.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::events::EventId;
use super::holds::HoldGroupId;
use super::tiers::TierLine;
use crate::error::{Error, Result};

/// Life of a booking. Cancelling is soft: the row stays, its seats are freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum BookingStatus {
    Confirmed,
    Cancelled,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Confirmed => "CONFIRMED",
            BookingStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "CONFIRMED" => Some(BookingStatus::Confirmed),
            "CANCELLED" => Some(BookingStatus::Cancelled),
            _ => None,
        }
    }
}

/// A booked seat with the type and price it was sold at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookedSeat {
    pub code: String,
    pub seat_type: String,
    pub price_cents: i64,
}

/// Units of a tier in a booking, at the unit price they were sold at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookedTier {
    pub code: String,
    pub name: String,
    pub quantity: u32,
    pub price_cents: i64,
}

/// A booking as stored in Postgres.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub event_id: EventId,
    pub booking_group_id: HoldGroupId,
    pub user_id: String,
    pub status: BookingStatus,
    pub seats: Vec<BookedSeat>,
    pub tiers: Vec<BookedTier>,
    pub total_price_cents: i64,
    pub confirmed_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl Booking {
    /// Whether this is the confirmed booking of exactly these seats and tier units (a repeat of
    /// a confirm).
    pub fn is_confirmed_booking_of(&self, seats: &[String], tiers: &[TierLine]) -> bool {
        let booked: HashSet<&str> = self.seats.iter().map(|s| s.code.as_str()).collect();
        let units: HashSet<TierLine> = self.tier_lines().into_iter().collect();
        self.status == BookingStatus::Confirmed
            && booked.len() == seats.len()
            && seats.iter().all(|s| booked.contains(s.as_str()))
            && units.len() == tiers.len()
            && tiers.iter().all(|t| units.contains(t))
    }

    pub fn seat_codes(&self) -> Vec<String> {
        self.seats.iter().map(|s| s.code.clone()).collect()
    }

    pub fn tier_lines(&self) -> Vec<TierLine> {
        self.tiers
            .iter()
            .map(|t| TierLine {
                code: t.code.clone(),
                quantity: t.quantity,
            })
            .collect()
    }
}

/// A release whose hold its store no longer has: confirmed (409), someone else's (403), or
/// expired / released / unknown (410).
pub fn decide_settled_release(booking: Option<&Booking>, user_id: &str) -> Result<()> {
    match booking {
        Some(b) if b.user_id != user_id => Err(Error::NotHoldOwner),
        Some(_) => Err(Error::HoldAlreadyConfirmed),
        None => Err(Error::HoldGone),
    }
}

/// What a cancel gave back: the seats freed and the tier units returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Freed {
    pub seats: Vec<String>,
    pub tiers: Vec<TierLine>,
}

impl Freed {
    pub fn is_empty(&self) -> bool {
        self.seats.is_empty() && self.tiers.is_empty()
    }
}

/// What the cancel transaction answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// Cancelled now; these seats were freed and these units given back.
    Cancelled(Freed),
    AlreadyCancelled,
    NotOwner,
    NotFound,
}

/// The answer to a cancel, and what to free in the Redis cache.
pub fn decide_cancel(outcome: CancelOutcome) -> (Result<()>, Freed) {
    match outcome {
        CancelOutcome::Cancelled(freed) => (Ok(()), freed),
        CancelOutcome::AlreadyCancelled => (Ok(()), Freed::default()),
        CancelOutcome::NotOwner => (Err(Error::NotBookingOwner), Freed::default()),
        CancelOutcome::NotFound => (Err(Error::BookingNotFound), Freed::default()),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::holds::HoldStore;

    pub(crate) fn seats(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    pub(crate) fn booking(user: &str, status: BookingStatus, codes: &[&str]) -> Booking {
        Booking {
            event_id: EventId(1),
            booking_group_id: HoldGroupId::new(EventId(1), HoldStore::Redis),
            user_id: user.into(),
            status,
            seats: codes
                .iter()
                .map(|c| BookedSeat {
                    code: c.to_string(),
                    seat_type: "STANDARD".into(),
                    price_cents: 100,
                })
                .collect(),
            tiers: vec![],
            total_price_cents: 100 * codes.len() as i64,
            confirmed_at: DateTime::<Utc>::MIN_UTC,
            cancelled_at: None,
        }
    }

    pub(crate) const CONFIRMED: BookingStatus = BookingStatus::Confirmed;
    pub(crate) const CANCELLED: BookingStatus = BookingStatus::Cancelled;

    #[test]
    fn a_booking_is_a_repeat_only_of_exactly_its_seats_while_confirmed() {
        let b = booking("u1", CONFIRMED, &["S1", "S2"]);
        assert!(b.is_confirmed_booking_of(&seats(&["S2", "S1"]), &[]));
        assert!(!b.is_confirmed_booking_of(&seats(&["S1"]), &[]));
        assert!(!b.is_confirmed_booking_of(&seats(&["S1", "S3"]), &[]));
        assert!(!booking("u1", CANCELLED, &["S1"]).is_confirmed_booking_of(&seats(&["S1"]), &[]));
        let mut with_tier = b.clone();
        with_tier.tiers = vec![BookedTier {
            code: "GA".into(),
            name: "GA".into(),
            quantity: 2,
            price_cents: 500,
        }];
        let two = TierLine {
            code: "GA".into(),
            quantity: 2,
        };
        let three = TierLine {
            quantity: 3,
            ..two.clone()
        };
        assert!(with_tier.is_confirmed_booking_of(&seats(&["S1", "S2"]), &[two]));
        assert!(!with_tier.is_confirmed_booking_of(&seats(&["S1", "S2"]), &[three]));
        assert!(!with_tier.is_confirmed_booking_of(&seats(&["S1", "S2"]), &[]));
    }

    #[test]
    fn settled_release_decisions_cover_every_case() {
        let mine = booking("u1", CONFIRMED, &["S1"]);
        assert!(matches!(
            decide_settled_release(Some(&mine), "u1"),
            Err(Error::HoldAlreadyConfirmed)
        ));
        assert!(matches!(
            decide_settled_release(Some(&mine), "u2"),
            Err(Error::NotHoldOwner)
        ));
        assert!(matches!(
            decide_settled_release(None, "u1"),
            Err(Error::HoldGone)
        ));
    }

    #[test]
    fn cancel_decisions_cover_every_outcome() {
        let freed = Freed {
            seats: seats(&["S1"]),
            tiers: vec![],
        };
        let (r, given_back) = decide_cancel(CancelOutcome::Cancelled(freed.clone()));
        assert!(r.is_ok());
        assert_eq!(given_back, freed);
        let (r, freed) = decide_cancel(CancelOutcome::AlreadyCancelled);
        assert!(r.is_ok() && freed.is_empty());
        assert!(matches!(
            decide_cancel(CancelOutcome::NotOwner).0,
            Err(Error::NotBookingOwner)
        ));
        assert!(matches!(
            decide_cancel(CancelOutcome::NotFound).0,
            Err(Error::BookingNotFound)
        ));
    }
}
