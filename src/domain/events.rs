//! Events and their seats: the rules a new event must follow, and an event as a reader sees it
//! (with its live counts). No I/O here.

use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;

use super::fields::MAX_TEXT_LEN;
pub use super::layout::{DEFAULT_SEAT_TYPE, RawRow, RawSeat, SeatSpec, Seats};
use super::layout::{expand_rows, validate_seat_list};
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
    match (starts_at, seats) {
        (Some(starts_at), Some(seats)) if problems.is_empty() => Ok(NewEvent {
            name: name.to_string(),
            starts_at,
            location: location.to_string(),
            seats,
            tiers,
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
}

/// An event with its live seat counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSummary {
    pub event: Event,
    pub confirmed_seats: i64,
    pub held_seats: i64,
    /// Seats held back from sale.
    pub blocked_seats: i64,
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
mod tests {
    use super::*;

    const LIMITS: EventLimits = EventLimits {
        max_seats: 10,
        max_tiers: 3,
        max_tier_capacity: 100,
    };

    fn event(date: &str, total_seats: Option<i64>, seats: Option<Vec<RawSeat>>) -> RawEvent {
        RawEvent {
            name: "Gig".into(),
            date: date.into(),
            location: "Hall".into(),
            total_seats,
            seats,
            rows: None,
            tiers: None,
        }
    }

    #[test]
    fn rows_become_seats_numbered_from_one_before_listed_seats() {
        let mut raw = event("2030-01-10T18:00:00Z", None, None);
        raw.rows = Some(vec![
            RawRow {
                name: "A".into(),
                seats: Some(3),
                price: Some(10.0),
                ..RawRow::default()
            },
            RawRow {
                name: "B".into(),
                seats: Some(2),
                ..RawRow::default()
            },
        ]);
        raw.seats = Some(vec![RawSeat {
            code: "BOX1".into(),
            ..RawSeat::default()
        }]);
        let e = validate_new_event(raw.clone(), LIMITS).expect("valid");
        let Seats::Listed(list) = e.seats else {
            panic!("listed")
        };
        let codes: Vec<&str> = list.iter().map(|s| s.code.as_str()).collect();
        assert_eq!(codes, ["A1", "A2", "A3", "B1", "B2", "BOX1"]);
        assert_eq!(
            (list[2].row.as_deref(), list[2].number, list[2].price_cents),
            (Some("A"), Some(3), 1000)
        );
        raw.rows = Some(vec![RawRow {
            name: "C D".into(),
            seats: Some(2),
            ..RawRow::default()
        }]);
        assert!(
            validate_new_event(raw.clone(), LIMITS).is_err(),
            "whitespace"
        );
        raw.rows = Some(vec![RawRow {
            name: "C".into(),
            seats: Some(11),
            ..RawRow::default()
        }]);
        assert!(
            validate_new_event(raw, LIMITS).is_err(),
            "over events.max_seats"
        );
    }

    #[test]
    fn an_event_needs_seats_or_tiers_and_may_have_both() {
        let tier = |code: &str| RawTier {
            code: code.into(),
            capacity: Some(50),
            ..RawTier::default()
        };
        let mut raw = event("2030-01-10T18:00:00Z", None, None);
        assert!(validate_new_event(raw.clone(), LIMITS).is_err());
        raw.tiers = Some(vec![tier("FLOOR")]);
        let only_tiers = validate_new_event(raw.clone(), LIMITS).expect("tiers only");
        assert_eq!((only_tiers.seats.count(), only_tiers.tiers.len()), (0, 1));
        raw.total_seats = Some(4);
        let both = validate_new_event(raw.clone(), LIMITS).expect("both");
        assert_eq!((both.seats.count(), both.tiers.len()), (4, 1));
        raw.tiers = Some(vec![tier("A"), tier("B"), tier("C"), tier("D")]);
        assert!(
            validate_new_event(raw, LIMITS).is_err(),
            "more than max_tiers"
        );
    }

    #[test]
    fn numbered_event_within_limits_is_accepted() {
        let e = validate_new_event(event("2030-01-10T18:00:00Z", Some(5), None), LIMITS)
            .expect("valid");
        assert_eq!(e.seats.count(), 5);
    }

    #[test]
    fn dates_stay_within_years_1_to_9999_in_utc() {
        let check = |date| validate_new_event(event(date, Some(1), None), LIMITS);
        assert!(check("9999-12-31T22:30:00-01:00").is_ok());
        assert!(check("9999-12-31T23:30:00-01:00").is_err());
        assert!(check("0000-01-01T00:30:00+01:00").is_err());
        assert!(check("0001-01-01T00:00:00Z").is_ok());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut raw = event("yesterday", Some(0), None);
        raw.name = " ".into();
        let err = validate_new_event(raw, LIMITS).expect_err("invalid");
        assert_eq!(err.len(), 3, "{err:?}");
    }

    #[test]
    fn duplicate_seat_codes_are_refused() {
        let seats = ["A1", "A2", "A1"]
            .iter()
            .map(|c| RawSeat {
                code: c.to_string(),
                seat_type: None,
                price: None,
                ..RawSeat::default()
            })
            .collect();
        let err = validate_new_event(event("2030-01-10T18:00:00Z", None, Some(seats)), LIMITS)
            .expect_err("duplicates");
        assert!(err[0].contains("A1"), "{err:?}");
    }

    #[test]
    fn prices_are_kept_in_cents() {
        let seats = vec![RawSeat {
            code: "V1".into(),
            seat_type: Some("VIP".into()),
            price: Some(99.99),
            row: Some("B".into()),
            number: Some(7),
        }];
        let e = validate_new_event(
            event("2030-01-10T18:00:00+02:00", None, Some(seats)),
            LIMITS,
        )
        .expect("valid");
        let Seats::Listed(list) = e.seats else {
            panic!("listed")
        };
        assert_eq!(list[0].price_cents, 9999);
        assert_eq!(
            (list[0].row.as_deref(), list[0].number),
            (Some("B"), Some(7))
        );
        let bad = |row: Option<&str>, number: Option<i64>| {
            let seat = RawSeat {
                code: "X".into(),
                row: row.map(str::to_string),
                number,
                ..RawSeat::default()
            };
            validate_new_event(
                event("2030-01-10T18:00:00Z", None, Some(vec![seat])),
                LIMITS,
            )
            .is_err()
        };
        assert!(bad(Some(" "), Some(1)));
        assert!(bad(Some("B 2"), Some(1)), "no whitespace in a row name");
        assert!(bad(Some(&"R".repeat(17)), Some(1)));
        assert!(bad(Some("A"), Some(0)));
        assert!(bad(Some("A"), None), "a row needs a number");
        assert!(bad(None, Some(3)), "a number needs a row");
        assert!(!bad(Some("AA"), Some(100_000)));
    }

    #[test]
    fn available_seats_never_go_negative() {
        let event = Event {
            id: EventId(1),
            name: "Gig".into(),
            starts_at: DateTime::<Utc>::MIN_UTC,
            location: "Hall".into(),
            total_seats: 10,
        };
        let summary = |confirmed_seats, held_seats, blocked_seats| EventSummary {
            event: event.clone(),
            confirmed_seats,
            held_seats,
            blocked_seats,
            tiers: vec![],
        };
        assert_eq!(summary(3, 2, 0).available_seats(), 5);
        assert_eq!(summary(3, 2, 1).available_seats(), 4);
        assert_eq!(summary(8, 4, 0).available_seats(), 0);
    }
}
