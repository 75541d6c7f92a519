//! What a hub keeps: the seats and tiers as last read, what it still has to read, and the last
//! rendered snapshot.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::domain::live::LiveStatus;

/// A seat as a stream shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSeat {
    pub code: String,
    pub seat_type: String,
    pub price_cents: i64,
    pub row: Option<String>,
    pub number: Option<i32>,
    pub status: LiveStatus,
    /// Why it is blocked (a blocked seat), and its sales channel: shown to admins and service
    /// keys only, as in the seat map.
    pub reason: Option<String>,
    pub channel: Option<String>,
}

/// A tier as a stream shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveTier {
    pub code: String,
    pub name: String,
    pub price_cents: i64,
    pub capacity: u32,
    pub available: u32,
}

/// What a new connection is sent first.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub version: u64,
    pub seats: Vec<LiveSeat>,
    pub tiers: Vec<LiveTier>,
}

/// The event's state as last read.
#[derive(Default)]
pub(super) struct State {
    pub version: u64,
    pub seats: Vec<LiveSeat>,
    pub index: HashMap<String, usize>,
    pub tiers: Vec<LiveTier>,
    /// When the next tier hold ends (ms since the epoch), if any is live.
    pub tier_next_end_ms: Option<i64>,
}

impl State {
    /// When the next hold this state knows of ends.
    pub(super) fn next_end_ms(&self) -> Option<i64> {
        let seats = self.seats.iter().filter_map(|s| match s.status {
            LiveStatus::Held { until_ms } => Some(until_ms),
            _ => None,
        });
        seats.chain(self.tier_next_end_ms).min()
    }
}

/// What the task has still to read.
#[derive(Default)]
pub(super) struct Pending {
    pub seats: HashSet<String>,
    /// Seats whose only news since the last flush is a hold taken or extended (the message
    /// says until when, in this instance's clock): shown held without a read.
    pub held: HashMap<String, i64>,
    pub tiers: bool,
    pub reload: bool,
    /// The oldest change waiting (ms since the epoch), for the lag metric.
    pub since_ms: Option<i64>,
}

impl Pending {
    pub(super) fn is_empty(&self) -> bool {
        self.seats.is_empty() && self.held.is_empty() && !self.tiers && !self.reload
    }

    /// A change message's seats: a hold taken or extended until `held_until` (ms, this
    /// instance's clock) is shown as it says, unless the seat has other news to read since the
    /// last flush; any other change is read.
    pub(super) fn seats_changed(&mut self, codes: Vec<String>, held_until: Option<i64>) {
        for code in codes {
            match held_until {
                Some(until) if !self.seats.contains(&code) => {
                    self.held.insert(code, until);
                }
                _ => {
                    self.held.remove(&code);
                    self.seats.insert(code);
                }
            }
        }
    }

    pub(super) fn note(&mut self, at_ms: i64) {
        self.since_ms = Some(self.since_ms.map_or(at_ms, |s| s.min(at_ms)));
    }
}

/// A snapshot as a caller rendered it, for the state `version` at the caller's `stamp`.
pub(super) struct Rendered {
    pub version: u64,
    pub stamp: i64,
    pub bytes: Arc<[u8]>,
}

/// Who a snapshot is rendered for: buyers do not see why a seat is blocked nor its channel;
/// admins and service keys do (as in the seat map). One rendering of each is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Buyers,
    Sellers,
}
