//! The sales policy in Redis (see `lua/policy.lua`): what the hold scripts are given of it and
//! answer about it, and the policy written into an event's cache (`lua/set_policy.lua`).

use std::fmt::Write as _;

use redis::Value;

use super::RedisStore;
use super::keys::Keys;
use super::scripts::{self, SET_POLICY, int_at};
use crate::domain::events::EventId;
use crate::domain::holds::HoldAttempt;
use crate::domain::policy::{HoldCaller, PolicySnapshot};
use crate::error::{Result, UserLimitKind};
use crate::telemetry::RedisOp;

impl RedisStore {
    /// Writes an event's sales policy into its cache (see `lua/set_policy.lua`) unless a newer one
    /// is there; with `channels`, the seats' channels too.
    pub async fn write_policy(
        &self,
        event: EventId,
        snapshot: &PolicySnapshot,
        channels: bool,
    ) -> Result<()> {
        let k = self.keys(event);
        let mut inv = SET_POLICY.prepare_invoke();
        inv.key(k.seats())
            .key(k.generation())
            .key(k.policy())
            .key(k.channels())
            .key(k.layout());
        let (policy, seats) = policy_args(snapshot, channels);
        inv.arg(policy)
            .arg(if channels { "1" } else { "0" })
            .arg(seats);
        self.invoke(RedisOp::SetPolicy, &inv).await?;
        Ok(())
    }
}

/// The sales policy's keys and arguments, after everything else (see `lua/policy.lua`). The
/// keys: the policy, the channels, the buyer's admission (the policy key again when none).
pub(super) fn policy_tail_keys(cmd: &mut redis::Cmd, k: &Keys, caller: &HoldCaller) {
    cmd.arg(k.policy()).arg(k.channels());
    match &caller.admission {
        Some(a) => cmd.arg(k.admission(&a.buyer)),
        None => cmd.arg(k.policy()),
    };
}

/// How many keys [`policy_tail_keys`] adds, and arguments [`policy_tail_args`].
pub(super) const POLICY_TAIL_KEYS: usize = 3;
pub(super) const POLICY_TAIL_ARGS: usize = 4;

/// The arguments: the caller's channels, the admission's cap and queue event, the event id.
pub(super) fn policy_tail_args(cmd: &mut redis::Cmd, event: EventId, caller: &HoldCaller) {
    cmd.arg(caller.script_channels());
    match &caller.admission {
        Some(a) => cmd
            .arg(a.max_live_holds)
            .arg(a.queueit_event.as_deref().unwrap_or_default()),
        None => cmd.arg(0).arg(""),
    };
    cmd.arg(event.0);
}

/// A refusal `hold.lua` and `best.lua` answer alike: a cap (`USER_LIMIT`, cap, max, current),
/// the sales window (`NOT_OPEN` / `CLOSED`, ms) or the admission (`ADMISSION`); `rest` follows
/// the rate verdict.
pub(super) fn policy_attempt(tag: &str, rest: &[Value]) -> Result<HoldAttempt> {
    let count = |i| int_at(rest, i).map(|n| n.clamp(0, i64::from(u32::MAX)) as u32);
    Ok(match tag {
        "NOT_OPEN" => HoldAttempt::NotOpen {
            opens_at_ms: int_at(rest, 0)?,
        },
        "CLOSED" => HoldAttempt::Closed {
            closed_at_ms: int_at(rest, 0)?,
        },
        "ADMISSION" => HoldAttempt::AdmissionRefused,
        _ => HoldAttempt::UserLimit {
            limit: match scripts::string(rest.first().unwrap_or(&Value::Nil))?.as_str() {
                "seats" => UserLimitKind::Seats,
                "max_live_holds_per_admission" => UserLimitKind::AdmissionLiveHolds,
                _ => UserLimitKind::LiveHolds,
            },
            max: count(1)?,
            current: count(2)?,
        },
    })
}

/// A policy as the scripts take it: its version then its fields, and (with `channels`) seat
/// code and channel pairs, each list joined by `\n` (codes and channels have no whitespace).
pub(super) fn policy_args(snapshot: &PolicySnapshot, channels: bool) -> (String, String) {
    let mut policy = snapshot.version.to_string();
    for (k, v) in snapshot.script_fields() {
        let _ = write!(policy, "\n{k}\n{v}");
    }
    let mut seats = String::new();
    if channels {
        for (code, channel) in &snapshot.seats {
            if !seats.is_empty() {
                seats.push('\n');
            }
            let _ = write!(seats, "{code}\n{channel}");
        }
    }
    (policy, seats)
}
