//! Events and their seats: the rules a new event must follow, and an event as a reader sees it
//! (with its live counts). No I/O here.

use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;

use super::channels::{ChannelSpec, RawChannel, validate_channels};
use super::fields::MAX_TEXT_LEN;
pub use super::layout::{DEFAULT_SEAT_TYPE, RawRow, RawSeat, SeatSpec, Seats};
use super::layout::{expand_rows, validate_seat_list};
use super::policy::{EventPolicy, SalesWindow, sales_bound};
use super::tiers::{RawTier, TierSpec, TierState, validate_tiers};

/// Database id of an event. Also the shard key that every table and Redis key starts with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct EventId(pub i64);

impl EventId {
    /// Parses an id from a URL segment; anything that is not a positive integer is no event.
    pub fn parse(s: &str) -> Option<Self> {
        s.parse::<i64>().ok().filter(|id| *id > 0).map(EventId)
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A new event, validated and ready to insert.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub name: String,
    pub starts_at: DateTime<Utc>,
    pub location: String,
    pub seats: Seats,
    /// General-admission tiers, in creation order.
    pub tiers: Vec<TierSpec>,
    /// Its sales window (salesStart, salesEnd).
    pub window: SalesWindow,
    /// Its sales channels, with the seats allocated to each.
    pub channels: Vec<ChannelSpec>,
}

/// An event as the client described it, before validation.
#[derive(Debug, Clone, Default)]
pub struct RawEvent {
    pub name: String,
    pub date: String,
    pub location: String,
    pub total_seats: Option<i64>,
    pub seats: Option<Vec<RawSeat>>,
    /// Whole rows, expanded into seats before the listed ones.
    pub rows: Option<Vec<RawRow>>,
    pub tiers: Option<Vec<RawTier>>,
    pub sales_start: Option<String>,
    pub sales_end: Option<String>,
    pub channels: Option<Vec<RawChannel>>,
}

/// How big an event may be (`events.*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLimits {
    pub max_seats: u32,
    pub max_tiers: u32,
    pub max_tier_capacity: u32,
}

/// Checks a proposed event and returns every problem found, one sentence each. An event needs
/// at least one seat or one tier.
pub fn validate_new_event(raw: RawEvent, limits: EventLimits) -> Result<NewEvent, Vec<String>> {
    let RawEvent {
        name,
        date,
        location,
        total_seats,
        seats,
        rows,
        tiers,
        sales_start,
        sales_end,
        channels,
    } = raw;
    let (name, date, location) = (name.as_str(), date.as_str(), location.as_str());
    let max_seats = limits.max_seats;
    let mut problems = Vec::new();
    for (field, text) in [("name", name), ("location", location)] {
        if text.chars().any(char::is_control) {
            problems.push(format!("{field} must not contain control characters"));
        }
    }
    let name = name.trim();
    if name.is_empty() {
        problems.push("name must not be empty".to_string());
    } else if name.chars().count() > MAX_TEXT_LEN {
        problems.push(format!("name must be at most {MAX_TEXT_LEN} characters"));
    }
    let location = location.trim();
    if location.chars().count() > MAX_TEXT_LEN {
        problems.push(format!(
            "location must be at most {MAX_TEXT_LEN} characters"
        ));
    }
    let starts_at = match DateTime::parse_from_rfc3339(date.trim()) {
        Ok(d) if (1..=9999).contains(&d.with_timezone(&Utc).year()) => Some(d.with_timezone(&Utc)),
        Ok(_) => {
            problems.push("date must fall in the years 1 to 9999 (UTC)".into());
            None
        }
        Err(_) => {
            problems.push("date must be an RFC 3339 timestamp, e.g. 2030-01-10T18:00:00Z".into());
            None
        }
    };
    let has_tiers = tiers.as_ref().is_some_and(|t| !t.is_empty());
    let tiers = tiers
        .map(|list| {
            let (max, capacity) = (limits.max_tiers, limits.max_tier_capacity);
            validate_tiers(list, max, capacity, &mut problems)
        })
        .unwrap_or_default();
    // Rows become listed seats (first, in creation order), beside any seats listed one by one.
    let seats = match rows {
        Some(rows) if !rows.is_empty() => {
            let mut list = expand_rows(rows, max_seats, &mut problems);
            let listed = seats.unwrap_or_default();
            list.reserve_exact(listed.len());
            list.extend(listed);
            Some(list)
        }
        _ => seats,
    };
    let seats = match (total_seats, seats) {
        (_, Some(list)) if list.is_empty() && has_tiers && total_seats.is_none() => {
            Some(Seats::Numbered(0))
        }
        (_, Some(list)) => validate_seat_list(list, total_seats, max_seats, &mut problems),
        (Some(0), None) if has_tiers => Some(Seats::Numbered(0)),
        (Some(n), None) if n >= 1 && n <= i64::from(max_seats) => Some(Seats::Numbered(n as u32)),
        (Some(_), None) => {
            problems.push(format!("totalSeats must be between 1 and {max_seats}"));
            None
        }
        (None, None) if has_tiers => Some(Seats::Numbered(0)),
        (None, None) => {
            problems.push("an event needs seats (totalSeats, seats or rows) or tiers".into());
            None
        }
    };
    let window = SalesWindow {
        start: sales_bound("salesStart", sales_start.as_deref(), &mut problems),
        end: sales_bound("salesEnd", sales_end.as_deref(), &mut problems),
    };
    problems.extend(window.problem());
    let channels = validate_channels(channels.unwrap_or_default(), &mut problems);
    match (starts_at, seats) {
        (Some(starts_at), Some(seats)) if problems.is_empty() => Ok(NewEvent {
            name: name.to_string(),
            starts_at,
            location: location.to_string(),
            seats,
            tiers,
            window,
            channels,
        }),
        _ => Err(problems),
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: EventId,
    pub name: String,
    pub starts_at: DateTime<Utc>,
    pub location: String,
    pub total_seats: i32,
    /// Its sales window and Queue-it event id.
    pub policy: EventPolicy,
}

/// An event with its live seat counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSummary {
    pub event: Event,
    pub confirmed_seats: i64,
    pub held_seats: i64,
    /// Seats held back from sale.
    pub blocked_seats: i64,
    /// Whether it has sales channels.
    pub has_channels: bool,
    /// General-admission tiers in creation order, held units from both stores.
    pub tiers: Vec<TierState>,
}

impl EventSummary {
    /// Seats neither sold, held nor blocked now; never negative, even while a count lags.
    pub fn available_seats(&self) -> i64 {
        (i64::from(self.event.total_seats)
            - self.confirmed_seats
            - self.held_seats
            - self.blocked_seats)
            .max(0)
    }
}

/// Converts cents to the decimal amount shown to clients.
pub fn cents_to_amount(cents: i64) -> f64 {
    cents as f64 / 100.0
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
