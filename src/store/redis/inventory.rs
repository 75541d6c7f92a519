//! The cached seat inventory in Redis: rebuild it from a Postgres snapshot (`rebuild.lua`, guarded
//! by the cache generation), mark seats booked or free (`mark_booked.lua`), drop every cache after
//! an outage, and read the seats held now (`held.lua`).

use std::fmt::Write as _;

use redis::Value;

use super::RedisStore;
use super::keys::{inventory_pattern, layout_of_inventory};
use super::policy::policy_args;
use super::scripts::{HELD, MARK_BOOKED, REBUILD, string, unexpected};
use crate::domain::bookings::Freed;
use crate::domain::events::EventId;
use crate::domain::holds::HoldGroupId;
use crate::domain::seats::{Inventory, RowSeat, SeatCodes};
use crate::domain::tiers::TierLine;
use crate::error::Result;
use crate::telemetry::RedisOp;

/// What `rebuild.lua` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuild {
    Written,
    AlreadyCached,
    /// The booked seats changed after the Postgres snapshot: take a new one.
    Stale,
}

impl RedisStore {
    /// Loads an event's inventory into Redis unless another caller already did, or the cache
    /// generation moved since `generation` was read (see `lua/rebuild.lua`).
    pub async fn rebuild_inventory(
        &self,
        event: EventId,
        generation: &str,
        inventory: &Inventory,
    ) -> Result<Rebuild> {
        let k = self.keys(event);
        let mut inv = REBUILD.prepare_invoke();
        inv.key(k.seats())
            .key(k.booked())
            .key(k.generation())
            .key(k.sold())
            .key(k.sold_by_booking());
        for tier in &inventory.tiers {
            inv.key(k.tier(&tier.code)).key(k.tier_holds(&tier.code));
        }
        inv.key(k.row_ends()).key(k.layout()).key(k.held());
        inv.arg(generation)
            .arg(inventory.seats.count())
            .arg(inventory.booked.len())
            .arg(inventory.tiers.len())
            .arg(inventory.rows.len());
        // The codes of an event of S1..Sn are made here, not read from Postgres (making them in
        // the script measured 2.5x slower than sending them: Lua formats each number).
        match &inventory.seats {
            SeatCodes::Listed(codes) => {
                for code in codes {
                    inv.arg(code);
                }
            }
            SeatCodes::Numbered(n) => {
                let mut code = String::with_capacity(8);
                for number in 1..=*n {
                    code.clear();
                    let _ = write!(code, "S{number}");
                    inv.arg(code.as_str());
                }
            }
        }
        for code in &inventory.booked {
            inv.arg(code);
        }
        for tier in &inventory.tiers {
            inv.arg(&tier.code).arg(tier.capacity).arg(tier.sold);
        }
        for row in &inventory.rows {
            inv.arg(row_spec(row));
        }
        for sold in &inventory.sold {
            inv.arg(sold.booking.to_string())
                .arg(&sold.user_id)
                .arg(sold.seats);
        }
        inv.arg(inventory.blocked.join("\n"));
        let (policy, channels) = policy_args(&inventory.policy, true);
        inv.arg(policy).arg(channels);
        let mut pools = String::new();
        for (code, booking, part) in &inventory.sold_pools {
            let _ = writeln!(pools, "{code}\t{booking}\t{part}");
        }
        inv.arg(pools);
        Ok(match self.invoke(RedisOp::Rebuild, &inv).await? {
            Value::Int(1) => Rebuild::Written,
            Value::Int(-1) => Rebuild::Stale,
            _ => Rebuild::AlreadyCached,
        })
    }

    /// The event's cache generation, read before a rebuild's Postgres snapshot.
    pub async fn inventory_generation(&self, event: EventId) -> Result<String> {
        let key = self.keys(event).generation();
        let value = self
            .run(RedisOp::Generation, async |conn| {
                redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Option<String>>(conn)
                    .await
            })
            .await?;
        Ok(value.unwrap_or_else(|| "0".to_string()))
    }

    /// Marks seats that Postgres has sold (Redis had lost track of them) as booked.
    pub async fn mark_booked(&self, event: EventId, codes: &[String]) -> Result<()> {
        self.mark(event, "add", None, codes, &[]).await
    }

    /// Frees the seats of a cancelled booking, gives its tier units back and its buyer's quota.
    pub async fn mark_cancelled(
        &self,
        event: EventId,
        booking: HoldGroupId,
        freed: &Freed,
    ) -> Result<()> {
        self.mark(event, "remove", Some(booking), &freed.seats, &freed.tiers)
            .await
    }

    /// See `lua/mark_booked.lua`.
    async fn mark(
        &self,
        event: EventId,
        how: &str,
        booking: Option<HoldGroupId>,
        codes: &[String],
        tiers: &[TierLine],
    ) -> Result<()> {
        let k = self.keys(event);
        let mut inv = MARK_BOOKED.prepare_invoke();
        inv.key(k.seats())
            .key(k.booked())
            .key(k.generation())
            .key(k.sold())
            .key(k.sold_by_booking());
        for line in tiers {
            inv.key(k.tier(&line.code));
        }
        inv.key(k.layout()).key(k.watched()).key(k.hist());
        if booking.is_some() {
            self.touch(event);
        }
        inv.arg(how)
            .arg(booking.map(|b| b.to_string()).unwrap_or_default())
            .arg(codes.len());
        for code in codes {
            inv.arg(code);
        }
        for line in tiers {
            inv.arg(&line.code).arg(line.quantity);
        }
        inv.arg(self.record_arg());
        self.invoke(RedisOp::MarkBooked, &inv).await?;
        Ok(())
    }

    /// Drops the cached inventory of one event, so its next hold rebuilds it from Postgres (after
    /// the Postgres guard found Redis's counts of the event behind).
    pub async fn drop_inventory(&self, event: EventId) -> Result<()> {
        self.drop_cache(&self.keys(event).seats()).await
    }

    /// Drops one cache by its inventory key (`{e}:seats`). The layout's `policy` flag goes
    /// first: `hold_plain.lua` trusts it only beside a cached inventory, and the rebuild that
    /// follows writes it anew (with any policy changed meanwhile).
    async fn drop_cache(&self, seats: &str) -> Result<()> {
        let layout = layout_of_inventory(seats);
        let mut pipe = redis::pipe();
        pipe.hdel(&layout, "policy").ignore().del(seats).ignore();
        self.run(RedisOp::DropInventory, async |conn| {
            pipe.query_async::<()>(conn).await
        })
        .await
    }

    /// Drops every cached event inventory under this prefix, so each rebuilds from Postgres on
    /// its next hold. Returns how many were dropped. Not a script: SCAN, then one drop per cache
    /// (each is correct alone, and a half-dropped set of caches is still correct).
    pub async fn drop_inventories(&self) -> Result<usize> {
        let pattern = inventory_pattern(&self.prefix);
        let keys: Vec<String> = self
            .run(RedisOp::ScanInventories, async |conn| {
                super::scan::scan_all(conn, &pattern).await
            })
            .await?;
        for key in &keys {
            self.drop_cache(key).await?;
        }
        Ok(keys.len())
    }

    /// Number of seats held right now, by the Redis clock.
    pub async fn held_count(&self, event: EventId) -> Result<i64> {
        let mut inv = HELD.prepare_invoke();
        inv.key(self.keys(event).held()).arg("count");
        match self.invoke(RedisOp::HeldCount, &inv).await? {
            Value::Int(n) => Ok(n),
            other => Err(unexpected("held", &format!("{other:?}"))),
        }
    }

    /// Seats held right now with the milliseconds each has left.
    pub async fn held_seats(&self, event: EventId) -> Result<Vec<(String, i64)>> {
        let mut inv = HELD.prepare_invoke();
        inv.key(self.keys(event).held()).arg("list");
        let Value::Array(items) = self.invoke(RedisOp::HeldList, &inv).await? else {
            return Err(unexpected("held", "not an array"));
        };
        items
            .chunks(2)
            .map(|pair| match pair {
                [code, Value::Int(ms)] => Ok((string(code)?, *ms)),
                _ => Err(unexpected("held", "bad pair")),
            })
            .collect()
    }

    /// Units of each tier held in Redis now and when its next hold ends (None for a tier not
    /// cached), leaving out the members of `excluded[i]` (`"<quantity>:<holdGroupId>"`, copies
    /// of Postgres holds); and the units of each of `channels[i]`'s allocations held.
    pub async fn held_tiers(
        &self,
        event: EventId,
        codes: &[String],
        excluded: &[Vec<String>],
        channels: &[Vec<String>],
    ) -> Result<Vec<Option<TierHeld>>> {
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let k = self.keys(event);
        let mut inv = HELD.prepare_invoke();
        inv.arg("tiers");
        for (i, code) in codes.iter().enumerate() {
            inv.key(k.tier(code)).key(k.tier_holds(code));
            let members = excluded.get(i).map(Vec::as_slice).unwrap_or_default();
            inv.arg(members.len());
            for member in members {
                inv.arg(member);
            }
            let chans = channels.get(i).map(Vec::as_slice).unwrap_or_default();
            inv.arg(chans.len());
            for ch in chans {
                inv.arg(ch);
            }
        }
        let Value::Array(items) = self.invoke(RedisOp::HeldTiers, &inv).await? else {
            return Err(unexpected("held", "not an array"));
        };
        let count = |v: &Value| match v {
            Value::Int(n) => Ok(*n),
            other => Err(unexpected("held", &format!("{other:?}"))),
        };
        let mut out = Vec::with_capacity(codes.len());
        let mut at = 0;
        for i in 0..codes.len() {
            let k = channels.get(i).map_or(0, Vec::len);
            let Some(chunk) = items.get(at..at + 2 + k) else {
                return Err(unexpected("held", "a short reply"));
            };
            at += 2 + k;
            let (held, next) = (count(&chunk[0])?, count(&chunk[1])?);
            let channels = chunk[2..]
                .iter()
                .map(|v| count(v).map(|n| n.clamp(0, i64::from(u32::MAX)) as u32))
                .collect::<Result<Vec<u32>>>()?;
            out.push((held >= 0).then(|| TierHeld {
                units: held.min(i64::from(u32::MAX)) as u32,
                next_end_ms: (next >= 0).then_some(next),
                channels,
            }));
        }
        Ok(out)
    }

    /// For each of `codes`, the milliseconds its Redis hold has left (None: not held in Redis).
    pub async fn held_ms_of(&self, event: EventId, codes: &[String]) -> Result<Vec<Option<i64>>> {
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = HELD.prepare_invoke();
        inv.key(self.keys(event).held()).arg("some");
        for code in codes {
            inv.arg(code);
        }
        let Value::Array(items) = self.invoke(RedisOp::HeldList, &inv).await? else {
            return Err(unexpected("held", "not an array"));
        };
        items
            .iter()
            .map(|v| match v {
                Value::Int(ms) => Ok((*ms >= 0).then_some(*ms)),
                other => Err(unexpected("held", &format!("{other:?}"))),
            })
            .collect()
    }
}

/// A tier's units held in Redis now, and the milliseconds until its next hold ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierHeld {
    pub units: u32,
    pub next_end_ms: Option<i64>,
    /// Units of each channel's allocation held, in the order asked.
    pub channels: Vec<u32>,
}

/// A row as `{e}:layout` keeps it (see `lua/rows.lua`): the one line
/// `=\tname\tfirst\tlast\ttype\tprice` for a plain row (numbers without a gap, codes
/// `<name><number>`, one type and price), so that best.lua reads it without a line per seat;
/// else a `code\tnumber\ttype\tprice` line per seat.
fn row_spec(row: &[RowSeat]) -> String {
    if let Some(plain) = plain_row(row) {
        return plain;
    }
    let lines: Vec<String> = row
        .iter()
        .map(|s| {
            format!(
                "{}\t{}\t{}\t{}",
                s.code, s.number, s.seat_type, s.price_cents
            )
        })
        .collect();
    lines.join("\n")
}

fn plain_row(row: &[RowSeat]) -> Option<String> {
    let first = row.first()?;
    let name = first.code.strip_suffix(&first.number.to_string())?;
    if name.is_empty() || name.contains(['\t', '\n']) || first.seat_type.contains(['\t', '\n']) {
        return None;
    }
    let plain = row.iter().enumerate().all(|(k, s)| {
        i64::from(s.number) == i64::from(first.number) + k as i64
            && s.seat_type == first.seat_type
            && s.price_cents == first.price_cents
            && s.code.strip_suffix(&s.number.to_string()) == Some(name)
    });
    let last = row.last()?;
    plain.then(|| {
        format!(
            "=\t{name}\t{}\t{}\t{}\t{}",
            first.number, last.number, first.seat_type, first.price_cents
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(code: &str, number: i32, seat_type: &str) -> RowSeat {
        RowSeat {
            code: code.into(),
            number,
            seat_type: seat_type.into(),
            price_cents: 4000,
        }
    }

    #[test]
    fn a_plain_row_is_one_line_and_anything_else_a_line_per_seat() {
        let plain = [
            seat("A1", 1, "STD"),
            seat("A2", 2, "STD"),
            seat("A3", 3, "STD"),
        ];
        assert_eq!(row_spec(&plain), "=\tA\t1\t3\tSTD\t4000");
        let from_ten = [seat("B-10", 10, "STD"), seat("B-11", 11, "STD")];
        assert_eq!(row_spec(&from_ten), "=\tB-\t10\t11\tSTD\t4000");
        for row in [
            vec![seat("A1", 1, "STD"), seat("A3", 3, "STD")],
            vec![seat("A1", 1, "STD"), seat("A2", 2, "VIP")],
            vec![seat("A09", 9, "STD"), seat("A10", 10, "STD")],
            vec![seat("A1", 1, "STD"), seat("X2", 2, "STD")],
            vec![seat("7", 7, "STD")],
        ] {
            let spec = row_spec(&row);
            assert!(!spec.starts_with('='), "{row:?} -> {spec}");
            assert_eq!(spec.lines().count(), row.len());
        }
    }
}
