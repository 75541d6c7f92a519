//! The rules of single input fields, shared by events, seats, tiers and holds: codes, prices,
//! user ids and the seat list of a hold. No I/O here.

use std::collections::HashSet;

/// Longest accepted seat code, seat type, event name or location.
pub const MAX_CODE_LEN: usize = 64;
pub const MAX_TEXT_LEN: usize = 200;
/// Highest accepted seat price, in cents (ten million currency units).
pub const MAX_PRICE_CENTS: i64 = 1_000_000_000;

/// Longest accepted user id.
pub const MAX_USER_ID_LEN: usize = 128;

/// A seat code is 1 to 64 characters with no whitespace or control characters, so it is safe as
/// a Redis key suffix and in the newline-joined lists the scripts keep.
pub fn check_seat_code(code: &str) -> Result<(), String> {
    check_code("seat", code)
}

/// A seat or tier code: 1 to 64 characters, no whitespace or control characters.
pub fn check_code(kind: &str, code: &str) -> Result<(), String> {
    if code.is_empty() || code.chars().count() > MAX_CODE_LEN {
        return Err(format!(
            "{kind} codes must be 1 to {MAX_CODE_LEN} characters"
        ));
    }
    if code.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{kind} code {code:?} must not contain whitespace or control characters"
        ));
    }
    Ok(())
}

/// A price as given (a decimal amount, or absent for 0) in cents.
pub fn price_cents(price: Option<f64>) -> Result<i64, String> {
    match price {
        None => Ok(0),
        Some(p) if p.is_finite() && p >= 0.0 && (p * 100.0).round() <= MAX_PRICE_CENTS as f64 => {
            Ok((p * 100.0).round() as i64)
        }
        Some(_) => Err("must be a number from 0 to 10000000".into()),
    }
}

/// Checks a user id: present, not blank, bounded.
pub fn validate_user_id(user_id: Option<&str>) -> Result<String, String> {
    match user_id.map(str::trim) {
        None | Some("") => Err("userId is required".into()),
        Some(u) if u.chars().count() > MAX_USER_ID_LEN => Err(format!(
            "userId must be at most {MAX_USER_ID_LEN} characters"
        )),
        Some(u) if u.chars().any(char::is_control) => {
            Err("userId must not contain control characters".into())
        }
        Some(u) => Ok(u.to_string()),
    }
}

/// Checks the seat list of a hold request: not empty, no duplicates, at most `max` seats.
pub fn validate_seat_codes(codes: &[String], max: usize) -> Result<(), String> {
    if codes.is_empty() {
        return Err("seatCodes must list at least one seat".into());
    }
    if codes.len() > max {
        return Err(format!(
            "a hold may ask for at most {max} seats, this one asks for {}",
            codes.len()
        ));
    }
    for code in codes {
        check_seat_code(code)?;
    }
    let mut seen = HashSet::with_capacity(codes.len());
    let mut dups: Vec<&str> = codes
        .iter()
        .filter(|c| !seen.insert(c.as_str()))
        .map(String::as_str)
        .collect();
    if !dups.is_empty() {
        dups.sort_unstable();
        dups.dedup();
        return Err(format!("duplicate seat codes: {}", dups.join(", ")));
    }
    Ok(())
}

/// Whether `s` is 1-`max` letters, digits, `.`, `_` or `-` (ASCII): key names, channel codes,
/// Queue-it event ids.
pub fn is_code(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn seat_lists_are_checked() {
        assert!(validate_seat_codes(&codes(&["S1", "S2"]), 10).is_ok());
        assert!(validate_seat_codes(&codes(&[]), 10).is_err());
        assert!(validate_seat_codes(&codes(&["S1", "S1"]), 10).is_err());
        assert!(validate_seat_codes(&codes(&["S1", "S2", "S3"]), 2).is_err());
        assert!(validate_seat_codes(&codes(&["S 1"]), 10).is_err());
    }

    #[test]
    fn user_ids_are_checked() {
        assert_eq!(validate_user_id(Some(" u1 ")), Ok("u1".to_string()));
        assert!(validate_user_id(None).is_err());
        assert!(validate_user_id(Some("  ")).is_err());
        assert!(validate_user_id(Some("a\u{0}b")).is_err());
        assert!(validate_user_id(Some(&"x".repeat(129))).is_err());
    }
}
