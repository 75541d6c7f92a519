//! The seats of a new event as a hall has them: codes, types, prices, and where each seat is
//! (an optional row label and number in the row), listed one by one or as whole rows. Row order
//! is creation order and means closeness to the stage; two seats are adjacent when they share a
//! row and their numbers differ by one (a gap in the numbering is an aisle). No I/O here.

use std::collections::HashSet;

use super::fields::{MAX_CODE_LEN, check_seat_code, price_cents};

/// Longest row label.
pub const MAX_ROW_LEN: usize = 16;
/// Highest seat number in a row.
pub const MAX_SEAT_NUMBER: i64 = 100_000;

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

/// A whole row as the client described it: `seats` seats numbered 1..n, codes `{name}{n}`.
#[derive(Debug, Clone, Default)]
pub struct RawRow {
    pub name: String,
    pub seats: Option<i64>,
    pub seat_type: Option<String>,
    pub price: Option<f64>,
}

/// A row label: 1 to 16 characters without whitespace or control characters.
pub fn check_row_label(label: &str) -> Result<(), String> {
    if label.is_empty()
        || label.chars().count() > MAX_ROW_LEN
        || label.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "row names must be 1 to {MAX_ROW_LEN} characters without whitespace, not {label:?}"
        ));
    }
    Ok(())
}

/// Expands rows into seats (before any listed seats), pushing one sentence per problem; stops
/// expanding once `max_seats` would be passed (the count check reports it).
pub(super) fn expand_rows(
    rows: Vec<RawRow>,
    max_seats: u32,
    problems: &mut Vec<String>,
) -> Vec<RawSeat> {
    // Reserved once: a 100,000-seat house grown by doubling would briefly hold two buffers.
    let total: i64 = rows
        .iter()
        .filter_map(|r| r.seats)
        .filter(|n| (1..=MAX_SEAT_NUMBER).contains(n))
        .sum();
    let mut out = Vec::with_capacity(total.clamp(0, i64::from(max_seats)) as usize);
    for row in rows {
        if let Err(why) = check_row_label(&row.name) {
            problems.push(why);
            continue;
        }
        let n = match row.seats {
            Some(n) if (1..=MAX_SEAT_NUMBER.min(i64::from(max_seats))).contains(&n) => n,
            _ => {
                problems.push(format!(
                    "row {} must have 1 to {} seats",
                    row.name,
                    MAX_SEAT_NUMBER.min(i64::from(max_seats))
                ));
                continue;
            }
        };
        if out.len() as i64 + n > i64::from(max_seats) {
            problems.push(format!("an event may have at most {max_seats} seats"));
            return out;
        }
        out.extend((1..=n).map(|number| RawSeat {
            code: format!("{}{number}", row.name),
            seat_type: row.seat_type.clone(),
            price: row.price,
            row: Some(row.name.clone()),
            number: Some(number),
        }));
    }
    out
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
    // Duplicates first, over borrowed codes and places (a 100,000-seat house would otherwise
    // hold a copy of every code and row label at once).
    let mut seen: HashSet<&str> = HashSet::with_capacity(list.len());
    let mut places: HashSet<(&str, i64)> = HashSet::new();
    let mut duplicates = Vec::new();
    for raw in &list {
        if !seen.insert(raw.code.as_str()) {
            duplicates.push(raw.code.clone());
        }
        if let (Some(r), Some(n)) = (raw.row.as_deref(), raw.number)
            && (1..=MAX_SEAT_NUMBER).contains(&n)
            && !places.insert((r, n))
        {
            problems.push(format!("two seats are number {n} of row {r}"));
        }
    }
    drop((seen, places));
    let mut out = Vec::with_capacity(list.len());
    for raw in list {
        if let Err(why) = check_seat_code(&raw.code) {
            problems.push(why);
            continue;
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
        let row = raw.row;
        if let Some(Err(why)) = row.as_deref().map(check_row_label) {
            problems.push(format!("seat {}: {why}", raw.code));
        }
        let number = match raw.number {
            None => None,
            Some(n) if (1..=MAX_SEAT_NUMBER).contains(&n) => Some(n as i32),
            Some(_) => {
                problems.push(format!(
                    "number of seat {} must be 1 to {MAX_SEAT_NUMBER}",
                    raw.code
                ));
                None
            }
        };
        if row.is_some() != raw.number.is_some() {
            problems.push(format!(
                "seat {} must have both a row and a number, or neither",
                raw.code
            ));
        }
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
