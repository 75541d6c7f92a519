//! Sales channels of an event (a presale, a partner, a box office's allocation): the rules a
//! channel set must follow when an event is created or its set is replaced. No I/O here.

use std::collections::HashSet;

use super::fields::{check_code, check_seat_code};
use super::policy::{MAX_CHANNELS, SalesWindow, is_channel_code, parse_instant};
pub use super::policy::{format_units, parse_units};
use super::tiers::TierLine;

/// Most seats allocated to channels in one request (a whole house).
pub const MAX_CHANNEL_SEATS: usize = 100_000;

/// Most tier lines one channel may name.
pub const MAX_CHANNEL_TIERS: usize = 100;

/// A tier allocation as the client described it: `{code, quantity}`.
#[derive(Debug, Clone, Default)]
pub struct RawChannelTier {
    pub code: String,
    /// Kept as JSON so a fraction or a negative number is a sentence, not a parse error.
    pub quantity: serde_json::Value,
}

/// A channel as the client described it, before validation.
#[derive(Debug, Clone, Default)]
pub struct RawChannel {
    pub code: String,
    pub seat_codes: Option<Vec<String>>,
    /// Tier units allocated to the channel.
    pub tiers: Option<Vec<RawChannelTier>>,
    pub sales_start: Option<String>,
    pub sales_end: Option<String>,
}

/// A channel, validated: its code, the seats allocated to it, its own window bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    pub code: String,
    pub seat_codes: Vec<String>,
    /// Units of each tier only callers in the channel may hold (a tier at most once). Whether
    /// the codes are tiers of the event, and the allocations fit the capacities, is the
    /// store's to find.
    pub tiers: Vec<TierLine>,
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
        let tiers = channel_tiers(&c.code, c.tiers.unwrap_or_default(), problems);
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
            tiers,
            window,
        });
    }
    out
}

/// A channel's tier lines: each code well formed and named once, each quantity a whole number
/// from 1 to 1,000,000.
fn channel_tiers(
    channel: &str,
    raw: Vec<RawChannelTier>,
    problems: &mut Vec<String>,
) -> Vec<TierLine> {
    if raw.len() > MAX_CHANNEL_TIERS {
        problems.push(format!(
            "channel {channel}: at most {MAX_CHANNEL_TIERS} tier lines"
        ));
        return Vec::new();
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for t in raw {
        if let Err(why) = check_code("tier", &t.code) {
            problems.push(format!("channel {channel}: {why}"));
            continue;
        }
        if !seen.insert(t.code.clone()) {
            problems.push(format!("channel {channel}: tier {} is named twice", t.code));
            continue;
        }
        match t.quantity.as_u64() {
            Some(q) if (1..=1_000_000).contains(&q) => out.push(TierLine {
                code: t.code,
                quantity: q as u32,
            }),
            _ => problems.push(format!(
                "channel {channel}: the quantity of tier {} must be a whole number from 1 to 1000000",
                t.code
            )),
        }
    }
    out
}

/// One channel's allocation of a tier as a hold sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub channel: String,
    /// Units allocated less those of it sold or held now (never negative).
    pub left: u32,
    /// Whether this caller may take units of it now (in the channel, in its window; or a box
    /// office).
    pub usable: bool,
}

/// How a hold takes `want` units of a tier with allocations (the rule of `lua/pools_take.lua`):
/// each allocation keeps back what it has left; the open units are the rest of `free` (the
/// tier's units left over all). A caller in a channel takes its channels' units first, then
/// open units (only when `open_usable`: the event's window is open); a box office any, open
/// units first. Ok(the channel part taken) or Err(the units this caller may take).
pub fn plan_units(
    free: u32,
    allocations: &[Allocation],
    open_usable: bool,
    box_office: bool,
    want: u32,
) -> Result<Vec<(String, u32)>, u32> {
    let kept: u32 = allocations.iter().map(|a| a.left).sum();
    let open = if open_usable || box_office {
        free.saturating_sub(kept)
    } else {
        0
    };
    let own: Vec<&Allocation> = allocations.iter().filter(|a| a.usable).collect();
    let total = open
        .saturating_add(own.iter().map(|a| a.left).sum::<u32>())
        .min(free);
    if want > total {
        return Err(total);
    }
    let mut rest = want;
    if box_office {
        rest = rest.saturating_sub(open);
    }
    let mut parts = Vec::new();
    for a in own {
        let n = rest.min(a.left);
        if n > 0 {
            parts.push((a.channel.clone(), n));
        }
        rest -= n;
    }
    Ok(parts)
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

    fn tier(code: &str, quantity: serde_json::Value) -> RawChannelTier {
        RawChannelTier {
            code: code.into(),
            quantity,
        }
    }

    #[test]
    fn tier_allocations_are_checked() {
        let mut problems = Vec::new();
        let mut c = channel("presale", &[]);
        c.tiers = Some(vec![tier("GA", 4.into()), tier("VIP", 1.into())]);
        let set = validate_channels(vec![c], &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(set[0].tiers.len(), 2);
        assert_eq!(
            (set[0].tiers[0].code.as_str(), set[0].tiers[0].quantity),
            ("GA", 4)
        );
        for bad in [
            vec![tier("GA", 0.into())],
            vec![tier("GA", (-1).into())],
            vec![tier("GA", 1.5.into())],
            vec![tier("GA", "2".into())],
            vec![tier("GA", 1.into()), tier("GA", 1.into())],
            vec![tier("", 1.into())],
        ] {
            let mut problems = Vec::new();
            let mut c = channel("presale", &[]);
            c.tiers = Some(bad);
            validate_channels(vec![c], &mut problems);
            assert_eq!(problems.len(), 1, "{problems:?}");
        }
    }

    fn alloc(channel: &str, left: u32, usable: bool) -> Allocation {
        Allocation {
            channel: channel.into(),
            left,
            usable,
        }
    }

    #[test]
    fn units_come_from_the_callers_channel_first_and_the_public_gets_only_open_ones() {
        // Capacity 10, presale keeps 4: the public may take 6.
        let presale_out = [alloc("presale", 4, false)];
        assert_eq!(plan_units(10, &presale_out, true, false, 6), Ok(vec![]));
        assert_eq!(plan_units(10, &presale_out, true, false, 7), Err(6));
        // A presale caller: its 4 first, then open ones.
        let presale_in = [alloc("presale", 4, true)];
        assert_eq!(
            plan_units(10, &presale_in, true, false, 5),
            Ok(vec![("presale".to_string(), 4)])
        );
        assert_eq!(plan_units(10, &presale_in, true, false, 11), Err(10));
        // Outside the event's window: only its own allocation.
        assert_eq!(plan_units(10, &presale_in, false, false, 5), Err(4));
        // A box office: open units first, then the allocations.
        assert_eq!(plan_units(10, &presale_out, false, true, 6), Ok(vec![]));
        assert_eq!(
            plan_units(10, &[alloc("presale", 4, true)], false, true, 8),
            Ok(vec![("presale".to_string(), 2)])
        );
        // Fewer units left over all than the allocations keep: never more than `free`.
        assert_eq!(plan_units(2, &presale_in, true, false, 3), Err(2));
        assert_eq!(plan_units(2, &presale_out, true, false, 1), Err(0));
    }

    #[test]
    fn channel_units_round_trip() {
        let parts = vec![
            ("presale".to_string(), 3),
            ("vip".to_string(), 0),
            ("b".to_string(), 1),
        ];
        assert_eq!(format_units(&parts), "presale=3,b=1");
        assert_eq!(
            parse_units("presale=3,b=1"),
            vec![("presale".to_string(), 3), ("b".to_string(), 1)]
        );
        assert!(parse_units("").is_empty());
    }
}
