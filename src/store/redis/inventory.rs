//! The cached seat inventory in Redis: rebuild it from a Postgres snapshot (`rebuild.lua`, guarded
//! by the cache generation), mark seats booked or free (`mark_booked.lua`), drop every cache after
//! an outage, and read the seats held now (`held.lua`).

use redis::Value;

use super::RedisStore;
use super::keys::inventory_pattern;
use super::scripts::{HELD, MARK_BOOKED, REBUILD, string, unexpected};
use crate::domain::events::EventId;
use crate::domain::holds::HoldGroupId;
use crate::domain::seats::Inventory;
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
            .key(k.sold_by_booking())
            .arg(generation)
            .arg(inventory.seats.len())
            .arg(inventory.booked.len());
        for code in inventory.seats.iter().chain(&inventory.booked) {
            inv.arg(code);
        }
        for sold in &inventory.sold {
            inv.arg(sold.booking.to_string())
                .arg(&sold.user_id)
                .arg(sold.seats);
        }
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
        self.mark(event, "add", None, codes).await
    }

    /// Frees the seats of a cancelled booking and gives its buyer's quota back.
    pub async fn mark_cancelled(
        &self,
        event: EventId,
        booking: HoldGroupId,
        codes: &[String],
    ) -> Result<()> {
        self.mark(event, "remove", Some(booking), codes).await
    }

    /// See `lua/mark_booked.lua`.
    async fn mark(
        &self,
        event: EventId,
        how: &str,
        booking: Option<HoldGroupId>,
        codes: &[String],
    ) -> Result<()> {
        let k = self.keys(event);
        let mut inv = MARK_BOOKED.prepare_invoke();
        inv.key(k.seats())
            .key(k.booked())
            .key(k.generation())
            .key(k.sold())
            .key(k.sold_by_booking())
            .arg(how)
            .arg(booking.map(|b| b.to_string()).unwrap_or_default());
        for code in codes {
            inv.arg(code);
        }
        self.invoke(RedisOp::MarkBooked, &inv).await?;
        Ok(())
    }

    /// Drops every cached event inventory under this prefix, so each rebuilds from Postgres on
    /// its next hold. Returns how many were dropped. Not a script: SCAN, then one DEL per cache
    /// (each DEL is atomic alone, and a half-dropped set of caches is still correct).
    pub async fn drop_inventories(&self) -> Result<usize> {
        let pattern = inventory_pattern(&self.prefix);
        let keys: Vec<String> = self
            .run(RedisOp::ScanInventories, async |conn| {
                let mut keys = Vec::new();
                let mut cursor: u64 = 0;
                loop {
                    let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(conn)
                        .await?;
                    keys.extend(batch);
                    if next == 0 {
                        return Ok(keys);
                    }
                    cursor = next;
                }
            })
            .await?;
        for key in &keys {
            self.run(RedisOp::DropInventory, async |conn| {
                redis::cmd("DEL").arg(key).query_async::<i64>(conn).await
            })
            .await?;
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
}
