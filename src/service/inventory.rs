//! The Redis inventory cache of an event (its seat codes and booked seats), rebuilt from
//! Postgres when a hold finds it missing (first use, Redis restart, FLUSHALL, eviction).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Seatlock;
use crate::domain::events::EventId;
use crate::error::{Error, Result};
use crate::store::redis::Rebuild;
use crate::telemetry;

/// Snapshots taken before giving up when every one is overtaken by a cancel or booking.
const REBUILD_ATTEMPTS: usize = 3;
/// The cross-instance rebuild lock's life, and how long another instance waits for the cache.
const LOCK_TTL: Duration = Duration::from_secs(10);
/// How often a waiting instance looks for the cache.
const WAIT_STEP: Duration = Duration::from_millis(20);

/// One rebuild at a time per event inside this instance: the requests that find the cache
/// missing while a rebuild runs wait for it and share its outcome (single flight).
#[derive(Default)]
pub(super) struct RebuildGates(Mutex<HashMap<EventId, Arc<Gate>>>);

#[derive(Default)]
struct Gate {
    turn: tokio::sync::Mutex<()>,
    /// Rebuilds finished through this gate.
    done: AtomicU64,
    /// Whether the last one succeeded.
    ok: AtomicBool,
}

impl RebuildGates {
    fn gate(&self, event: EventId) -> Arc<Gate> {
        let mut gates = self.0.lock().unwrap_or_else(|e| e.into_inner());
        gates.entry(event).or_default().clone()
    }

    /// Drops the event's gate once nobody else holds it.
    fn forget(&self, event: EventId, gate: Arc<Gate>) {
        let mut gates = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Ours and the map's: nobody waits.
        if Arc::strong_count(&gate) <= 2 {
            gates.remove(&event);
        }
    }
}

impl Seatlock {
    /// Rebuilds the event's cache once for everyone who found it missing: in this instance the
    /// callers queue on the event's gate and those that queued behind a finished rebuild take its
    /// outcome; across instances the one holding `{e}:rebuilding` reads Postgres and the others
    /// wait for the cache.
    pub(super) async fn rebuild_inventory(&self, event: EventId) -> Result<()> {
        let gate = self.rebuilds.gate(event);
        let seen = gate.done.load(Ordering::Acquire);
        let result = {
            let _turn = gate.turn.lock().await;
            if gate.done.load(Ordering::Acquire) != seen {
                if gate.ok.load(Ordering::Acquire) {
                    Ok(())
                } else {
                    Err(Error::Unavailable {
                        what: "the inventory cache (its rebuild failed)",
                    })
                }
            } else {
                let result = self.rebuild_across_instances(event).await;
                gate.ok.store(result.is_ok(), Ordering::Release);
                gate.done.fetch_add(1, Ordering::Release);
                result
            }
        };
        self.rebuilds.forget(event, gate);
        result
    }

    async fn rebuild_across_instances(&self, event: EventId) -> Result<()> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let deadline = Instant::now() + LOCK_TTL;
        loop {
            if self.redis.lock_rebuild(event, &token, LOCK_TTL).await? {
                // A request that found the cache missing may get here after the rebuild it
                // needed was done (and its gate gone): no second read of Postgres then.
                let result = match self.redis.inventory_cached(event).await {
                    Ok(true) => Ok(()),
                    _ => self.rebuild_from_postgres(event).await,
                };
                if let Err(e) = self.redis.unlock_rebuild(event, &token).await {
                    tracing::warn!(event.id = %event, error = %e, "could not give the rebuild lock back (it expires)");
                }
                return result;
            }
            // Another instance is reading Postgres for this event: wait for its cache.
            tokio::time::sleep(WAIT_STEP).await;
            if self.redis.inventory_cached(event).await? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Unavailable {
                    what: "the inventory cache (another instance is rebuilding it)",
                });
            }
        }
    }

    /// Loads the event's seats and booked seats from Postgres into Redis. The cache generation
    /// is read before the snapshot, so a cancel or booking that lands in between makes the write
    /// refuse (`Stale`) and the snapshot is taken again.
    async fn rebuild_from_postgres(&self, event: EventId) -> Result<()> {
        for _ in 0..REBUILD_ATTEMPTS {
            let started = Instant::now();
            let generation = self.redis.inventory_generation(event).await?;
            let inventory = self
                .pg
                .fetch_inventory(event)
                .await?
                .ok_or(Error::EventNotFound)?;
            let written = self
                .redis
                .rebuild_inventory(event, &generation, &inventory)
                .await?;
            match written {
                Rebuild::Written => {
                    telemetry::record_rebuild(started.elapsed());
                    tracing::info!(
                        event.id = %event,
                        seats = inventory.seats.count(),
                        booked = inventory.booked.len(),
                        "inventory cache rebuilt"
                    );
                    return Ok(());
                }
                Rebuild::AlreadyCached => return Ok(()),
                Rebuild::Stale => continue,
            }
        }
        Err(Error::Unavailable {
            what: "the inventory cache (it keeps changing during rebuilds)",
        })
    }
}
