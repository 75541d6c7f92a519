//! One flush of an event's history: the entries the hold scripts appended to the event's Redis
//! stream since the last flush, and the unnumbered rows the Postgres transactions wrote, put in
//! the order they happened.
//!
//! The stream's order is the order of the changes in Redis (one script at a time per event).
//! A Postgres row joins it where its marker is: `settle.lua` appends `B` (booked) right after the
//! confirm's transaction committed, `mark_booked.lua` appends `C` after a cancel's. Rows without
//! a marker (Postgres holds, a crash between a commit and its marker) join after the stream once
//! what must precede them has been recorded, or before the hold that takes a seat they freed (a
//! rebuild from Postgres frees a seat whose cancel never reached Redis).
//!
//! A hold's end by expiry is not in the stream (Redis forgets the hold): the flush keeps the open
//! holds and records an expiry when the store's clock passes it, or when a later hold takes one
//! of its seats (which Redis allows only once it expired), whichever it sees first. No I/O here.

use std::collections::{HashMap, HashSet};

pub use super::entries::{EntryKind, FlushInput, FlushOutput, Pending, StreamEntry};
use super::{Change, Group, OpenHold, Status};
use crate::domain::holds::{HoldGroupId, HoldStore};

/// How long a booked row whose hold the history never saw taken waits before it is recorded
/// anyway (its hold's entries were lost with Redis's data).
pub const ORPHAN_AFTER_MS: i64 = 10_000;

struct Flush {
    open: HashMap<HoldGroupId, OpenHold>,
    holder: HashMap<String, HoldGroupId>,
    changed: HashSet<HoldGroupId>,
    pending: Vec<Pending>,
    done: Vec<bool>,
    out: Vec<Group>,
}

/// Orders one flush (see the module doc).
pub fn merge(input: FlushInput) -> FlushOutput {
    let initial: HashSet<HoldGroupId> = input.open.iter().map(|h| h.hold).collect();
    let mut holder = HashMap::new();
    for h in &input.open {
        for s in &h.seats {
            holder.insert(s.clone(), h.hold);
        }
    }
    let done = vec![false; input.pending.len()];
    let mut f = Flush {
        open: input.open.into_iter().map(|h| (h.hold, h)).collect(),
        holder,
        changed: HashSet::new(),
        pending: input.pending,
        done,
        out: Vec::new(),
    };
    for entry in input.entries {
        f.apply(entry);
    }
    // The Redis time through which this flush has every entry of the stream. A Postgres row or
    // a Postgres hold's end after it waits for the flush that reads that far: recorded now, it
    // would come before the earlier entries of a backlog (a hold the breaker sent to Postgres
    // while the stream had the Redis hold that took the seat first was numbered before it; that
    // hold then "took" the seat from it, and the Postgres hold's expiry was never recorded).
    // Redis not read (the Postgres-only mode, or an outage): nothing waits, so the history and
    // the webhooks of Postgres holds go on during an outage.
    let stream_clock = match (input.redis_clock_ms, input.expire_through) {
        (Some(clock), Some((end, _))) => Some(clock.min(end - 1)),
        (clock, _) => clock,
    };
    f.post_pass(input.drained, input.pg_now_ms, stream_clock);
    f.expire(
        input.redis_clock_ms,
        stream_clock.map_or(input.pg_now_ms, |c| c.min(input.pg_now_ms)),
        input.expire_through,
    );
    let mut open_upserts: Vec<OpenHold> = f
        .changed
        .iter()
        .filter_map(|id| f.open.get(id).cloned())
        .collect();
    open_upserts.sort_by_key(|h| h.hold.0);
    let mut open_deletes: Vec<HoldGroupId> = initial
        .into_iter()
        .filter(|id| !f.open.contains_key(id))
        .collect();
    open_deletes.sort_by_key(|id| id.0);
    FlushOutput {
        groups: f.out.into_iter().filter(|g| !g.is_empty()).collect(),
        open_upserts,
        open_deletes,
    }
}

impl Flush {
    fn apply(&mut self, entry: StreamEntry) {
        let (at, id) = (entry.at_ms, entry.hold);
        match entry.kind {
            EntryKind::Held {
                user_id,
                expires_at_ms,
                seats,
                tiers,
            } => {
                let hold = OpenHold {
                    hold: id,
                    user_id,
                    seats,
                    tiers,
                    expires_at_ms,
                };
                self.take(hold, at, Vec::new());
            }
            EntryKind::Extended { expires_at_ms } => {
                if let Some(h) = self.open.get_mut(&id) {
                    h.expires_at_ms = expires_at_ms;
                    let group = group_of(h, Change::Extended, at, Status::Held);
                    self.changed.insert(id);
                    self.out.push(group);
                }
            }
            EntryKind::Pinned { expires_at_ms } => {
                if let Some(h) = self.open.get_mut(&id) {
                    h.expires_at_ms = h.expires_at_ms.max(expires_at_ms);
                    self.changed.insert(id);
                }
            }
            EntryKind::Released => self.end(id, Change::Released, at, &[]),
            EntryKind::Dropped { taken } => self.end(id, Change::Released, at, &taken),
            EntryKind::Booked => {
                let rows = self.pending_of(id, Change::Booked, false);
                for i in rows {
                    self.emit_pending(i);
                }
                self.close(id);
            }
            EntryKind::Cancelled => {
                for i in self.pending_of(id, Change::Cancelled, false) {
                    self.emit_pending(i);
                }
            }
        }
    }

    /// A hold takes its seats: a cancel or an unblock that freed one and is not recorded yet is
    /// recorded first (with the block before it), and a seat's previous holder either expired (Redis let the seat
    /// go only then) and its end is recorded first, or lost just that seat.
    fn take(&mut self, hold: OpenHold, at: i64, pending_ids: Vec<i64>) {
        let freed: Vec<usize> = (0..self.pending.len())
            .filter(|&i| {
                let g = &self.pending[i].group;
                !self.done[i]
                    && g.hold != hold.hold
                    && g.seats.iter().any(|(s, _)| hold.seats.contains(s))
                    && match g.change {
                        Change::Cancelled => self.booking_recorded(g.hold),
                        // A block and its unblock, in order (the seat is free now).
                        Change::Blocked | Change::Unblocked => true,
                        _ => false,
                    }
            })
            .collect();
        for i in freed {
            self.emit_pending(i);
        }
        for s in &hold.seats {
            let Some(&prev) = self.holder.get(s) else {
                continue;
            };
            if prev == hold.hold {
                continue;
            }
            match self.open.get(&prev).map(|p| p.expires_at_ms) {
                Some(exp) if exp <= at => self.end(prev, Change::Expired, exp, &[]),
                Some(_) => {
                    if let Some(p) = self.open.get_mut(&prev) {
                        p.seats.retain(|c| c != s);
                        self.changed.insert(prev);
                    }
                }
                None => {}
            }
        }
        for s in &hold.seats {
            self.holder.insert(s.clone(), hold.hold);
        }
        let mut group = group_of(&hold, Change::Held, at, Status::Held);
        group.pending_ids = pending_ids;
        self.changed.insert(hold.hold);
        self.open.insert(hold.hold, hold);
        self.out.push(group);
    }

    /// Records the end of an open hold (its seats that no later hold took, and its units); an
    /// expiry of a hold whose booking committed (and whose marker never came) records the
    /// booking instead.
    fn end(&mut self, id: HoldGroupId, change: Change, at: i64, taken: &[String]) {
        if change == Change::Expired {
            let booked = self.pending_of(id, Change::Booked, false);
            if !booked.is_empty() {
                for i in booked {
                    self.emit_pending(i);
                }
                self.close(id);
                return;
            }
        }
        let Some(h) = self.open.get(&id) else {
            return;
        };
        let mut group = group_of(h, change, at, change.status());
        for (seat, status) in &mut group.seats {
            if taken.contains(seat) {
                *status = Status::Booked;
            }
        }
        self.close(id);
        self.out.push(group);
    }

    /// Forgets an open hold and its seats.
    fn close(&mut self, id: HoldGroupId) {
        if let Some(h) = self.open.remove(&id) {
            for s in &h.seats {
                if self.holder.get(s) == Some(&id) {
                    self.holder.remove(s);
                }
            }
        }
        self.changed.remove(&id);
    }

    /// Pending groups of a hold (or booking) with this change, not yet recorded; only early
    /// ones when `early_only`.
    fn pending_of(&self, id: HoldGroupId, change: Change, early_only: bool) -> Vec<usize> {
        (0..self.pending.len())
            .filter(|&i| {
                let p = &self.pending[i];
                !self.done[i]
                    && p.group.hold == id
                    && p.group.change == change
                    && (p.early || !early_only)
            })
            .collect()
    }

    /// Records a pending group, keeping the open holds in step with it.
    fn emit_pending(&mut self, i: usize) {
        if self.done[i] {
            return;
        }
        self.done[i] = true;
        let group = self.pending[i].group.clone();
        let id = group.hold;
        match group.change {
            Change::Held => {
                let hold = OpenHold {
                    hold: id,
                    user_id: group.user_id.clone(),
                    seats: group.seats.iter().map(|(s, _)| s.clone()).collect(),
                    tiers: group.tiers.clone(),
                    expires_at_ms: group.expires_at_ms.unwrap_or(group.at_ms),
                };
                let at = group.at_ms;
                // `take` records the group; keep the rows as written (their ids).
                self.take(hold, at, group.pending_ids.clone());
                if let Some(last) = self.out.last_mut() {
                    *last = group;
                }
                return;
            }
            Change::Extended => {
                if let (Some(h), Some(exp)) = (self.open.get_mut(&id), group.expires_at_ms) {
                    h.expires_at_ms = exp;
                    self.changed.insert(id);
                }
            }
            Change::Released | Change::Expired | Change::Booked => self.close(id),
            Change::Cancelled | Change::Blocked | Change::Unblocked => {}
        }
        self.out.push(group);
    }

    /// After the stream: the early pending groups whose predecessors are recorded, in the order
    /// Postgres numbered them, until none is left that may go.
    /// None is recorded past `stream_clock` (see [`merge`]).
    fn post_pass(&mut self, drained: bool, pg_now: i64, stream_clock: Option<i64>) {
        loop {
            let mut progress = false;
            for i in 0..self.pending.len() {
                if self.done[i] || !self.pending[i].early {
                    continue;
                }
                if stream_clock.is_none_or(|c| self.pending[i].group.at_ms <= c)
                    && self.ready(i, drained, pg_now)
                {
                    self.emit_pending(i);
                    progress = true;
                }
            }
            if !progress {
                return;
            }
        }
    }

    fn ready(&self, i: usize, drained: bool, pg_now: i64) -> bool {
        let g = &self.pending[i].group;
        match g.change {
            Change::Held
            | Change::Extended
            | Change::Released
            | Change::Expired
            | Change::Blocked
            | Change::Unblocked => true,
            Change::Booked => {
                g.hold.store() == HoldStore::Postgres
                    || (drained && self.open.contains_key(&g.hold))
                    || (drained && pg_now - g.at_ms > ORPHAN_AFTER_MS)
            }
            Change::Cancelled => self.booking_recorded(g.hold),
        }
    }

    /// Whether no booked row of this booking waits (a cancel is recorded after its booking).
    fn booking_recorded(&self, booking: HoldGroupId) -> bool {
        (0..self.pending.len()).all(|j| {
            self.done[j]
                || self.pending[j].group.change != Change::Booked
                || self.pending[j].group.hold != booking
        })
    }

    /// Records the expiry of every open hold whose store's clock passed its end (a Redis hold's:
    /// `redis_clock`, see [`FlushInput::redis_clock_ms`]; a Postgres hold's: `pg_now`, not past
    /// the stream's clock), none past `through` (the later ones were not all read).
    fn expire(
        &mut self,
        redis_clock: Option<i64>,
        pg_now: i64,
        through: Option<(i64, uuid::Uuid)>,
    ) {
        let mut due: Vec<(i64, HoldGroupId)> = self
            .open
            .values()
            .filter(|h| {
                let now = match h.hold.store() {
                    HoldStore::Redis => redis_clock,
                    HoldStore::Postgres => Some(pg_now),
                };
                now.is_some_and(|now| h.expires_at_ms <= now)
                    && through.is_none_or(|t| (h.expires_at_ms, h.hold.0) <= t)
            })
            .map(|h| (h.expires_at_ms, h.hold))
            .collect();
        due.sort_by_key(|(exp, id)| (*exp, id.0));
        for (exp, id) in due {
            self.end(id, Change::Expired, exp, &[]);
        }
    }
}

/// A group of every seat and unit an open hold has, each with `status`.
fn group_of(h: &OpenHold, change: Change, at: i64, status: Status) -> Group {
    Group {
        change,
        hold: h.hold,
        user_id: h.user_id.clone(),
        at_ms: at,
        expires_at_ms: Some(h.expires_at_ms),
        seats: h.seats.iter().map(|s| (s.clone(), status)).collect(),
        tiers: h.tiers.clone(),
        price_cents: 0,
        pending_ids: Vec::new(),
        traceparent: None,
    }
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
