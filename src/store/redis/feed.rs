//! What the seat-change feeds (standalone: [`super::changes`], cluster: [`super::feed_cluster`])
//! share: their commands and what they hand on.

use std::collections::HashSet;

use tokio::sync::{mpsc, oneshot};

use crate::domain::events::EventId;
use crate::domain::live::Change;

/// What the feed hands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedMessage {
    /// A change of one event.
    Change(EventId, Change),
    /// The connection was lost and is back: messages may have been lost meanwhile.
    Reconnected,
}

/// What a feed's handle asks of its connection task.
pub(super) enum Command {
    /// Subscribe the event's channel; the sender is told once the subscription is live.
    Subscribe(EventId, oneshot::Sender<()>),
    Unsubscribe(EventId),
}

/// Subscriptions asked for and not yet live (the feed is not connected): told once it has
/// connected and subscribed every wanted channel.
pub(super) type PendingAcks = Vec<oneshot::Sender<()>>;

/// Tells every waiting subscriber that its subscription is live.
pub(super) fn acknowledge(pending: &mut PendingAcks) {
    for ack in pending.drain(..) {
        let _ = ack.send(());
    }
}

/// Applies the commands queued while disconnected; false when every handle is gone.
fn drain_commands(
    commands: &mut mpsc::UnboundedReceiver<Command>,
    wanted: &mut HashSet<EventId>,
    pending: &mut PendingAcks,
) -> bool {
    loop {
        match commands.try_recv() {
            Ok(Command::Subscribe(event, ack)) => {
                wanted.insert(event);
                pending.push(ack);
            }
            Ok(Command::Unsubscribe(event)) => {
                wanted.remove(&event);
            }
            Err(mpsc::error::TryRecvError::Empty) => return true,
            Err(mpsc::error::TryRecvError::Disconnected) => return false,
        }
    }
}

/// After a failed connect: applies the queued commands, then waits a little before the next
/// attempt; false when every handle is gone.
pub(super) async fn wait_to_reconnect(
    commands: &mut mpsc::UnboundedReceiver<Command>,
    wanted: &mut HashSet<EventId>,
    pending: &mut PendingAcks,
) -> bool {
    if !drain_commands(commands, wanted, pending) {
        return false;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    true
}
