//! Creating an event: its seats go to Postgres, and its inventory cache is warmed in Redis.

use tracing::warn;

use super::Seatlock;
use crate::domain::events::{EventId, NewEvent};
use crate::error::Result;

impl Seatlock {
    /// Creates an event and warms its inventory cache in Redis (best effort: a cold cache is
    /// rebuilt on the first hold).
    pub async fn create_event(&self, event: NewEvent) -> Result<EventId> {
        let id = self.pg.insert_event(event).await?;
        if let Some(Err(e)) = self.with_redis(self.rebuild_inventory(id)).await {
            warn!(error = %e, event.id = %id, "could not warm the inventory cache; the first hold will");
        }
        Ok(id)
    }
}
