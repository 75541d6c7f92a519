//! The plain path of a hold (`lua/hold_plain.lua`): a hold of seats only, by a caller without an
//! admission, on an event without a sales policy or a seat layout, in fewer Redis calls than
//! `hold.lua` (issue 24: a plain event's hold paid for the policy, tier, channel and row
//! bookkeeping it does not use). The script answers `FULL` for an event that has a policy or a
//! layout, before counting or writing anything; such events are remembered, so their later
//! holds go to `hold.lua` at once instead of paying a second round trip.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use redis::Value;

use super::RedisStore;
use super::hold_head::hold_args;
use super::holds::HoldRequest;
use super::keys::Keys;
use super::scripts::{HOLD_PLAIN, evalsha};
use crate::domain::events::EventId;
use crate::error::Result;
use crate::telemetry::RedisOp;

/// Events remembered as needing `hold.lua`; forgotten all at once past this many (a forgotten
/// event costs one `FULL` answer).
const MAX_FULL_EVENTS: usize = 10_000;

/// The events whose holds need `hold.lua` (a policy or a seat layout), as last found.
#[derive(Clone, Default)]
pub(super) struct FullEvents(Arc<Mutex<HashSet<EventId>>>);

impl FullEvents {
    fn contains(&self, event: EventId) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&event)
    }

    fn insert(&self, event: EventId) {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if set.len() >= MAX_FULL_EVENTS {
            set.clear();
        }
        set.insert(event);
    }
}

impl RedisStore {
    /// Runs `hold_plain.lua` for a hold it can take; None when the hold needs `hold.lua` (tier
    /// units, an admission, given channel parts, or an event with a policy or a seat layout).
    pub(super) async fn hold_plain(
        &self,
        request: &HoldRequest<'_>,
        k: &Keys,
    ) -> Result<Option<Value>> {
        let r = request;
        if r.codes.is_empty()
            || !r.tiers.is_empty()
            || !r.pools.is_empty()
            || r.caller.admission.is_some()
            || self.full_events.contains(r.event)
        {
            return Ok(None);
        }
        // One key of the event (the script names the others from it), the rate key when counted.
        let keys = 1 + usize::from(r.rate.is_some());
        let mut cmd = evalsha(&HOLD_PLAIN, keys, 8 + r.codes.len());
        cmd.arg(k.seats());
        if let Some((caller, _)) = r.rate {
            cmd.arg(self.rate_key(caller));
        }
        hold_args(&mut cmd, r.hold, r.user_id, r.ttl, r.caps, r.rate);
        cmd.arg(if r.record && self.record { "1" } else { "0" });
        for code in r.codes {
            cmd.arg(code);
        }
        let reply = self.invoke_cmd(RedisOp::Hold, &HOLD_PLAIN, &cmd).await?;
        if let Value::Array(items) = &reply
            && let [Value::BulkString(tag)] = items.as_slice()
            && tag.as_slice() == b"FULL"
        {
            self.full_events.insert(r.event);
            return Ok(None);
        }
        Ok(Some(reply))
    }
}
