//! The seats of a new event as a hall has them: codes, types, prices, and where each seat is
//! (an optional row label and number in the row). No I/O here.

use super::fields::{MAX_CODE_LEN, check_seat_code, price_cents};

/// Seats of a new event: generated `S1..Sn` (none for a tiers-only event), or listed one by one.
#[derive(Debug, Clone)]
pub enum Seats {
    Numbered(u32),
    Listed(Vec<SeatSpec>),
}

impl Seats {
    pub fn count(&self) -> u32 {
        match self {
            Seats::Numbered(n) => *n,
            Seats::Listed(seats) => seats.len() as u32,
        }
    }
}

/// The seat type given to seats created without one.
pub const DEFAULT_SEAT_TYPE: &str = "STANDARD";
/// One seat of a new event, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SeatSpec {
    pub code: String,
    pub seat_type: String,
    pub price_cents: i64,
    /// Row label and number in the row, for seat maps (both optional).
    pub row: Option<String>,
    pub number: Option<i32>,
}

/// A seat as the client described it, before validation.
#[derive(Debug, Clone, Default)]
pub struct RawSeat {
    pub code: String,
    pub seat_type: Option<String>,
    pub price: Option<f64>,
    pub row: Option<String>,
    pub number: Option<i64>,
}

/// Checks a listed seat map, pushing one sentence per problem.
pub(super) fn validate_seat_list(
    list: Vec<RawSeat>,
    total_seats: Option<i64>,
    max_seats: u32,
    problems: &mut Vec<String>,
) -> Option<Seats> {
    if list.is_empty() || list.len() > max_seats as usize {
        problems.push(format!("seats must list between 1 and {max_seats} seats"));
        return None;
    }
    if let Some(n) = total_seats.filter(|n| *n != list.len() as i64) {
        problems.push(format!(
            "totalSeats ({n}) does not match the number of seats listed ({})",
            list.len()
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(list.len());
    let mut duplicates = Vec::new();
    let mut out = Vec::with_capacity(list.len());
    for raw in list {
        if let Err(why) = check_seat_code(&raw.code) {
            problems.push(why);
            continue;
        }
        if !seen.insert(raw.code.clone()) {
            duplicates.push(raw.code.clone());
        }
        let seat_type = raw
            .seat_type
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| DEFAULT_SEAT_TYPE.to_string());
        if seat_type.chars().count() > MAX_CODE_LEN || seat_type.chars().any(char::is_control) {
            problems.push(format!(
                "seat type must be at most {MAX_CODE_LEN} characters, without control characters"
            ));
        }
        let price_cents = price_cents(raw.price).unwrap_or_else(|why| {
            problems.push(format!("price of seat {} {why}", raw.code));
            0
        });
        let row = raw.row.map(|r| r.trim().to_string());
        if row.as_ref().is_some_and(|r| {
            r.is_empty() || r.chars().count() > 16 || r.chars().any(char::is_control)
        }) {
            problems.push(format!(
                "row of seat {} must be 1 to 16 characters, without control characters",
                raw.code
            ));
        }
        let number = match raw.number {
            None => None,
            Some(n) if (1..=100_000).contains(&n) => Some(n as i32),
            Some(_) => {
                problems.push(format!("number of seat {} must be 1 to 100000", raw.code));
                None
            }
        };
        out.push(SeatSpec {
            code: raw.code,
            seat_type,
            price_cents,
            row,
            number,
        });
    }
    if !duplicates.is_empty() {
        duplicates.sort();
        duplicates.dedup();
        problems.push(format!("duplicate seat codes: {}", duplicates.join(", ")));
    }
    Some(Seats::Listed(out))
}
