//! Holds in Redis: take one (`hold.lua`), read it, pin it for a confirm (`pin.lua`), unpin it
//! (`unpin.lua`), and end it (`settle.lua`).

use std::time::Duration;

use redis::Value;

use super::RedisStore;
use super::hold_fields::{parse_pools, parse_tier_lines, pool_lines, shortages};
use super::hold_head::{HOLD_ARGS, HOLD_KEYS, hold_args};
use super::keys::Keys;
use super::policy::{
    POLICY_TAIL_ARGS, POLICY_TAIL_KEYS, policy_attempt, policy_tail_args, policy_tail_keys,
};
use super::scripts::{
    self, HOLD, PIN, SETTLE, UNPIN, evalsha, hold_check, int_at, strings_at, tagged,
};
use crate::domain::events::EventId;
use crate::domain::holds::{Caps, HoldAttempt, HoldCheck, HoldGroupId, HoldRecord, HoldStore};
use crate::domain::limits::{Rate, RateRequest, RateVerdict};
use crate::domain::policy::HoldCaller;
use crate::domain::tiers::{TierLine, units};
use crate::error::Result;
use crate::telemetry::RedisOp;

/// What `hold.lua` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldReply {
    /// The event's inventory is not cached: rebuild it and try again (nothing was counted).
    NoCache,
    /// The caller's rate limit refused the request; nothing else was looked at.
    RateLimited(RateVerdict),
    /// The attempt was decided; `expired_trimmed` seats of expired holds were dropped from the
    /// held set on the way; `rate` is the verdict of the rate limit counted with it.
    Decided {
        attempt: HoldAttempt,
        expired_trimmed: u64,
        rate: Option<RateVerdict>,
    },
}

/// One run of `hold.lua`.
#[derive(Debug, Clone, Copy)]
pub struct HoldRequest<'a> {
    pub event: EventId,
    pub hold: HoldGroupId,
    pub user_id: &'a str,
    pub ttl: Duration,
    pub codes: &'a [String],
    pub tiers: &'a [TierLine],
    pub caps: Caps,
    /// The caller's rate limit to count first, with its quota (None: not counted here).
    pub rate: Option<(&'a RateRequest, Rate)>,
    /// Whether the hold is recorded in the event's history stream (not for a copy of a
    /// Postgres hold, recorded in Postgres where it was taken).
    pub record: bool,
    /// Who holds, as the sales policy sees it.
    pub caller: &'a HoldCaller,
    /// The channel parts its units must take, (tier code, part): a copy of a Postgres hold
    /// keeps the allocations it was taken from. Empty: chosen by the script.
    pub pools: &'a [(String, String)],
}

/// How `settle.lua` ends a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// The owner released it: checked against the owner, no seat becomes booked.
    Release,
    /// Its booking committed in Postgres: unconditional, the seats become booked.
    Book,
    /// Nothing was sold by it: unconditional, nothing becomes booked.
    Drop,
}

impl RedisStore {
    /// Takes a hold: `hold_plain.lua` when it can, else `hold.lua` (the same replies).
    pub async fn acquire_hold(&self, request: &HoldRequest<'_>) -> Result<HoldReply> {
        let HoldRequest {
            event,
            rate,
            record,
            ..
        } = *request;
        let k = self.keys(event);
        let reply = match self.hold_plain(request, &k).await? {
            Some(reply) => reply,
            None => self.hold_full(request, &k).await?,
        };
        let (tag, all) = tagged(reply)?;
        if tag == "NOCACHE" {
            return Ok(HoldReply::NoCache);
        }
        // Every other reply starts with the rate verdict: remaining, reset (and, refused, retry).
        let micros = |i| int_at(&all, i).map(|n| Duration::from_micros(n.max(0) as u64));
        let remaining = int_at(&all, 0)?.clamp(0, i64::from(u32::MAX)) as u32;
        let reset = micros(1)?;
        if tag == "RATE_LIMITED" {
            return Ok(HoldReply::RateLimited(RateVerdict {
                allowed: false,
                remaining: 0,
                retry_after: micros(2)?,
                reset,
            }));
        }
        let rate = rate.map(|_| RateVerdict {
            allowed: true,
            remaining,
            retry_after: Duration::ZERO,
            reset,
        });
        let rest = &all[2..];
        let decided = |attempt, expired_trimmed| HoldReply::Decided {
            attempt,
            expired_trimmed,
            rate,
        };
        match tag.as_str() {
            "OK" => {
                if record {
                    self.touch(event);
                }
                Ok(decided(
                    HoldAttempt::Held {
                        expires_at_ms: int_at(rest, 0)?,
                    },
                    int_at(rest, 1)?.max(0) as u64,
                ))
            }
            "UNKNOWN" => Ok(decided(HoldAttempt::Unknown(strings_at(rest, 0)?), 0)),
            "UNKNOWN_TIERS" => Ok(decided(HoldAttempt::UnknownTiers(strings_at(rest, 0)?), 0)),
            "USER_LIMIT" | "NOT_OPEN" | "CLOSED" | "ADMISSION" => {
                Ok(decided(policy_attempt(&tag, rest)?, 0))
            }
            "UNAVAILABLE" => Ok(decided(
                HoldAttempt::Unavailable {
                    booked: strings_at(rest, 0)?,
                    held: strings_at(rest, 1)?,
                    short: shortages(rest.get(2))?,
                    blocked: match rest.get(3) {
                        Some(_) => strings_at(rest, 3)?,
                        None => Vec::new(),
                    },
                    channel: match rest.get(4) {
                        Some(_) => strings_at(rest, 4)?,
                        None => Vec::new(),
                    },
                },
                0,
            )),
            other => Err(scripts::unexpected("hold", other)),
        }
    }

    /// Runs `hold.lua`: any hold, on any event.
    async fn hold_full(&self, request: &HoldRequest<'_>, k: &Keys) -> Result<Value> {
        let HoldRequest {
            event,
            hold,
            user_id,
            ttl,
            codes,
            tiers,
            caps,
            rate,
            record,
            caller,
            pools,
        } = *request;
        let seats_and_tiers = codes.len() + 2 * tiers.len();
        let mut cmd = evalsha(
            &HOLD,
            HOLD_KEYS + seats_and_tiers + 4 + POLICY_TAIL_KEYS,
            HOLD_ARGS + 1 + seats_and_tiers + 2 + POLICY_TAIL_ARGS,
        );
        self.hold_keys(&mut cmd, k, hold, user_id, rate);
        for code in codes {
            cmd.arg(k.seat(code));
        }
        for line in tiers {
            cmd.arg(k.tier(&line.code)).arg(k.tier_holds(&line.code));
        }
        cmd.arg(k.row_ends())
            .arg(k.layout())
            .arg(k.watched())
            .arg(k.hist());
        policy_tail_keys(&mut cmd, k, caller);
        hold_args(&mut cmd, hold, user_id, ttl, caps, rate);
        cmd.arg(codes.len());
        for code in codes {
            cmd.arg(code);
        }
        for line in tiers {
            cmd.arg(&line.code).arg(line.quantity);
        }
        cmd.arg(pool_lines(pools));
        cmd.arg(if record && self.record { "1" } else { "0" });
        policy_tail_args(&mut cmd, event, caller);
        self.invoke_cmd(RedisOp::Hold, &HOLD, &cmd).await
    }

    /// The id of the live hold on each seat (None: no live hold), in the order asked.
    pub async fn seat_holders(
        &self,
        event: EventId,
        seats: &[String],
    ) -> Result<Vec<Option<String>>> {
        let keys = self.keys(event);
        let seat_keys: Vec<String> = seats.iter().map(|c| keys.seat(c)).collect();
        self.run(RedisOp::FetchHold, async |conn| {
            redis::cmd("MGET")
                .arg(&seat_keys)
                .query_async::<Vec<Option<String>>>(conn)
                .await
        })
        .await
    }

    /// Reads a live hold, or None when it expired, was settled or never existed.
    pub async fn fetch_hold(
        &self,
        event: EventId,
        hold: HoldGroupId,
    ) -> Result<Option<HoldRecord>> {
        let key = self.keys(event).hold(hold);
        let fields = self
            .run(RedisOp::FetchHold, async |conn| {
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg("user")
                    .arg("seats")
                    .arg("tiers")
                    .arg("pools")
                    .arg("taken")
                    .query_async::<[Option<String>; 5]>(conn)
                    .await
            })
            .await?;
        Ok(match fields {
            [Some(user_id), Some(seats), tiers, pools, taken] => Some(HoldRecord {
                taken_ms: taken.and_then(|t| t.parse().ok()),
                pools: pools.as_deref().map(parse_pools).unwrap_or_default(),
                user_id,
                seats: seats
                    .split('\n')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                tiers: parse_tier_lines(tiers.as_deref().unwrap_or_default())?,
            }),
            _ => None,
        })
    }

    /// Checks owner and liveness, marks a confirm in progress with `token`, and extends the hold
    /// to last at least `grace` (see `lua/pin.lua`).
    pub async fn pin_hold(
        &self,
        event: EventId,
        hold: HoldGroupId,
        user_id: &str,
        contents: (&[String], &[TierLine]),
        grace: Duration,
        token: &str,
    ) -> Result<HoldCheck> {
        let (seats, tiers) = contents;
        let k = self.keys(event);
        let mut inv = PIN.prepare_invoke();
        inv.key(k.hold(hold)).key(k.held()).key(k.user(user_id));
        for code in seats {
            inv.key(k.seat(code));
        }
        for line in tiers {
            inv.key(k.tier_holds(&line.code));
        }
        inv.key(k.hist());
        inv.arg(hold.to_string())
            .arg(user_id)
            .arg(grace.as_millis() as u64)
            .arg(token)
            .arg(seats.len())
            .arg(units(seats.len(), tiers));
        for code in seats {
            inv.arg(code);
        }
        for line in tiers {
            inv.arg(format!("{}:{hold}", line.quantity));
        }
        inv.arg(self.record_arg());
        self.touch(event);
        hold_check("pin", self.invoke(RedisOp::Pin, &inv).await?)
    }

    /// Clears the confirm-in-progress mark `token` of a hold whose confirm failed, so its owner
    /// may release it again; a newer attempt's mark stays.
    pub async fn unpin_hold(&self, event: EventId, hold: HoldGroupId, token: &str) -> Result<()> {
        let mut inv = UNPIN.prepare_invoke();
        inv.key(self.keys(event).hold(hold)).arg(token);
        self.invoke(RedisOp::Unpin, &inv).await?;
        Ok(())
    }

    /// Ends a hold of `user_id` (see `lua/settle.lua`); `taken`: of a dropped hold, the seats
    /// another booking had sold (its history says so). The end of a Redis hold is recorded in
    /// the event's history stream; a copy of a Postgres hold's is not (Postgres records it).
    #[allow(clippy::too_many_arguments)]
    pub async fn settle_hold(
        &self,
        event: EventId,
        hold: HoldGroupId,
        user_id: &str,
        how: Settle,
        contents: (&[String], &[TierLine]),
        taken: &[String],
        pools: &[(String, String)],
    ) -> Result<HoldCheck> {
        let (seats, tiers) = contents;
        let k = self.keys(event);
        let mut inv = SETTLE.prepare_invoke();
        inv.key(k.hold(hold))
            .key(k.seats())
            .key(k.booked())
            .key(k.held())
            .key(k.user(user_id))
            .key(k.sold())
            .key(k.sold_by_booking())
            .key(k.generation());
        for code in seats {
            inv.key(k.seat(code));
        }
        for line in tiers {
            inv.key(k.tier(&line.code)).key(k.tier_holds(&line.code));
        }
        inv.key(k.layout()).key(k.watched()).key(k.hist());
        inv.arg(hold.to_string());
        let op = match how {
            Settle::Release => {
                inv.arg("release");
                RedisOp::Release
            }
            Settle::Book => {
                inv.arg("book");
                RedisOp::SettleBooked
            }
            Settle::Drop => {
                inv.arg("drop");
                RedisOp::SettleDropped
            }
        };
        inv.arg(user_id).arg(seats.len());
        for code in seats {
            inv.arg(code);
        }
        for line in tiers {
            inv.arg(&line.code).arg(line.quantity);
        }
        inv.arg(pool_lines(pools));
        let record = hold.store() == HoldStore::Redis && self.record;
        inv.arg(if record {
            taken.iter().fold("1".to_string(), |s, c| s + "\n" + c)
        } else {
            String::new()
        });
        let reply: Value = self.invoke(op, &inv).await?;
        if record {
            self.touch(event);
        }
        hold_check("settle", reply)
    }
}
