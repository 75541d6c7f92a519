//! The fields of a Redis hold and of `hold.lua`'s refusals, parsed: its tier lines, the channel
//! parts of its units, the short tiers of an UNAVAILABLE reply.

use redis::Value;

use super::scripts::{self, int_at};
use crate::domain::tiers::TierLine;
use crate::error::{Result, TierShortage};

/// The short tiers of an UNAVAILABLE reply: a flat array of (code, requested, available).
pub(super) fn shortages(v: Option<&Value>) -> Result<Vec<TierShortage>> {
    let Some(Value::Array(flat)) = v else {
        return Ok(Vec::new());
    };
    let count = |i| int_at(flat, i).map(|n| n.clamp(0, i64::from(u32::MAX)) as u32);
    (0..flat.len() / 3)
        .map(|j| {
            Ok(TierShortage {
                code: scripts::string(&flat[3 * j])?,
                requested: count(3 * j + 1)?,
                available: count(3 * j + 2)?,
            })
        })
        .collect()
}

/// The `pools` field of a hold HASH: `"<code> <channel part>"` lines (see `lua/pools.lua`).
pub(super) fn parse_pools(text: &str) -> Vec<(String, String)> {
    let line = |l: &str| {
        l.split_once(' ')
            .map(|(c, p)| (c.to_string(), p.to_string()))
    };
    text.split('\n').filter_map(line).collect()
}

/// Channel parts as the scripts take them: `"<code> <part>"` lines joined by `\n`.
pub(super) fn pool_lines(pools: &[(String, String)]) -> String {
    let lines: Vec<String> = pools.iter().map(|(c, p)| format!("{c} {p}")).collect();
    lines.join("\n")
}

/// The `tiers` field of a hold HASH: `"<code> <quantity>"` lines joined by `\n` (codes have no
/// whitespace).
pub(super) fn parse_tier_lines(text: &str) -> Result<Vec<TierLine>> {
    text.split('\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (code, quantity) = l
                .rsplit_once(' ')
                .and_then(|(c, q)| Some((c, q.parse::<u32>().ok()?)))
                .ok_or_else(|| scripts::unexpected("hold", "a bad tier line"))?;
            Ok(TierLine {
                code: code.to_string(),
                quantity,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_lines_of_a_hold_round_trip() {
        let lines = parse_tier_lines("GA 2\nVIP:1 1").expect("two lines");
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[1].code.as_str(), lines[1].quantity), ("VIP:1", 1));
        assert!(parse_tier_lines("").expect("none").is_empty());
        assert!(parse_tier_lines("GA").is_err());
    }
}
