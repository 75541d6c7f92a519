//! Bookings: a confirmed hold, kept in Postgres. No I/O here.

use serde::Serialize;

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
#[derive(Debug, Clone, PartialEq)]
pub struct BookedSeat {
    pub code: String,
    pub seat_type: String,
    pub price_cents: i64,
}

/// A booking as stored in Postgres.
#[derive(Debug, Clone)]
pub struct Booking {
    pub event_id: crate::events::EventId,
    pub booking_group_id: crate::holds::HoldGroupId,
    pub user_id: String,
    pub status: BookingStatus,
    pub seats: Vec<BookedSeat>,
    pub total_price_cents: i64,
    pub confirmed_at: chrono::DateTime<chrono::Utc>,
    pub cancelled_at: Option<chrono::DateTime<chrono::Utc>>,
}
