//! An event's sales policy: its window and Queue-it id (`PATCH /events/{id}`) and its channels
//! (`PUT /events/{id}/channels`). Postgres is written first (the truth, with a version), then
//! the event's Redis cache, where the hold script reads it; a cache that cannot be written is
//! dropped, so the next hold rebuilds it from Postgres.

use std::collections::{HashMap, HashSet};

use tracing::warn;

use super::Seatlock;
use crate::domain::channels::ChannelSpec;
use crate::domain::events::EventId;
use crate::domain::policy::{EventPolicyPatch, PolicySnapshot};
use crate::error::Result;

impl Seatlock {
    /// Changes the event's window and Queue-it id; returns the policy now.
    pub async fn patch_event_policy(
        &self,
        event: EventId,
        patch: EventPolicyPatch,
    ) -> Result<PolicySnapshot> {
        let snapshot = self.pg.patch_policy(event, patch).await?;
        self.publish_policy(event, &snapshot, false).await;
        Ok(snapshot)
    }

    /// Replaces the event's channels; returns the policy now. The seats whose channel changed
    /// are announced to the live map's streams (sellers see each seat's channel).
    pub async fn put_event_channels(
        &self,
        event: EventId,
        channels: Vec<ChannelSpec>,
    ) -> Result<PolicySnapshot> {
        let before = self.pg.fetch_policy(event).await?;
        let snapshot = self.pg.put_channels(event, channels).await?;
        self.publish_policy(event, &snapshot, true).await;
        let was: HashMap<&str, &str> = before
            .iter()
            .flat_map(|b| b.seats.iter())
            .map(|(seat, channel)| (seat.as_str(), channel.as_str()))
            .collect();
        let now: HashMap<&str, &str> = snapshot
            .seats
            .iter()
            .map(|(seat, channel)| (seat.as_str(), channel.as_str()))
            .collect();
        let moved: Vec<String> = was
            .keys()
            .chain(now.keys())
            .filter(|seat| was.get(*seat) != now.get(*seat))
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|seat| seat.to_string())
            .collect();
        if !moved.is_empty() {
            self.announce(event, &moved, &[]).await;
        }
        Ok(snapshot)
    }

    /// The event's policy now (404 for an unknown event).
    pub async fn event_policy(&self, event: EventId) -> Result<PolicySnapshot> {
        self.pg
            .fetch_policy(event)
            .await?
            .ok_or(crate::error::Error::EventNotFound)
    }

    /// Writes the policy into the event's cache; when that fails, drops the cache (the next
    /// hold rebuilds it from Postgres, policy included).
    async fn publish_policy(&self, event: EventId, snapshot: &PolicySnapshot, channels: bool) {
        let written = self
            .with_redis(self.redis.write_policy(event, snapshot, channels))
            .await;
        if let Some(Err(e)) = written {
            warn!(error = %e, event.id = %event, "could not write the sales policy into redis; dropping the cache");
            if let Some(Err(e)) = self.with_redis(self.redis.drop_inventory(event)).await {
                warn!(error = %e, event.id = %event, "could not drop the cache either; it is dropped after the outage");
            }
        }
    }
}
