//! General admission: tiers sold by quantity (a standing floor, a day pass, "Tier 1"). The rules a
//! new tier and a hold's tier lines must follow, and a tier as a reader sees it. No I/O here.

use std::collections::HashSet;

use super::fields::{MAX_TEXT_LEN, check_code, price_cents};

/// A tier as the client described it, before validation.
#[derive(Debug, Clone, Default)]
pub struct RawTier {
    pub code: String,
    pub name: Option<String>,
    pub price: Option<f64>,
    pub capacity: Option<i64>,
}

/// One tier of a new event, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierSpec {
    pub code: String,
    pub name: String,
    pub price_cents: i64,
    pub capacity: u32,
}

/// Checks the tiers of a new event, pushing one sentence per problem.
pub fn validate_tiers(
    list: Vec<RawTier>,
    max_tiers: u32,
    max_capacity: u32,
    problems: &mut Vec<String>,
) -> Vec<TierSpec> {
    if list.len() > max_tiers as usize {
        problems.push(format!("an event may have at most {max_tiers} tiers"));
        return Vec::new();
    }
    let mut seen = HashSet::with_capacity(list.len());
    let mut out = Vec::with_capacity(list.len());
    for raw in list {
        if let Err(why) = check_code("tier", &raw.code) {
            problems.push(why);
            continue;
        }
        if !seen.insert(raw.code.clone()) {
            problems.push(format!("duplicate tier code: {}", raw.code));
            continue;
        }
        let name = raw
            .name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| raw.code.clone());
        if name.chars().count() > MAX_TEXT_LEN || name.chars().any(char::is_control) {
            problems.push(format!(
                "the name of tier {} must be at most {MAX_TEXT_LEN} characters, without control characters",
                raw.code
            ));
        }
        let price = price_cents(raw.price).unwrap_or_else(|why| {
            problems.push(format!("price of tier {} {why}", raw.code));
            0
        });
        let capacity = match raw.capacity {
            Some(c) if c >= 1 && c <= i64::from(max_capacity) => c as u32,
            _ => {
                problems.push(format!(
                    "capacity of tier {} must be between 1 and {max_capacity}",
                    raw.code
                ));
                0
            }
        };
        out.push(TierSpec {
            code: raw.code,
            name,
            price_cents: price,
            capacity,
        });
    }
    out
}

/// Units of one tier in a hold request, a hold or a booking.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TierLine {
    pub code: String,
    pub quantity: u32,
}

/// Checks what a hold asks for: at least one seat or one tier line, a tier at most once, each
/// quantity at least 1, seats plus units at most `max`.
pub fn validate_hold_lines(seats: usize, lines: &[TierLine], max: usize) -> Result<(), String> {
    if seats == 0 && lines.is_empty() {
        return Err(
            "a hold must ask for at least one seat (seatCodes) or one tier line (tiers)".into(),
        );
    }
    let mut seen = HashSet::with_capacity(lines.len());
    for line in lines {
        check_code("tier", &line.code)?;
        if !seen.insert(line.code.as_str()) {
            return Err(format!("tier {} is listed twice", line.code));
        }
        if line.quantity == 0 {
            return Err(format!(
                "the quantity of tier {} must be at least 1",
                line.code
            ));
        }
    }
    let units = seats as u64 + lines.iter().map(|l| u64::from(l.quantity)).sum::<u64>();
    if units > max as u64 {
        return Err(format!(
            "a hold may ask for at most {max} seats and tier units together, this one asks for {units}"
        ));
    }
    Ok(())
}

/// Seats plus tier units: what a hold counts against the caps and in the metrics.
pub fn units(seats: usize, lines: &[TierLine]) -> u64 {
    seats as u64 + lines.iter().map(|l| u64::from(l.quantity)).sum::<u64>()
}

/// A tier with its live counts: `confirmed + held + available = capacity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierState {
    pub code: String,
    pub name: String,
    pub price_cents: i64,
    pub capacity: u32,
    pub confirmed: u32,
    pub held: u32,
}

impl TierState {
    /// Units neither sold nor held now (never negative, even while a count lags).
    pub fn available(&self) -> u32 {
        self.capacity
            .saturating_sub(self.confirmed)
            .saturating_sub(self.held)
    }

    /// `held`, bounded so that the three counts add up to the capacity.
    pub fn held_within_capacity(&self) -> u32 {
        self.held.min(self.capacity.saturating_sub(self.confirmed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(code: &str, capacity: i64) -> RawTier {
        RawTier {
            code: code.into(),
            name: Some(format!("Tier {code}")),
            price: Some(12.5),
            capacity: Some(capacity),
        }
    }

    fn line(code: &str, quantity: u32) -> TierLine {
        TierLine {
            code: code.into(),
            quantity,
        }
    }

    #[test]
    fn tiers_are_checked_one_problem_per_sentence() {
        let mut problems = Vec::new();
        let ok = validate_tiers(
            vec![raw("FLOOR", 500), raw("VIP", 20)],
            50,
            1_000_000,
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(ok[0].price_cents, 1250);
        assert_eq!(ok[1].capacity, 20);
        let mut problems = Vec::new();
        validate_tiers(
            vec![
                raw("A", 0),
                raw("A", 5),
                raw("has space", 5),
                raw("B", 2_000_000),
            ],
            50,
            1_000_000,
            &mut problems,
        );
        assert_eq!(problems.len(), 4, "{problems:?}");
        let mut problems = Vec::new();
        validate_tiers(vec![raw("A", 1), raw("B", 1)], 1, 10, &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn a_nameless_tier_is_named_after_its_code() {
        let mut problems = Vec::new();
        let tiers = validate_tiers(
            vec![RawTier {
                code: "GA".into(),
                capacity: Some(3),
                ..RawTier::default()
            }],
            50,
            10,
            &mut problems,
        );
        assert_eq!((tiers[0].name.as_str(), tiers[0].price_cents), ("GA", 0));
    }

    #[test]
    fn hold_lines_are_checked() {
        assert!(validate_hold_lines(1, &[], 10).is_ok());
        assert!(validate_hold_lines(0, &[line("GA", 2)], 10).is_ok());
        assert!(validate_hold_lines(0, &[], 10).is_err());
        assert!(validate_hold_lines(0, &[line("GA", 0)], 10).is_err());
        assert!(validate_hold_lines(0, &[line("GA", 1), line("GA", 1)], 10).is_err());
        assert!(validate_hold_lines(2, &[line("GA", 8)], 10).is_ok());
        assert!(validate_hold_lines(3, &[line("GA", 8)], 10).is_err());
        assert!(validate_hold_lines(0, &[line("G A", 1)], 10).is_err());
        assert_eq!(units(2, &[line("A", 3), line("B", 1)]), 6);
    }

    #[test]
    fn the_counts_of_a_tier_add_up_to_its_capacity() {
        let tier = |confirmed, held| TierState {
            code: "GA".into(),
            name: "GA".into(),
            price_cents: 0,
            capacity: 10,
            confirmed,
            held,
        };
        assert_eq!(tier(3, 4).available(), 3);
        assert_eq!(tier(8, 4).available(), 0);
        assert_eq!(tier(8, 4).held_within_capacity(), 2);
    }
}
