//! The head of every hold script's EVALSHA (`hold.lua`, `best.lua`, `hold_plain.lua`): KEYS[1..7]
//! and ARGV[1..7], read alike by the scripts and by `gcra.lua` and `caps.lua`.

use std::time::Duration;

use super::RedisStore;
use super::keys::Keys;
use crate::domain::holds::{Caps, HoldGroupId};
use crate::domain::limits::{Rate, RateRequest};

/// ARGV[1..7] of the hold scripts (`hold.lua`, `best.lua`, `hold_plain.lua`): the hold id, the
/// buyer, the TTL in ms, the two caps (0 = none), the rate quota (0 0 = not counted).
pub(super) fn hold_args(
    cmd: &mut redis::Cmd,
    hold: HoldGroupId,
    user_id: &str,
    ttl: Duration,
    caps: Caps,
    rate: Option<(&RateRequest, Rate)>,
) {
    // The id as its Display writes it, without a String.
    let mut id = uuid::Uuid::encode_buffer();
    cmd.arg(&*hold.0.hyphenated().encode_lower(&mut id))
        .arg(user_id)
        .arg(ttl.as_millis() as u64)
        .arg(caps.max_seats.unwrap_or(0))
        .arg(caps.max_live_holds.unwrap_or(0));
    match rate {
        Some((_, quota)) => cmd.arg(quota.interval_us()).arg(quota.burst.max(1)),
        None => cmd.arg(0).arg(0),
    };
}

/// How many keys [`RedisStore::hold_keys`] adds, and arguments [`hold_args`].
pub(super) const HOLD_KEYS: usize = 7;
pub(super) const HOLD_ARGS: usize = 7;

impl RedisStore {
    /// KEYS[1..7] of `hold.lua` and `best.lua`: the cache marker, booked, held, the hold, the
    /// buyer's holds, sold, the rate key (the hold's key again when the rate is not counted).
    pub(super) fn hold_keys(
        &self,
        cmd: &mut redis::Cmd,
        k: &Keys,
        hold: HoldGroupId,
        user_id: &str,
        rate: Option<(&RateRequest, Rate)>,
    ) {
        let hold_key = k.hold(hold);
        cmd.arg(k.seats())
            .arg(k.booked())
            .arg(k.held())
            .arg(&hold_key)
            .arg(k.user(user_id))
            .arg(k.sold());
        // Without a rate check the slot is filled with a key of the event (never read).
        match rate {
            Some((caller, _)) => cmd.arg(self.rate_key(caller)),
            None => cmd.arg(&hold_key),
        };
    }
}
