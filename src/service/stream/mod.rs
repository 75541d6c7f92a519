//! The live seat map's fan-out. One [`Hub`] per streamed event per instance keeps the event's
//! seat map in memory and is the only one that reads the stores for it: on each change message
//! (Redis pub/sub, one subscription per event per instance, see `store::redis::changes`), at the
//! end of each hold it knows of (Redis expiries make no request), and after a lost feed. Every
//! connection of the event shares the hub's updates through a bounded broadcast buffer; a
//! connection that falls behind is sent a fresh snapshot instead of the backlog.
//!
//! - [`hub`]: one event's state, its update task and its snapshot.
//! - [`load`]: reading an event's seats and tiers for a hub.
//! - [`state`]: what a hub keeps.

mod hub;
mod load;
mod state;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{broadcast, mpsc, watch};

pub use hub::{LiveSeat, LiveTier, Snapshot};
pub use state::Audience;

use self::hub::Hub;
use super::Seatlock;
use crate::domain::events::EventId;
use crate::domain::live::{Change, Delta};
use crate::domain::tiers::TierLine;
use crate::error::{Error, Result};
use crate::store::redis::{ChangeFeed, FeedMessage};
use crate::telemetry;

/// Every hub of this instance, the feed they share, and the connection count.
pub struct Streams {
    hubs: Mutex<HashMap<EventId, Arc<Hub>>>,
    feed: Mutex<Option<ChangeFeed>>,
    connections: AtomicUsize,
    /// Turns true at shutdown: every stream ends.
    closing: watch::Sender<bool>,
}

/// One open stream: the event's snapshot, then its updates. Dropping it closes the stream.
pub struct Subscription {
    pub updates: broadcast::Receiver<Arc<Delta>>,
    pub closing: watch::Receiver<bool>,
    hub: Arc<Hub>,
    streams: Arc<Streams>,
}

impl Subscription {
    /// The event's state now, rendered by `render` (JSON, say). Connections share one rendering
    /// per state version and `stamp` (the caller's clock granularity), so a thousand streams
    /// opening at once cost one rendering and one buffer, not a thousand.
    pub fn snapshot(
        &self,
        stamp: i64,
        audience: Audience,
        render: impl FnOnce(&Snapshot) -> Vec<u8>,
    ) -> Arc<[u8]> {
        self.hub.rendered_snapshot(stamp, audience, render)
    }

    /// As [`snapshot`](Self::snapshot), after falling behind: updates start again from now.
    pub fn resnapshot(
        &mut self,
        stamp: i64,
        audience: Audience,
        render: impl FnOnce(&Snapshot) -> Vec<u8>,
    ) -> Arc<[u8]> {
        self.updates = self.hub.receiver();
        telemetry::record_stream_snapshot_resent();
        self.hub.rendered_snapshot(stamp, audience, render)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.leave();
        let open = self.streams.connections.fetch_sub(1, Ordering::AcqRel) - 1;
        telemetry::record_stream_connections(open);
    }
}

impl Streams {
    pub fn new() -> Arc<Self> {
        Arc::new(Streams {
            hubs: Mutex::default(),
            feed: Mutex::default(),
            connections: AtomicUsize::new(0),
            closing: watch::channel(false).0,
        })
    }

    /// Ends every stream (at shutdown); new ones are refused.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Tells this instance's hub of `event` (if any) about a change made here outside the
    /// scripts, without waiting for the feed.
    pub fn local_change(&self, event: EventId, change: Change) {
        if let Some(hub) = self.hub_of(event) {
            hub.notify(change);
        }
    }

    fn hub_of(&self, event: EventId) -> Option<Arc<Hub>> {
        self.hubs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&event)
            .cloned()
    }

    /// Forgets a hub that stopped (no subscribers for a while).
    fn remove(&self, event: EventId, hub: &Arc<Hub>) {
        let mut hubs = self.hubs.lock().unwrap_or_else(|e| e.into_inner());
        if hubs.get(&event).is_some_and(|h| Arc::ptr_eq(h, hub)) {
            hubs.remove(&event);
        }
    }

    /// The feed, started on first use (an instance nobody streams from opens no pub/sub
    /// connection), with the task that routes its messages to the hubs.
    fn feed(self: &Arc<Self>, seatlock: &Seatlock) -> ChangeFeed {
        let mut feed = self.feed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(feed) = feed.as_ref() {
            return feed.clone();
        }
        let (handle, messages) = ChangeFeed::start(&seatlock.redis);
        tokio::spawn(route_messages(Arc::downgrade(self), messages));
        *feed = Some(handle.clone());
        handle
    }
}

/// Hands each feed message to its hub; a reconnect makes every hub reload (messages may have
/// been lost).
async fn route_messages(
    streams: Weak<Streams>,
    mut messages: mpsc::UnboundedReceiver<FeedMessage>,
) {
    while let Some(message) = messages.recv().await {
        let Some(streams) = streams.upgrade() else {
            return;
        };
        match message {
            FeedMessage::Change(event, change) => streams.local_change(event, change),
            FeedMessage::Reconnected => {
                let hubs: Vec<Arc<Hub>> = streams
                    .hubs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .cloned()
                    .collect();
                for hub in hubs {
                    hub.reload();
                }
            }
        }
    }
}

impl Seatlock {
    /// Ends every open stream and refuses new ones (at shutdown, so the drain is not held up).
    pub fn close_streams(&self) {
        self.streams.close();
    }

    /// Opens a stream of an event's seat map: 404 for an unknown event, 503 beyond
    /// `stream.max_connections` or while shutting down.
    pub async fn subscribe(&self, event: EventId) -> Result<Subscription> {
        let streams = self.streams.clone();
        let max = self.settings.stream.max_connections;
        let closing = streams.closing.subscribe();
        if *closing.borrow() {
            return Err(Error::Unavailable {
                what: "the stream (shutting down)",
            });
        }
        let open = streams.connections.fetch_add(1, Ordering::AcqRel) + 1;
        if open > max {
            streams.connections.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Unavailable {
                what: "the stream (stream.max_connections reached)",
            });
        }
        telemetry::record_stream_connections(open);
        let hub = match self.hub_for(event).await {
            Ok(hub) => hub,
            Err(e) => {
                let open = streams.connections.fetch_sub(1, Ordering::AcqRel) - 1;
                telemetry::record_stream_connections(open);
                return Err(e);
            }
        };
        let updates = hub.receiver();
        Ok(Subscription {
            updates,
            closing,
            hub,
            streams,
        })
    }

    /// The event's hub, started (and loaded) if this instance has none; joined as a subscriber.
    async fn hub_for(&self, event: EventId) -> Result<Arc<Hub>> {
        let feed = self.streams.feed(self);
        let hub = {
            let mut hubs = self.streams.hubs.lock().unwrap_or_else(|e| e.into_inner());
            match hubs.get(&event) {
                // A hub that is stopping refuses to be joined: a new one takes its place.
                Some(hub) if hub.join() => hub.clone(),
                _ => {
                    let hub = Hub::start(self.clone(), event, feed);
                    hub.join();
                    hubs.insert(event, hub.clone());
                    hub
                }
            }
        };
        if let Err(e) = hub.loaded().await {
            hub.leave();
            self.streams.remove(event, &hub);
            return Err(e);
        }
        Ok(hub)
    }

    /// A change made in Postgres (a hold, confirm or release there, or a cancel): this
    /// instance's hub hears of it at once, the other instances through Redis if it is up.
    pub(super) async fn announce(&self, event: EventId, seats: &[String], tiers: &[TierLine]) {
        let change = Change {
            seats: seats.to_vec(),
            tiers: tiers.iter().map(|t| t.code.clone()).collect(),
            at_ms: chrono::Utc::now().timestamp_millis(),
            expires_at_ms: None,
        };
        let publish = self.redis.publish_change(event, &change);
        let _ = self.read_redis(publish).await;
        self.streams.local_change(event, change);
    }
}
