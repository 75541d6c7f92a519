//! Sales channels of an event (a presale, a partner, a box office's allocation): the rules a
//! channel set must follow when an event is created or its set is replaced. No I/O here.

use std::collections::HashSet;

use super::fields::check_seat_code;
use super::policy::{MAX_CHANNELS, SalesWindow, is_channel_code, parse_instant};

/// Most seats allocated to channels in one request (a whole house).
pub const MAX_CHANNEL_SEATS: usize = 100_000;

/// A channel as the client described it, before validation.
#[derive(Debug, Clone, Default)]
pub struct RawChannel {
    pub code: String,
    pub seat_codes: Option<Vec<String>>,
    /// Tier units allocated to the channel: not supported yet (refused, see docs/api.md).
    pub tiers: Option<Vec<serde_json::Value>>,
    pub sales_start: Option<String>,
    pub sales_end: Option<String>,
}

/// A channel, validated: its code, the seats allocated to it, its own window bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    pub code: String,
    pub seat_codes: Vec<String>,
    /// Bounds left out are the event's.
    pub window: SalesWindow,
}

/// Checks a channel set; every problem goes to `problems` (a seat named twice, by one channel
/// or two, is one). Unknown seat codes are the store's to find.
pub fn validate_channels(raw: Vec<RawChannel>, problems: &mut Vec<String>) -> Vec<ChannelSpec> {
    if raw.len() > MAX_CHANNELS {
        problems.push(format!("at most {MAX_CHANNELS} channels"));
        return Vec::new();
    }
    let mut codes = HashSet::new();
    let mut seats = HashSet::new();
    let mut total = 0_usize;
    let mut out = Vec::with_capacity(raw.len());
    for c in raw {
        if !is_channel_code(&c.code) {
            problems.push("channel code must be 1-64 letters, digits, '.', '_' or '-'".into());
            continue;
        }
        if !codes.insert(c.code.clone()) {
            problems.push(format!("channel {} is named twice", c.code));
        }
        if c.tiers.as_ref().is_some_and(|t| !t.is_empty()) {
            problems.push(format!(
                "channel {}: tier units cannot be allocated to a channel yet (allocate seats)",
                c.code
            ));
        }
        let mut bound = |field: &str, text: Option<&str>| {
            let text = text?;
            let parsed = parse_instant(text);
            if parsed.is_none() {
                problems.push(format!(
                    "channel {}: {field} must be an RFC 3339 timestamp",
                    c.code
                ));
            }
            parsed
        };
        let window = SalesWindow {
            start: bound("salesStart", c.sales_start.as_deref()),
            end: bound("salesEnd", c.sales_end.as_deref()),
        };
        if let Some(p) = window.problem() {
            problems.push(format!("channel {}: {p}", c.code));
        }
        let list = c.seat_codes.unwrap_or_default();
        total += list.len();
        if total > MAX_CHANNEL_SEATS {
            problems.push(format!("at most {MAX_CHANNEL_SEATS} seats in channels"));
            return Vec::new();
        }
        for code in &list {
            if let Err(why) = check_seat_code(code) {
                problems.push(format!("channel {}: {why}", c.code));
                break;
            }
            if !seats.insert(code.clone()) {
                problems.push(format!("seat {code} is named twice in channels"));
                break;
            }
        }
        out.push(ChannelSpec {
            code: c.code,
            seat_codes: list,
            window,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(code: &str, seats: &[&str]) -> RawChannel {
        RawChannel {
            code: code.into(),
            seat_codes: Some(seats.iter().map(|s| s.to_string()).collect()),
            ..RawChannel::default()
        }
    }

    #[test]
    fn a_valid_set_keeps_its_seats_and_windows() {
        let mut problems = Vec::new();
        let mut presale = channel("presale", &["A1", "A2"]);
        presale.sales_start = Some("2030-01-01T10:00:00Z".into());
        let set = validate_channels(vec![presale, channel("vip", &["B1"])], &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(set.len(), 2);
        assert_eq!(set[0].seat_codes, ["A1", "A2"]);
        assert!(set[0].window.start.is_some() && set[0].window.end.is_none());
    }

    #[test]
    fn a_seat_in_two_channels_a_repeated_code_and_a_bad_window_are_refused() {
        let mut problems = Vec::new();
        validate_channels(
            vec![channel("a", &["A1"]), channel("b", &["A1"])],
            &mut problems,
        );
        assert!(problems.iter().any(|p| p.contains("A1")), "{problems:?}");
        let mut problems = Vec::new();
        validate_channels(vec![channel("a", &[]), channel("a", &[])], &mut problems);
        assert!(problems.iter().any(|p| p.contains("twice")), "{problems:?}");
        let mut problems = Vec::new();
        let mut c = channel("a", &[]);
        c.sales_start = Some("2030-02-01T00:00:00Z".into());
        c.sales_end = Some("2030-01-01T00:00:00Z".into());
        validate_channels(vec![c], &mut problems);
        assert!(problems.iter().any(|p| p.contains("after")), "{problems:?}");
        let mut problems = Vec::new();
        validate_channels(vec![channel("has space", &[])], &mut problems);
        assert_eq!(problems.len(), 1);
    }
}
