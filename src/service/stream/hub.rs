//! One streamed event on this instance: its seat map and tiers in memory, a task that turns
//! change messages and hold ends into reads of exactly what moved, and the broadcast of the
//! resulting deltas. The task coalesces: it reads the stores at most once per
//! `stream.coalesce_ms`, whatever the number of changes or connections.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;

use super::state::{Audience, Pending, Rendered, State};
pub use super::state::{LiveSeat, LiveTier, Snapshot};
use crate::domain::events::EventId;
use crate::domain::live::{Change, Delta, LiveStatus, TierChange, seat_changes};
use crate::error::{Error, Result};
use crate::service::Seatlock;
use crate::store::redis::{ChangeFeed, WATCH_TTL};

/// Subscribers, and whether the hub has begun to stop (then it takes no new ones).
#[derive(Default)]
struct Members {
    count: usize,
    stopping: bool,
}

pub(super) struct Hub {
    event: EventId,
    state: RwLock<State>,
    updates: broadcast::Sender<Arc<Delta>>,
    pending: Mutex<Pending>,
    wake: Notify,
    members: Mutex<Members>,
    /// None until the first load; then its outcome.
    loaded: watch::Sender<Option<std::result::Result<(), Error>>>,
    /// The last rendered snapshot, for buyers and for sellers.
    rendered: Mutex<[Option<Rendered>; 2]>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Hub {
    /// Starts the hub's task; the first load follows at once.
    pub(super) fn start(seatlock: Seatlock, event: EventId, feed: ChangeFeed) -> Arc<Hub> {
        let buffer = seatlock.settings.stream.buffer;
        let hub = Arc::new(Hub {
            event,
            state: RwLock::default(),
            updates: broadcast::channel(buffer).0,
            pending: Mutex::default(),
            wake: Notify::new(),
            members: Mutex::default(),
            loaded: watch::channel(None).0,
            rendered: Mutex::default(),
        });
        tokio::spawn(hub.clone().run(seatlock, feed));
        hub
    }

    /// Counts a subscriber in; false when the hub is stopping.
    pub(super) fn join(&self) -> bool {
        let mut m = self.members.lock().unwrap_or_else(|e| e.into_inner());
        if m.stopping {
            return false;
        }
        m.count += 1;
        true
    }

    pub(super) fn leave(&self) {
        let mut m = self.members.lock().unwrap_or_else(|e| e.into_inner());
        m.count = m.count.saturating_sub(1);
    }

    /// Waits for the first load; its error (an unknown event) is the subscriber's.
    pub(super) async fn loaded(&self) -> Result<()> {
        let mut rx = self.loaded.subscribe();
        let outcome = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Error::Internal("the stream's hub stopped before loading".into()))?;
        match outcome.as_ref() {
            Some(Ok(())) => Ok(()),
            Some(Err(Error::EventNotFound)) => Err(Error::EventNotFound),
            // A store that cannot be asked now: 503 with `Retry-After`, as the other reads.
            Some(Err(Error::Unavailable { what })) => Err(Error::Unavailable { what }),
            Some(Err(e)) if e.is_postgres_outage() => Err(Error::Unavailable { what: "postgres" }),
            Some(Err(e)) if e.is_redis_outage() => Err(Error::Unavailable { what: "redis" }),
            Some(Err(e)) => Err(Error::Internal(format!("loading the seat map: {e}"))),
            None => Err(Error::Internal("the stream's hub has not loaded".into())),
        }
    }

    pub(super) fn receiver(&self) -> broadcast::Receiver<Arc<Delta>> {
        self.updates.subscribe()
    }

    /// The snapshot rendered by `render`, shared while the state and `stamp` stay the same
    /// (the lock makes concurrent callers wait for one rendering instead of each making one).
    pub(super) fn rendered_snapshot(
        &self,
        stamp: i64,
        audience: Audience,
        render: impl FnOnce(&Snapshot) -> Vec<u8>,
    ) -> Arc<[u8]> {
        let mut all = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        let rendered = &mut all[audience as usize];
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = rendered.as_ref()
            && r.version == state.version
            && r.stamp == stamp
        {
            return r.bytes.clone();
        }
        let snapshot = Snapshot {
            version: state.version,
            seats: state.seats.clone(),
            tiers: state.tiers.clone(),
        };
        drop(state);
        let bytes: Arc<[u8]> = render(&snapshot).into();
        *rendered = Some(Rendered {
            version: snapshot.version,
            stamp,
            bytes: bytes.clone(),
        });
        bytes
    }

    /// A change message: read what it names at the next flush.
    pub(super) fn notify(&self, change: Change) {
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            // Its time left as the message gives it, from now on this instance's clock.
            let held_until = change.expires_at_ms.map(|x| now_ms() + (x - change.at_ms));
            p.seats_changed(change.seats, held_until);
            p.tiers |= !change.tiers.is_empty();
            p.note(change.at_ms);
        }
        if let Some(end) = change.expires_at_ms {
            // A tier hold's end is the hub's only way to learn of it.
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            state.tier_next_end_ms = Some(state.tier_next_end_ms.map_or(end, |t| t.min(end)));
        }
        self.wake.notify_one();
    }

    /// Read everything again at the next flush (the feed lost messages).
    pub(super) fn reload(&self) {
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.reload = true;
            p.note(now_ms());
        }
        self.wake.notify_one();
    }

    /// The task: load, then flush changes as they come, at most once per coalescing window,
    /// until nobody has subscribed for a while or the service closes.
    async fn run(self: Arc<Hub>, seatlock: Seatlock, feed: ChangeFeed) {
        let event = self.event;
        // The snapshot is read once the subscription is live, so that no change falls between
        // the two; if the feed is not connected within the connect timeout, the snapshot is read
        // anyway and read again once it is.
        let mut live = feed.subscribe(event);
        let wait = Duration::from_millis(seatlock.settings.redis.connect_timeout_ms);
        let mut subscribed = tokio::time::timeout(wait, &mut live).await.is_ok();
        let _ = seatlock.redis.watch_event(event).await;
        match seatlock.load_seats(event, None).await {
            Ok(seats) => {
                let tiers = seatlock.load_tiers(event).await.unwrap_or_default();
                let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
                state.index = index_of(&seats);
                state.seats = seats;
                state.tiers = tiers.0;
                state.tier_next_end_ms = tiers.1;
                drop(state);
                self.loaded.send_replace(Some(Ok(())));
            }
            Err(e) => {
                self.members
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .stopping = true;
                self.loaded.send_replace(Some(Err(e)));
                feed.unsubscribe(event);
                return;
            }
        }
        let coalesce = Duration::from_millis(seatlock.settings.stream.coalesce_ms);
        let mut closing = seatlock.streams.closing.subscribe();
        let mut refresh = tokio::time::interval(WATCH_TTL / 3);
        refresh.tick().await;
        let mut idle_ticks = 0;
        let mut last_flush = Instant::now() - coalesce;
        loop {
            let next_end = self
                .state
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .next_end_ms();
            let until_end = next_end.map_or(Duration::from_secs(3600), |end| {
                Duration::from_millis((end - now_ms()).max(0) as u64 + 5)
            });
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(until_end) => self.note_ended(),
                _ = refresh.tick() => {
                    let _ = seatlock.redis.watch_event(event).await;
                    if self.members.lock().unwrap_or_else(|e| e.into_inner()).count == 0 {
                        idle_ticks += 1;
                    } else {
                        idle_ticks = 0;
                    }
                    if idle_ticks >= 2 && self.try_stop() {
                        break;
                    }
                }
                () = async { let _ = closing.wait_for(|c| *c).await; } => break,
                now_live = &mut live, if !subscribed => {
                    subscribed = true;
                    if now_live.is_ok() {
                        self.reload();
                    }
                }
            }
            if self
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
            {
                continue;
            }
            tokio::time::sleep_until(last_flush + coalesce).await;
            last_flush = Instant::now();
            if let Err(e) = self.flush(&seatlock).await {
                tracing::debug!(error = %e, event.id = %event, "stream: read failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        self.members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stopping = true;
        feed.unsubscribe(event);
        seatlock.streams.remove(event, &self);
    }

    /// Stops only if still nobody is subscribed (checked under the members lock).
    fn try_stop(&self) -> bool {
        let mut m = self.members.lock().unwrap_or_else(|e| e.into_inner());
        if m.count == 0 {
            m.stopping = true;
        }
        m.stopping
    }

    /// Holds that ended since the last read: their seats (and the tiers) are read again.
    fn note_ended(&self) {
        let now = now_ms();
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for seat in &state.seats {
            if let LiveStatus::Held { until_ms } = seat.status
                && until_ms <= now
            {
                p.seats.insert(seat.code.clone());
                p.note(until_ms);
            }
        }
        if let Some(end) = state.tier_next_end_ms.filter(|end| *end <= now) {
            p.tiers = true;
            p.note(end);
        }
    }

    /// Reads what is pending, updates the state and broadcasts what changed.
    async fn flush(&self, seatlock: &Seatlock) -> Result<()> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let event = self.event;
        let read_seats = if pending.reload {
            Some(seatlock.load_seats(event, None).await)
        } else if pending.seats.is_empty() {
            None
        } else {
            let codes: Vec<String> = pending.seats.iter().cloned().collect();
            Some(seatlock.load_seats(event, Some(&codes)).await)
        };
        let read_tiers = if pending.reload || pending.tiers {
            Some(seatlock.load_tiers(event).await)
        } else {
            None
        };
        let (seats, tiers) = match (read_seats.transpose(), read_tiers.transpose()) {
            (Ok(seats), Ok(tiers)) => (seats, tiers),
            (Err(e), _) | (_, Err(e)) => {
                // Read again next time.
                let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                for (code, until) in pending.held {
                    if !p.seats.contains(&code) {
                        p.held.entry(code).or_insert(until);
                    }
                }
                p.seats.extend(pending.seats);
                p.tiers |= pending.tiers;
                p.reload |= pending.reload;
                if let Some(since) = pending.since_ms {
                    p.note(since);
                }
                return Err(e);
            }
        };
        let now = now_ms();
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let mut delta = Delta {
            changed_at_ms: pending.since_ms,
            ..Delta::default()
        };
        if !pending.reload {
            // Holds taken or extended: shown as their messages say, without a read.
            let held: Vec<(&str, LiveStatus)> = pending
                .held
                .iter()
                .filter(|(code, _)| state.index.contains_key(code.as_str()))
                .map(|(code, until)| {
                    let until_ms = if *until <= now { now + 250 } else { *until };
                    (code.as_str(), LiveStatus::Held { until_ms })
                })
                .collect();
            let shown = |code: &str| state.index.get(code).map(|&i| state.seats[i].status);
            delta.seats = seat_changes(shown, held.iter().copied());
            for (code, status) in held {
                if let Some(&i) = state.index.get(code) {
                    state.seats[i].status = status;
                }
            }
        }
        if let Some(mut seats) = seats {
            for seat in &mut seats {
                // A hold this clock sees ended that Redis still counts (clock skew): look again
                // a little later rather than at once.
                if let LiveStatus::Held { until_ms } = &mut seat.status
                    && *until_ms <= now
                {
                    *until_ms = now + 250;
                }
            }
            let shown = |code: &str| state.index.get(code).map(|&i| state.seats[i].status);
            let read = seat_changes(shown, seats.iter().map(|s| (s.code.as_str(), s.status)));
            delta.seats.extend(read);
            if pending.reload {
                state.index = index_of(&seats);
                state.seats = seats;
            } else {
                for seat in seats {
                    if let Some(&i) = state.index.get(&seat.code) {
                        state.seats[i] = seat;
                    }
                }
            }
        }
        if let Some((tiers, next_end)) = tiers {
            for tier in &tiers {
                let before = state.tiers.iter().find(|t| t.code == tier.code);
                if before.is_none_or(|t| t.available != tier.available) {
                    delta.tiers.push(TierChange {
                        code: tier.code.clone(),
                        available: tier.available,
                    });
                }
            }
            state.tiers = tiers;
            state.tier_next_end_ms = next_end
                .filter(|end| *end > now)
                .or_else(|| next_end.map(|_| now + 250));
        }
        if delta.is_empty() {
            return Ok(());
        }
        state.version += 1;
        delta.version = state.version;
        drop(state);
        let _ = self.updates.send(Arc::new(delta));
        Ok(())
    }
}

fn index_of(seats: &[LiveSeat]) -> HashMap<String, usize> {
    seats
        .iter()
        .enumerate()
        .map(|(i, s)| (s.code.clone(), i))
        .collect()
}
