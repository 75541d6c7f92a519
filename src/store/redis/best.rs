//! Best-available holds in Redis: the choice and the hold in one script (`lua/best.lua`).

use std::time::Duration;

use super::RedisStore;
use super::hold_head::{HOLD_ARGS, HOLD_KEYS, hold_args};
use super::holds::HoldReply;
use super::policy::{
    POLICY_TAIL_ARGS, POLICY_TAIL_KEYS, policy_attempt, policy_tail_args, policy_tail_keys,
};
use super::scripts::{self, BEST, evalsha, int_at, strings_at, tagged};
use crate::domain::best::BestFilter;
use crate::domain::events::EventId;
use crate::domain::holds::{Caps, HoldAttempt, HoldGroupId};
use crate::domain::limits::{Rate, RateRequest, RateVerdict};
use crate::domain::policy::HoldCaller;
use crate::error::Result;
use crate::telemetry::RedisOp;

/// One run of `best.lua`.
#[derive(Debug, Clone, Copy)]
pub struct BestRequest<'a> {
    pub event: EventId,
    pub hold: HoldGroupId,
    pub user_id: &'a str,
    pub ttl: Duration,
    pub count: u32,
    pub filter: &'a BestFilter,
    pub caps: Caps,
    /// The caller's rate limit to count first, with its quota (None: not counted here).
    pub rate: Option<(&'a RateRequest, Rate)>,
    /// Who holds, as the sales policy sees it.
    pub caller: &'a HoldCaller,
}

impl RedisStore {
    /// Chooses and holds `count` seats together (see `lua/best.lua`); a hold taken comes back
    /// with its seats in the second element.
    pub async fn acquire_best(
        &self,
        request: &BestRequest<'_>,
    ) -> Result<(HoldReply, Vec<String>)> {
        let BestRequest {
            event,
            hold,
            user_id,
            ttl,
            count,
            filter,
            caps,
            rate,
            caller,
        } = *request;
        let k = self.keys(event);
        let mut cmd = evalsha(
            &BEST,
            HOLD_KEYS + 4 + POLICY_TAIL_KEYS,
            HOLD_ARGS + 5 + POLICY_TAIL_ARGS,
        );
        self.hold_keys(&mut cmd, &k, hold, user_id, rate);
        cmd.arg(k.layout())
            .arg(k.watched())
            .arg(k.row_ends())
            .arg(k.hist());
        policy_tail_keys(&mut cmd, &k, caller);
        hold_args(&mut cmd, hold, user_id, ttl, caps, rate);
        cmd.arg(count)
            .arg(filter.seat_type.as_deref().unwrap_or(""))
            .arg(filter.max_price_cents.unwrap_or(-1))
            .arg(k.seat(""))
            .arg(self.record_arg());
        policy_tail_args(&mut cmd, event, caller);
        let (tag, all) = tagged(self.invoke_cmd(RedisOp::Best, &BEST, &cmd).await?)?;
        if tag == "NOCACHE" {
            return Ok((HoldReply::NoCache, Vec::new()));
        }
        let micros = |i| int_at(&all, i).map(|n| Duration::from_micros(n.max(0) as u64));
        let remaining = int_at(&all, 0)?.clamp(0, i64::from(u32::MAX)) as u32;
        let reset = micros(1)?;
        if tag == "RATE_LIMITED" {
            let verdict = RateVerdict {
                allowed: false,
                remaining: 0,
                retry_after: micros(2)?,
                reset,
            };
            return Ok((HoldReply::RateLimited(verdict), Vec::new()));
        }
        let rate = rate.map(|_| RateVerdict {
            allowed: true,
            remaining,
            retry_after: Duration::ZERO,
            reset,
        });
        let rest = &all[2..];
        let count_at = |i| int_at(rest, i).map(|n| n.clamp(0, i64::from(u32::MAX)) as u32);
        if tag == "OK" {
            // The hold is in the history stream: the next flush looks at this event.
            self.touch(event);
        }
        let (attempt, trimmed, seats) = match tag.as_str() {
            "OK" => (
                HoldAttempt::Held {
                    expires_at_ms: int_at(rest, 0)?,
                },
                int_at(rest, 1)?.max(0) as u64,
                strings_at(rest, 2)?,
            ),
            "NO_BLOCK" => (
                HoldAttempt::NoBlock {
                    available: count_at(0)?,
                },
                0,
                Vec::new(),
            ),
            "USER_LIMIT" | "NOT_OPEN" | "CLOSED" | "ADMISSION" => {
                (policy_attempt(&tag, rest)?, 0, Vec::new())
            }
            other => return Err(scripts::unexpected("best", other)),
        };
        let reply = HoldReply::Decided {
            attempt,
            expired_trimmed: trimmed,
            rate,
        };
        Ok((reply, seats))
    }
}
