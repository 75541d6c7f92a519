//! The Redis inventory cache of an event (its seat codes and booked seats), rebuilt from
//! Postgres when a hold finds it missing (first use, Redis restart, FLUSHALL, eviction).

use std::time::Instant;

use super::Seatlock;
use crate::domain::events::EventId;
use crate::error::{Error, Result};
use crate::store::redis::Rebuild;
use crate::telemetry;

/// Snapshots taken before giving up when every one is overtaken by a cancel or booking.
const REBUILD_ATTEMPTS: usize = 3;

impl Seatlock {
    /// Loads the event's seats and booked seats from Postgres into Redis. The cache generation
    /// is read before the snapshot, so a cancel or booking that lands in between makes the write
    /// refuse (`Stale`) and the snapshot is taken again.
    pub(super) async fn rebuild_inventory(&self, event: EventId) -> Result<()> {
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
                        seats = inventory.seats.len(),
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
