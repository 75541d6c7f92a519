//! The history flush: copies what the hold scripts appended to each event's Redis stream into
//! Postgres, in order with the rows the Postgres transactions wrote, numbers them, records the
//! expiries of holds whose end passed, and queues the webhook messages of what it recorded.
//! Every instance runs it every `history.flush_ms / 4`; one flush of an event at a time (the
//! event's head row is locked, another instance skips it). And the reads of the history.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::warn;

use super::Seatlock;
use crate::domain::events::EventId;
use crate::domain::history::ChangeRecord;
use crate::domain::history::merge::{EntryKind, FlushInput, Pending, merge};
use crate::domain::holds::HoldStore;
use crate::domain::webhooks::message_of;
use crate::error::{Error, Result};
use crate::telemetry;

/// Most stream entries one flush of an event copies (a longer backlog takes several).
const BATCH: usize = 1000;
/// How often each instance reads the registry of events with entries not yet flushed (left by
/// an instance that stopped before flushing them; see `RedisStore::register_history`).
const REGISTRY_EVERY: Duration = Duration::from_secs(10);
/// How often each instance walks the whole key space for history streams (and once at start):
/// the safety net for entries appended by an instance that stopped before its next flush round
/// registered them. A SCAN costs Redis CPU in proportion to all its keys (a held seat is a key),
/// so it is rare: every 10 s it took 2-3 % of Redis's time per instance at 100,000-450,000 keys,
/// growing with the keys and the instances (bench/README.md).
const FULL_SCAN_EVERY: Duration = Duration::from_secs(600);

/// When the flush last read the registry / scanned Redis, as ms since the process's start.
#[derive(Default)]
pub(super) struct ScanClock {
    registry: AtomicU64,
    full: AtomicU64,
}

impl Seatlock {
    /// One round of the flush: every event with something to record.
    pub async fn flush_history(&self) {
        if !self.settings.history.enabled {
            return;
        }
        let redis = self.settings.holds.backend == HoldStore::Redis;
        let touched: Vec<EventId> = self.redis.take_touched().into_iter().collect();
        let mut events: HashSet<EventId> = touched.iter().copied().collect();
        if redis && let Some(Err(e)) = self.read_redis(self.redis.register_history(&touched)).await
        {
            warn!(error = %e, "history: could not register the events written to");
        }
        match self.pg.fetch_history_candidates().await {
            Ok(found) => events.extend(found),
            Err(e) => warn!(error = %e, "history: could not look for events to flush"),
        }
        if redis
            && due(&self.history_scan.full, self.started, FULL_SCAN_EVERY)
            && let Some(Ok(found)) = self.read_redis(self.redis.scan_history_events()).await
        {
            events.extend(found);
        } else if redis
            && due(&self.history_scan.registry, self.started, REGISTRY_EVERY)
            && let Some(Ok(found)) = self.read_redis(self.redis.registered_history()).await
        {
            events.extend(found);
        }
        for event in events {
            for _ in 0..100 {
                match self.flush_event(event).await {
                    Ok(true) => continue,
                    Ok(false) => {
                        if redis
                            && let Some(Err(e)) = self
                                .read_redis(self.redis.unregister_history_if_empty(event))
                                .await
                        {
                            warn!(error = %e, event.id = %event, "history: could not update the registry");
                        }
                        break;
                    }
                    Err(e) => {
                        warn!(error = %e, event.id = %event, "history flush failed; retrying");
                        break;
                    }
                }
            }
        }
    }

    /// Flushes one event once; true when its stream has more to copy.
    async fn flush_event(&self, event: EventId) -> Result<bool> {
        let started = Instant::now();
        let Some(mut flush) = self.pg.begin_history_flush(event).await? else {
            // Another instance is at it; look again next round (it may have read the stream
            // before this instance's last entries).
            self.redis.touch(event);
            return Ok(false);
        };
        let (mut pending, pg_now_ms) = flush.read_before_stream().await?;
        let redis = self.settings.holds.backend == HoldStore::Redis;
        let read = if redis {
            let after = flush.stream_pos().to_string();
            self.read_redis(self.redis.read_history(event, &after, BATCH))
                .await
        } else {
            None
        };
        let (mut entries, mut drained, redis_now_ms) = match read {
            Some(Ok(r)) => {
                let drained = r.entries.len() < BATCH;
                (r.entries, drained, Some(r.now_ms))
            }
            Some(Err(e)) => {
                warn!(error = %e, event.id = %event, "history: could not read the stream");
                (Vec::new(), false, None)
            }
            // Postgres holds only: there is no stream to read.
            None => (Vec::new(), !redis, None),
        };
        pending.extend(flush.read_after_stream().await?);
        // A Redis time by which it has every entry: the stream's clock when it read the stream
        // to its end, else (a backlog) its last entry's time. The Redis holds that ended by then
        // are the ones it may record as expired; they are also every hold whose seat one of its
        // entries can take (Redis lets a seat go only once its hold ran out).
        let redis_clock = if drained {
            redis_now_ms
        } else {
            entries.last().map(|(_, e)| e.at_ms)
        };
        // The open holds its entries and rows name; a held entry's hold is new (looking up the
        // 1,000 of a batch found none and took 2.6 ms of each flush).
        let mut holds: Vec<uuid::Uuid> = entries
            .iter()
            .filter(|(_, e)| !matches!(e.kind, EntryKind::Held { .. }))
            .map(|(_, e)| e.hold.0)
            .collect();
        holds.extend(pending.iter().map(|p| p.group.hold.0));
        let read = flush
            .read_open(&holds, redis_clock, pg_now_ms, &pending_seats(&pending))
            .await?;
        // A page of expiries that ends before the last entry: the flush takes only the entries
        // before the page's last end (their seats' expired holds are in the page); the rest are
        // the next flush's.
        if let Some((end, _)) = read.expire_through
            && let Some(k) = entries.iter().position(|(_, e)| e.at_ms >= end)
        {
            entries.truncate(k);
            drained = false;
        }
        let last_id = entries.last().map(|(id, _)| id.clone());
        let output = merge(FlushInput {
            entries: entries.into_iter().map(|(_, e)| e).collect(),
            drained,
            redis_clock_ms: redis_clock,
            pg_now_ms,
            pending,
            open: read.open,
            expire_through: read.expire_through,
        });
        let recorded: usize = output.groups.iter().map(|g| g.len()).sum();
        // More to copy, or more expiries past this page (when this one ended some: a page of
        // Redis holds that only Postgres's clock passed waits for the Redis clock).
        let more = (!drained && last_id.is_some())
            || (read.expire_through.is_some() && !output.open_deletes.is_empty());
        let numbered = flush
            .finish(&output, last_id.as_deref(), |g, seq| {
                message_of(event, g, seq)
            })
            .await?;
        if let Some(id) = &last_id
            && let Some(Err(e)) = self.read_redis(self.redis.trim_history(event, id)).await
        {
            // Copied already (the position moved): a later trim removes it.
            warn!(error = %e, event.id = %event, "history: could not trim the stream");
        }
        telemetry::record_history_flush(recorded as u64, started.elapsed());
        if !numbered.is_empty() {
            self.webhooks_wake.notify_one();
        }
        Ok(more)
    }

    /// Deletes history past `history.retention_days` and delivered or failed webhook messages
    /// past `webhooks.retention_days` (each in batches, until none is left).
    pub async fn sweep_history(&self) {
        let days = self.settings.history.retention_days;
        loop {
            match self.pg.sweep_history(days).await {
                Ok(n) if n >= 10_000 => continue,
                Ok(_) => break,
                Err(e) => {
                    warn!(error = %e, "sweeping old history failed");
                    break;
                }
            }
        }
        let days = self.settings.webhooks.retention_days;
        loop {
            match self.pg.sweep_webhook_messages(days).await {
                Ok(n) if n >= 10_000 => continue,
                Ok(_) => break,
                Err(e) => {
                    warn!(error = %e, "sweeping old webhook messages failed");
                    break;
                }
            }
        }
    }

    /// An event's changes after `after`, oldest first (404 for an unknown event).
    pub async fn changes(
        &self,
        event: EventId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ChangeRecord>> {
        let changes = self.pg.fetch_changes(event, after, limit).await?;
        if changes.is_empty() && self.pg.fetch_event(event).await?.is_none() {
            return Err(Error::EventNotFound);
        }
        Ok(changes)
    }

    /// One seat's changes, newest first (404 for an unknown event or seat).
    pub async fn seat_history(
        &self,
        event: EventId,
        seat: &str,
        limit: i64,
    ) -> Result<Vec<ChangeRecord>> {
        let changes = self.pg.fetch_seat_history(event, seat, limit).await?;
        if changes.is_empty() && !self.pg.seat_exists(event, seat).await? {
            if self.pg.fetch_event(event).await?.is_none() {
                return Err(Error::EventNotFound);
            }
            return Err(Error::SeatsNotFound {
                seats: vec![seat.to_string()],
            });
        }
        Ok(changes)
    }
}

/// Whether `every` has passed since `last` (never set: due), and this caller takes the turn.
fn due(last: &AtomicU64, started: Instant, every: Duration) -> bool {
    let now = started.elapsed().as_millis() as u64;
    let seen = last.load(Ordering::Relaxed);
    (seen == 0 || now.saturating_sub(seen) >= every.as_millis() as u64)
        && last
            .compare_exchange(seen, now.max(1), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
}

/// The seats a flush's Postgres rows name (see `read_open`).
fn pending_seats(pending: &[Pending]) -> Vec<String> {
    let mut seats: Vec<String> = pending
        .iter()
        .flat_map(|p| p.group.seats.iter().map(|(code, _)| code.clone()))
        .collect();
    seats.sort_unstable();
    seats.dedup();
    seats
}
