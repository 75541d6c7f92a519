//! The seat-change feed on a Redis Cluster: sharded pub/sub (`SSUBSCRIBE`), each event's channel
//! on the shard that owns the event's hash slot. The redis crate's cluster connection keeps one
//! RESP3 connection per node, delivers the messages as pushes, and subscribes again after a
//! node's connection drops or the slot map changes (a failover); a dropped node connection is
//! passed on as [`FeedMessage::Reconnected`] (at once, and again when the crate has had time to
//! subscribe again), since messages may have been lost meanwhile.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use redis::{ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::mpsc;
use tokio::time::Sleep;

use super::feed::{Command, FeedMessage, PendingAcks, acknowledge, wait_to_reconnect};
use super::keys::{Keys, event_of_channel};
use super::pool::cluster_client;
use crate::config::RedisSettings;
use crate::domain::events::EventId;
use crate::domain::live::Change;

/// How long after a node's connection dropped the stream hubs reload once more: by then the
/// cluster connection has reconnected (or the replica took over) and subscribed again.
const RESUBSCRIBED_AFTER: Duration = Duration::from_secs(3);

/// The connection loop: connect, subscribe every wanted channel, pass messages on; when the
/// connection task ends, wait a little and start over. Ends when every handle is gone.
pub(super) async fn run(
    settings: Arc<RedisSettings>,
    prefix: Arc<str>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    out: mpsc::UnboundedSender<FeedMessage>,
) {
    let mut wanted: HashSet<EventId> = HashSet::new();
    let mut pending = PendingAcks::new();
    let mut first = true;
    let channel = |event: EventId| Keys::new(&prefix, event).changes();
    let timeout = Duration::from_millis(settings.connect_timeout_ms);
    loop {
        let (push_tx, mut pushes) = mpsc::unbounded_channel::<PushInfo>();
        let connected = async {
            let client = cluster_client(&settings)?
                .use_protocol(ProtocolVersion::RESP3)
                .push_sender(push_tx)
                .build()?;
            tokio::time::timeout(timeout, client.get_async_connection())
                .await
                .map_err(|_| redis::RedisError::from(std::io::Error::other("connect timeout")))?
        };
        let mut conn = match connected.await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "seat-change feed: cannot connect to the redis cluster; retrying");
                if !wait_to_reconnect(&mut commands, &mut wanted, &mut pending).await {
                    return;
                }
                continue;
            }
        };
        let mut ok = true;
        for event in &wanted {
            ok &= conn.ssubscribe(channel(*event)).await.is_ok();
        }
        if ok && !first && out.send(FeedMessage::Reconnected).is_err() {
            return;
        }
        first = false;
        if ok {
            acknowledge(&mut pending);
        }
        let mut reload_later: Option<Pin<Box<Sleep>>> = None;
        while ok {
            tokio::select! {
                command = commands.recv() => match command {
                    None => return,
                    Some(Command::Subscribe(event, ack)) => {
                        ok = !wanted.insert(event) || conn.ssubscribe(channel(event)).await.is_ok();
                        // Not live yet when it failed: told after the reconnect.
                        pending.push(ack);
                        if ok {
                            acknowledge(&mut pending);
                        }
                    }
                    Some(Command::Unsubscribe(event)) => {
                        ok = !wanted.remove(&event) || conn.sunsubscribe(channel(event)).await.is_ok();
                    }
                },
                push = pushes.recv() => match push {
                    None => ok = false,
                    Some(push) if push.kind == PushKind::Disconnection => {
                        tracing::warn!("seat-change feed: a redis cluster node's connection dropped");
                        if out.send(FeedMessage::Reconnected).is_err() {
                            return;
                        }
                        reload_later = Some(Box::pin(tokio::time::sleep(RESUBSCRIBED_AFTER)));
                    }
                    Some(push) => {
                        if let Some(message) = change_of(&prefix, push)
                            && out.send(message).is_err()
                        {
                            return;
                        }
                    }
                },
                () = async {
                    match reload_later.as_mut() {
                        Some(sleep) => sleep.await,
                        None => std::future::pending().await,
                    }
                } => {
                    reload_later = None;
                    if out.send(FeedMessage::Reconnected).is_err() {
                        return;
                    }
                }
            }
        }
        tracing::warn!("seat-change feed: lost its redis cluster connection; reconnecting");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The change in a sharded message of one of our channels.
fn change_of(prefix: &str, push: PushInfo) -> Option<FeedMessage> {
    if push.kind != PushKind::SMessage {
        return None;
    }
    let bytes = |v: &Value| match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    };
    let channel = String::from_utf8(bytes(push.data.first()?)?).ok()?;
    let payload = bytes(push.data.get(1)?)?;
    let event = event_of_channel(prefix, &channel)?;
    Some(FeedMessage::Change(event, Change::parse(&payload)?))
}
