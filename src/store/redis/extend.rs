//! Extending a Redis hold (`lua/extend.lua`): all its seats and tier units run again together.

use std::time::Duration;

use super::RedisStore;
use super::scripts::{self, EXTEND, int_at, strings_at, tagged};
use crate::domain::events::EventId;
use crate::domain::extend::{ExtendLimits, ExtendOutcome};
use crate::domain::holds::{HoldGroupId, HoldRecord};
use crate::domain::tiers::units;
use crate::error::{HoldCap, Result};
use crate::telemetry::RedisOp;

impl RedisStore {
    /// Extends the hold `record` (as read a moment ago) of `user_id` by `ttl` within `limits`.
    pub async fn extend_hold(
        &self,
        event: EventId,
        hold: HoldGroupId,
        user_id: &str,
        record: &HoldRecord,
        ttl: Duration,
        limits: ExtendLimits,
    ) -> Result<ExtendOutcome> {
        let k = self.keys(event);
        let mut inv = EXTEND.prepare_invoke();
        inv.key(k.hold(hold)).key(k.held()).key(k.user(user_id));
        for code in &record.seats {
            inv.key(k.seat(code));
        }
        for line in &record.tiers {
            inv.key(k.tier_holds(&line.code));
        }
        inv.key(k.watched()).key(k.hist());
        inv.arg(hold.to_string())
            .arg(user_id)
            .arg(ttl.as_millis() as u64)
            .arg(limits.max_lifetime_seconds * 1000)
            .arg(limits.max_renewals)
            .arg(record.seats.len())
            .arg(units(record.seats.len(), &record.tiers));
        for code in &record.seats {
            inv.arg(code);
        }
        for line in &record.tiers {
            inv.arg(&line.code).arg(format!("{}:{hold}", line.quantity));
        }
        inv.arg(self.record_arg());
        let (tag, rest) = tagged(self.invoke(RedisOp::Extend, &inv).await?)?;
        if tag == "OK" {
            self.touch(event);
        }
        Ok(match tag.as_str() {
            "OK" => ExtendOutcome::Extended {
                expires_at_ms: int_at(&rest, 0)?,
                renewals_left: int_at(&rest, 1)?.clamp(0, i64::from(u32::MAX)) as u32,
            },
            "GONE" => ExtendOutcome::Gone,
            "NOT_OWNER" => ExtendOutcome::NotOwner,
            "PINNED" => ExtendOutcome::Pinned,
            "LOST" => ExtendOutcome::Lost(strings_at(&rest, 0)?),
            "LIMIT" => match rest.first().map(scripts::string).transpose()?.as_deref() {
                Some("renewals") => ExtendOutcome::Limit(HoldCap::Renewals),
                _ => ExtendOutcome::Limit(HoldCap::Lifetime),
            },
            other => return Err(scripts::unexpected("extend", other)),
        })
    }
}
