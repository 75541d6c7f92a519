//! The live seat map: what a change message names, a seat and a tier as a stream shows them, and
//! the delta between what a stream last showed and what the stores say now. No I/O here.

use std::collections::HashMap;

use serde_json::Value;

use super::seats::SeatStatus;

/// What one change message names: seats and tiers whose state may have moved, when (the
/// publisher's clock, ms since the epoch) and, for a hold, when it ends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Change {
    pub seats: Vec<String>,
    pub tiers: Vec<String>,
    pub at_ms: i64,
    pub expires_at_ms: Option<i64>,
}

impl Change {
    /// Parses `{"s": [...], "t": [...], "at": ms, "x": ms}`; an empty list may come as `{}` (the
    /// Lua JSON encoder cannot tell an empty array from an empty object).
    pub fn parse(payload: &[u8]) -> Option<Change> {
        let v: Value = serde_json::from_slice(payload).ok()?;
        let list = |key: &str| -> Vec<String> {
            v.get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(Change {
            seats: list("s"),
            tiers: list("t"),
            at_ms: v.get("at").and_then(Value::as_i64)?,
            expires_at_ms: v.get("x").and_then(Value::as_i64),
        })
    }

    /// The message for the stores' pub/sub channel (what the Lua scripts publish).
    pub fn to_payload(&self) -> String {
        let mut v = serde_json::json!({"s": self.seats, "t": self.tiers, "at": self.at_ms});
        if let Some(x) = self.expires_at_ms {
            v["x"] = x.into();
        }
        v.to_string()
    }
}

/// Where a seat stands, as a stream shows it: the status, and for a hold its end (ms since the
/// epoch, this instance's clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveStatus {
    Available,
    Held { until_ms: i64 },
    Booked,
    Blocked,
}

impl LiveStatus {
    /// From a status read at `now_ms`.
    pub fn from_status(status: SeatStatus, now_ms: i64) -> Self {
        match status {
            SeatStatus::Available => LiveStatus::Available,
            SeatStatus::Held { ms_left } => LiveStatus::Held {
                until_ms: now_ms + ms_left.max(0),
            },
            SeatStatus::Booked => LiveStatus::Booked,
            SeatStatus::Blocked => LiveStatus::Blocked,
        }
    }

    /// The status as `GET /events/{id}/seats` would show it at `now_ms`.
    pub fn at(self, now_ms: i64) -> SeatStatus {
        match self {
            LiveStatus::Available => SeatStatus::Available,
            LiveStatus::Held { until_ms } if until_ms > now_ms => SeatStatus::Held {
                ms_left: until_ms - now_ms,
            },
            LiveStatus::Held { .. } => SeatStatus::Available,
            LiveStatus::Booked => SeatStatus::Booked,
            LiveStatus::Blocked => SeatStatus::Blocked,
        }
    }

    /// Whether two readings say the same thing to a viewer: a hold whose end moved by under a
    /// second (two reads of one hold) is the same hold.
    pub fn same_as(self, other: LiveStatus) -> bool {
        match (self, other) {
            (LiveStatus::Held { until_ms: a }, LiveStatus::Held { until_ms: b }) => {
                (a - b).abs() < 1000
            }
            (a, b) => a == b,
        }
    }
}

/// A seat's change as an update carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatChange {
    pub code: String,
    pub status: LiveStatus,
}

/// A tier's change as an update carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierChange {
    pub code: String,
    pub available: u32,
}

/// What changed between two updates of an event, with the time of the oldest change in it (for
/// the change -> sent lag).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delta {
    pub version: u64,
    pub seats: Vec<SeatChange>,
    pub tiers: Vec<TierChange>,
    pub changed_at_ms: Option<i64>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.seats.is_empty() && self.tiers.is_empty()
    }

    /// Folds a later delta into this one: the later state of a seat or tier wins, the order of
    /// first appearance stays, the oldest change time is kept.
    pub fn merge(&mut self, later: &Delta) {
        self.version = self.version.max(later.version);
        self.changed_at_ms = match (self.changed_at_ms, later.changed_at_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let seat_at: HashMap<String, usize> = self
            .seats
            .iter()
            .enumerate()
            .map(|(i, s)| (s.code.clone(), i))
            .collect();
        for seat in &later.seats {
            match seat_at.get(&seat.code) {
                Some(&i) => self.seats[i].status = seat.status,
                None => self.seats.push(seat.clone()),
            }
        }
        for tier in &later.tiers {
            match self.tiers.iter_mut().find(|t| t.code == tier.code) {
                Some(t) => t.available = tier.available,
                None => self.tiers.push(tier.clone()),
            }
        }
    }
}

/// The seats whose new reading differs from what was shown, as changes, in reading order.
pub fn seat_changes<'a>(
    shown: impl Fn(&str) -> Option<LiveStatus>,
    read: impl IntoIterator<Item = (&'a str, LiveStatus)>,
) -> Vec<SeatChange> {
    read.into_iter()
        .filter(|(code, status)| !shown(code).is_some_and(|s| s.same_as(*status)))
        .map(|(code, status)| SeatChange {
            code: code.to_string(),
            status,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_messages_parse_with_empty_lists_in_either_shape() {
        let c = Change::parse(br#"{"s":["S1","S\"2"],"t":{},"at":5,"x":9}"#).expect("parses");
        assert_eq!(c.seats, vec!["S1", "S\"2"]);
        assert!(c.tiers.is_empty());
        assert_eq!((c.at_ms, c.expires_at_ms), (5, Some(9)));
        let back = Change::parse(c.to_payload().as_bytes()).expect("round trip");
        assert_eq!(back, c);
        assert!(Change::parse(b"not json").is_none());
        assert!(Change::parse(br#"{"s":[]}"#).is_none(), "no time");
    }

    #[test]
    fn a_hold_counts_as_held_until_its_end() {
        let held = LiveStatus::from_status(SeatStatus::Held { ms_left: 1500 }, 10_000);
        assert_eq!(held, LiveStatus::Held { until_ms: 11_500 });
        assert_eq!(held.at(11_000), SeatStatus::Held { ms_left: 500 });
        assert_eq!(held.at(11_500), SeatStatus::Available);
        assert!(held.same_as(LiveStatus::Held { until_ms: 11_900 }));
        assert!(!held.same_as(LiveStatus::Held { until_ms: 40_000 }));
        assert!(!held.same_as(LiveStatus::Booked));
    }

    #[test]
    fn only_what_moved_is_a_change() {
        let shown = |code: &str| match code {
            "S1" => Some(LiveStatus::Available),
            "S2" => Some(LiveStatus::Held { until_ms: 100 }),
            _ => None,
        };
        let read = [
            ("S1", LiveStatus::Available),
            ("S2", LiveStatus::Booked),
            ("S3", LiveStatus::Available),
        ];
        let changes = seat_changes(shown, read);
        let codes: Vec<&str> = changes.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes, ["S2", "S3"]);
    }

    #[test]
    fn later_deltas_win_and_the_oldest_change_time_stays() {
        let seat = |code: &str, status| SeatChange {
            code: code.into(),
            status,
        };
        let mut a = Delta {
            version: 1,
            seats: vec![seat("S1", LiveStatus::Held { until_ms: 5 })],
            tiers: vec![TierChange {
                code: "GA".into(),
                available: 3,
            }],
            changed_at_ms: Some(100),
        };
        a.merge(&Delta {
            version: 2,
            seats: vec![
                seat("S2", LiveStatus::Booked),
                seat("S1", LiveStatus::Available),
            ],
            tiers: vec![TierChange {
                code: "GA".into(),
                available: 1,
            }],
            changed_at_ms: Some(90),
        });
        assert_eq!(a.version, 2);
        assert_eq!(a.changed_at_ms, Some(90));
        assert_eq!(
            a.seats,
            vec![
                seat("S1", LiveStatus::Available),
                seat("S2", LiveStatus::Booked)
            ]
        );
        assert_eq!(a.tiers[0].available, 1);
    }
}
