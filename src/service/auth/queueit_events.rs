//! Whether a Queue-it token's `e` names the event a hold is for, asked before the request's body
//! and event are looked at (the order of refusals: 403 `ADMISSION_REQUIRED` before a 400 of the
//! body or a 404 of the event). The hold scripts check it again against the policy they read,
//! the authority; this check only answers early. An event's `queueitEventId` is remembered for
//! a few seconds when a token matched it; a token that does not match is checked against
//! Postgres before it is refused, so a changed id is never refused on a stale memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::super::Seatlock;
use crate::domain::events::EventId;
use crate::domain::policy::queueit_names as names;

/// How long a matched event's Queue-it id is trusted from memory.
const FRESH: Duration = Duration::from_secs(5);
/// Most events remembered; past it the memory starts over.
const MAX_EVENTS: usize = 10_000;

/// Each event's Queue-it id (None: the event has none, or does not exist) and when it was read.
#[derive(Default)]
pub(super) struct QueueitEvents(Mutex<HashMap<EventId, (Option<String>, Instant)>>);

impl Seatlock {
    /// Whether a Queue-it token's `e` names `event`. An event that does not exist admits only a
    /// token naming its id (its 404 comes after); when Postgres cannot be asked, the token is
    /// let through to the hold script, which decides.
    pub async fn queueit_names_event(&self, event: EventId, e: &str) -> bool {
        let memory = &self.auth.queueit_events.0;
        let remembered = {
            let known = memory.lock().unwrap_or_else(|p| p.into_inner());
            known.get(&event).cloned()
        };
        if let Some((alias, at)) = remembered
            && at.elapsed() < FRESH
            && names(e, alias.as_deref(), event.0)
        {
            return true;
        }
        let alias = match self.pg.fetch_event(event).await {
            Ok(found) => found.and_then(|ev| ev.policy.queueit_event_id),
            Err(_) => return true,
        };
        let named = names(e, alias.as_deref(), event.0);
        if named {
            let mut known = memory.lock().unwrap_or_else(|p| p.into_inner());
            if known.len() >= MAX_EVENTS {
                known.clear();
            }
            known.insert(event, (alias, Instant::now()));
        }
        named
    }
}
