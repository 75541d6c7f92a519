//! Blocked seats in the event's cache (`lua/block.lua`): a blocked seat is refused as a booked
//! one is, at no cost to a hold that names none.

use super::RedisStore;
use super::scripts::{BLOCK, strings_at, tagged};
use crate::domain::events::EventId;
use crate::error::Result;
use crate::telemetry::RedisOp;

impl RedisStore {
    /// Blocks seats unless a live hold has one; returns the held ones (then nothing changed).
    pub async fn block_seats(&self, event: EventId, codes: &[String]) -> Result<Vec<String>> {
        let (tag, rest) = tagged(self.run_block(event, "block", codes).await?)?;
        if tag == "HELD" {
            return strings_at(&rest, 0);
        }
        Ok(Vec::new())
    }

    /// Puts blocked seats on sale again.
    pub async fn unblock_seats(&self, event: EventId, codes: &[String]) -> Result<()> {
        self.run_block(event, "unblock", codes).await?;
        Ok(())
    }

    async fn run_block(&self, event: EventId, how: &str, codes: &[String]) -> Result<redis::Value> {
        let k = self.keys(event);
        let mut inv = BLOCK.prepare_invoke();
        inv.key(k.seats())
            .key(k.booked())
            .key(k.blocked())
            .key(k.generation());
        for code in codes {
            inv.key(k.seat(code));
        }
        inv.key(k.layout()).key(k.watched());
        inv.arg(how);
        for code in codes {
            inv.arg(code);
        }
        self.invoke(RedisOp::Block, &inv).await
    }
}
