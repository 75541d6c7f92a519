//! What one flush of an event's history reads (the stream's entries, the unnumbered Postgres
//! rows, the open holds, both clocks) and what it records: the input and output of
//! [`merge`](super::merge::merge).

use super::{Group, OpenHold};
use crate::domain::holds::HoldGroupId;
use crate::domain::tiers::TierLine;

/// What a hold script appended to the event's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Held {
        user_id: String,
        expires_at_ms: i64,
        seats: Vec<String>,
        tiers: Vec<TierLine>,
    },
    Extended {
        expires_at_ms: i64,
    },
    /// A confirm pinned the hold: it now runs until then (not a change of its own).
    Pinned {
        expires_at_ms: i64,
    },
    Released,
    /// Its booking committed (the rows are in Postgres).
    Booked,
    /// Ended without a sale; `taken` are seats another booking had sold.
    Dropped {
        taken: Vec<String>,
    },
    /// Its booking was cancelled (the rows are in Postgres).
    Cancelled,
}

/// One entry of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    pub at_ms: i64,
    /// The hold (or booking) it is about.
    pub hold: HoldGroupId,
    pub kind: EntryKind,
}

/// Unnumbered Postgres rows of one operation (one change of one hold or booking), as a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub group: Group,
    /// Read before the stream was (so its marker, if any, is in the stream read); rows read
    /// after are used only where their marker is met.
    pub early: bool,
}

/// Everything one flush of an event looks at.
#[derive(Debug, Clone, Default)]
pub struct FlushInput {
    pub entries: Vec<StreamEntry>,
    /// The stream was read to its end (false: more to read, or Redis could not be read).
    pub drained: bool,
    /// A Redis time by which every entry the stream has is in `entries` (None: no such time,
    /// Redis was not read): the stream's clock when it was drained, else the time of the last
    /// entry taken. A Redis hold that ended by then is recorded as expired: no entry not read
    /// can extend or pin it (Redis lets a hold be changed only while it runs).
    pub redis_clock_ms: Option<i64>,
    pub pg_now_ms: i64,
    /// In the order Postgres numbered its rows.
    pub pending: Vec<Pending>,
    pub open: Vec<OpenHold>,
    /// Record no expiry past this hold (end in ms, id): the open holds read are a page of the
    /// expired ones, oldest first, and the later ones are the next flush's. None: every one.
    pub expire_through: Option<(i64, uuid::Uuid)>,
}

/// What the flush records, in order, and how the open holds change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushOutput {
    pub groups: Vec<Group>,
    /// Open holds added or changed.
    pub open_upserts: Vec<OpenHold>,
    /// Open holds that ended.
    pub open_deletes: Vec<HoldGroupId>,
}
