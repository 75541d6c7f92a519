//! Seat changes through Redis pub/sub, for the live seat map. The scripts that change seats or
//! tier units (`hold.lua`, `settle.lua`, `mark_booked.lua`) publish what they changed on the
//! event's channel `P:{e:ID}:changes`, but only while the event's `P:{e:ID}:watched` key exists:
//! an instance streaming the event keeps that key alive ([`RedisStore::watch_event`]), so events
//! nobody watches cost one `GET` per change and no message. The key's value is the command the
//! watchers listen with: `PUBLISH` on a standalone Redis, `SPUBLISH` on a cluster (sharded
//! pub/sub: a message stays on the shard of its event instead of crossing the whole cluster).
//!
//! [`ChangeFeed`] is one pub/sub connection per instance (on a cluster: one per node, see
//! [`super::feed_cluster`]), subscribed to the channel of every event the instance streams; it
//! reconnects on its own (and says so, since messages may have been lost meanwhile).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::RedisStore;
pub use super::feed::FeedMessage;
use super::feed::{Command, PendingAcks, acknowledge, wait_to_reconnect};
use super::keys::{Keys, event_of_channel};
use crate::domain::events::EventId;
use crate::domain::live::Change;
use crate::error::Result;
use crate::telemetry::RedisOp;

/// How long a watched key lives unless refreshed; instances refresh it at a third of this.
pub const WATCH_TTL: Duration = Duration::from_secs(30);

/// The instance's pub/sub connection: subscribe and unsubscribe event channels; messages arrive
/// on the receiver given at [`ChangeFeed::start`]. Stops when the handle is dropped.
#[derive(Clone)]
pub struct ChangeFeed {
    commands: mpsc::UnboundedSender<Command>,
}

impl ChangeFeed {
    /// Starts the connection task.
    pub fn start(store: &RedisStore) -> (ChangeFeed, mpsc::UnboundedReceiver<FeedMessage>) {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (out, messages) = mpsc::unbounded_channel();
        let settings = store.settings.clone();
        let prefix = store.prefix.clone();
        if store.is_cluster() {
            tokio::spawn(super::feed_cluster::run(settings, prefix, command_rx, out));
        } else {
            let timeout = Duration::from_millis(settings.connect_timeout_ms);
            let url: Arc<str> = settings.url.as_str().into();
            tokio::spawn(run_feed(url, prefix, timeout, command_rx, out));
        }
        (ChangeFeed { commands }, messages)
    }

    /// Subscribes the event's channel; the receiver completes once the subscription is live
    /// (messages published from then on arrive), or fails if the feed has stopped.
    pub fn subscribe(&self, event: EventId) -> oneshot::Receiver<()> {
        let (ack, live) = oneshot::channel();
        let _ = self.commands.send(Command::Subscribe(event, ack));
        live
    }

    pub fn unsubscribe(&self, event: EventId) {
        let _ = self.commands.send(Command::Unsubscribe(event));
    }
}

/// The connection loop: connect, (re)subscribe every wanted channel, pass messages on; on any
/// error wait a little and start over. Ends when every [`ChangeFeed`] handle is gone or the
/// receiver of its messages is.
async fn run_feed(
    url: Arc<str>,
    prefix: Arc<str>,
    timeout: Duration,
    mut commands: mpsc::UnboundedReceiver<Command>,
    out: mpsc::UnboundedSender<FeedMessage>,
) {
    let mut wanted: HashSet<EventId> = HashSet::new();
    let mut pending = PendingAcks::new();
    let mut first = true;
    let channel = |event: EventId| Keys::new(&prefix, event).changes();
    loop {
        let connected = async {
            let client = redis::Client::open(&*url)?;
            let pubsub = tokio::time::timeout(timeout, client.get_async_pubsub())
                .await
                .map_err(|_| redis::RedisError::from(std::io::Error::other("connect timeout")))??;
            Ok::<_, redis::RedisError>(pubsub.split())
        };
        let (mut sink, mut stream) = match connected.await {
            Ok(parts) => parts,
            Err(e) => {
                tracing::warn!(error = %e, "seat-change feed: cannot connect to redis; retrying");
                if !wait_to_reconnect(&mut commands, &mut wanted, &mut pending).await {
                    return;
                }
                continue;
            }
        };
        let mut ok = true;
        for event in &wanted {
            ok &= sink.subscribe(channel(*event)).await.is_ok();
        }
        if ok && !first && out.send(FeedMessage::Reconnected).is_err() {
            return;
        }
        first = false;
        if ok {
            acknowledge(&mut pending);
        }
        while ok {
            tokio::select! {
                command = commands.recv() => match command {
                    None => return,
                    Some(Command::Subscribe(event, ack)) => {
                        ok = !wanted.insert(event) || sink.subscribe(channel(event)).await.is_ok();
                        // Not live yet when it failed: told after the reconnect.
                        pending.push(ack);
                        if ok {
                            acknowledge(&mut pending);
                        }
                    }
                    Some(Command::Unsubscribe(event)) => {
                        ok = !wanted.remove(&event) || sink.unsubscribe(channel(event)).await.is_ok();
                    }
                },
                message = stream.next() => match message {
                    None => ok = false,
                    Some(msg) => {
                        let event = event_of_channel(&prefix, msg.get_channel_name());
                        let change = Change::parse(msg.get_payload_bytes());
                        if let (Some(event), Some(change)) = (event, change)
                            && out.send(FeedMessage::Change(event, change)).is_err()
                        {
                            return;
                        }
                    }
                },
            }
        }
        tracing::warn!("seat-change feed: lost its redis connection; reconnecting");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl RedisStore {
    /// How changes are published: sharded pub/sub on a cluster.
    fn publish_command(&self) -> &'static str {
        if self.is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    /// Marks the event as streamed by some instance for [`WATCH_TTL`], so the scripts publish
    /// its changes.
    pub async fn watch_event(&self, event: EventId) -> Result<()> {
        let key = self.keys(event).watched();
        let command = self.publish_command();
        self.run(RedisOp::Watch, async |conn| {
            redis::cmd("SET")
                .arg(&key)
                .arg(command)
                .arg("PX")
                .arg(WATCH_TTL.as_millis() as u64)
                .query_async::<()>(conn)
                .await
        })
        .await
    }

    /// Publishes a change made outside the scripts (a hold, confirm or release in Postgres).
    pub async fn publish_change(&self, event: EventId, change: &Change) -> Result<()> {
        let channel = self.keys(event).changes();
        let payload = change.to_payload();
        let command = self.publish_command();
        self.run(RedisOp::Publish, async |conn| {
            redis::cmd(command)
                .arg(&channel)
                .arg(&payload)
                .query_async::<i64>(conn)
                .await
        })
        .await?;
        Ok(())
    }
}
