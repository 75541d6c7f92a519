//! The Redis key layout. Every key of an event shares the hash tag `{e:<id>}`, so one event's
//! keys live on one Redis Cluster slot and every script touching them stays atomic.
//!
//! Under the configured prefix `P` (`redis.key_prefix`):
//!
//! | key | type | what | lifetime |
//! |---|---|---|---|
//! | `P:{e:ID}:seats` | SET | every seat code of the event, and the member `""` (so an event of tiers only has one too): the cached inventory's marker | until dropped (rebuilt from Postgres when missing) |
//! | `P:{e:ID}:booked` | SET | booked seat codes, and blocked ones (a cache of Postgres) | with the inventory |
//! | `P:{e:ID}:blocked` | SET | blocked seat codes (held back from sale; also in `booked`, so a hold is refused on them) | with the inventory |
//! | `P:{e:ID}:gen` | STRING | cache generation: bumped when a booked-set change finds no cached inventory, so a rebuild from an older Postgres snapshot is refused | none |
//! | `P:{e:ID}:held` | ZSET | seat code -> hold expiry in ms (Redis clock), for counts and the seat map; trimmed of expired entries by each hold | none (kept the size of the live holds) |
//! | `P:{e:ID}:seat:CODE` | STRING | the holdGroupId holding the seat | the hold's TTL |
//! | `P:{e:ID}:hold:UUID` | HASH | `user`, `exp` (ms), `seats` (codes joined by `\n`), `tiers` (`"<code> <quantity>"` lines joined by `\n`), and `pinned` (the token of a confirm in progress) | the hold's TTL |
//! | `P:{e:ID}:tier:CODE` | HASH | `cap`, `sold` (a cache of Postgres) and `held` (units of live holds, a running total) | with the inventory |
//! | `P:{e:ID}:tierholds:CODE` | ZSET | the tier's live holds, `"<quantity>:<holdGroupId>"` -> expiry ms; expired entries are trimmed (and their units taken off `held`) by the next hold of the tier | none (kept the size of the live holds) |
//! | `P:{e:ID}:user:USER` | ZSET | the buyer's live holds, `"<units>:<holdGroupId>"` -> expiry ms (units: seats plus tier quantities); kept only while caps are on | the longest of its holds' TTLs |
//! | `P:{e:ID}:sold` | HASH | userId -> seats and tier units in the buyer's confirmed bookings (a cache of Postgres) | with the inventory |
//! | `P:{e:ID}:sold_by_booking` | HASH | bookingId -> `"<units>:<userId>"`, so a booking counts once | with the inventory |
//! | `P:{e:ID}:layout` | HASH | the seat layout for best-available: rows, seats per row, booked and held bits per row, where each seat is (see `lua/rows.lua`); and `policy`, whether the event has a sales policy, read with the rows count by `hold_plain.lua` | with the inventory |
//! | `P:{e:ID}:rowends` | ZSET | row index -> the earliest end (ms) of a hold marked in the row's bits: best.lua looks at rows whose entry passed again | with the inventory |
//! | `P:{e:ID}:rebuilding` | STRING | a random token: the instance rebuilding the event's cache from Postgres; the others wait for the cache instead of reading Postgres too | 10 s, deleted by its owner when done |
//! | `P:{e:ID}:hist` | STREAM | what the hold scripts changed, in order (`k` kind: `H` held, `E` extended, `P` pinned, `R` released, `B` booked, `D` dropped, `C` cancelled; `h` hold or booking id, `a` ms, `u` user, `x` expiry ms, `s` seats, `t` tier lines, `b` seats sold elsewhere), copied into Postgres and trimmed by the history flush | until flushed (not dropped with the inventory) |
//! | `P:{e:ID}:watched` | STRING | set while some instance streams the event's seat map; the scripts that change seats publish on the channel `P:{e:ID}:changes` only then, with the command it holds (`PUBLISH`, or `SPUBLISH` on a cluster) | 30 s, refreshed every 10 s by each instance with subscribers |
//! | `P:{e:ID}:policy` | HASH | the event's sales policy (see `lua/policy.lua`): `s`/`e` its window (ms), `s:CH`/`e:CH` a channel's, `c` when seats belong to channels, `q` its Queue-it event id; absent for an event without one | with the inventory |
//! | `P:{e:ID}:chan` | HASH | seat code -> its channel (only seats allocated to one) | with the inventory |
//! | `P:{e:ID}:adm:BUYER` | ZSET | an admission's live holds, holdGroupId -> expiry ms (the hold's `adm` field names it, so its end frees the place) | the longest of its holds' TTLs |
//! | `P:rate:{SCOPE:ID}` | STRING | GCRA theoretical arrival time (µs) of one caller's rate limit | until the burst is whole again |

use crate::domain::events::EventId;
use crate::domain::holds::HoldGroupId;

/// The keys of one event.
pub(super) struct Keys(String);

impl Keys {
    pub(super) fn new(prefix: &str, event: EventId) -> Self {
        Keys(format!("{prefix}:{{e:{}}}", event.0))
    }

    pub(super) fn seats(&self) -> String {
        format!("{}:seats", self.0)
    }

    pub(super) fn booked(&self) -> String {
        format!("{}:booked", self.0)
    }

    /// Blocked seats; the scripts also derive it from the booked key's name (`hold.lua` and
    /// `rebuild.lua`, where it is only needed on a refusal or beside the booked set).
    pub(super) fn blocked(&self) -> String {
        format!("{}:blocked", self.0)
    }

    pub(super) fn rebuilding(&self) -> String {
        format!("{}:rebuilding", self.0)
    }

    pub(super) fn generation(&self) -> String {
        format!("{}:gen", self.0)
    }

    pub(super) fn held(&self) -> String {
        format!("{}:held", self.0)
    }

    pub(super) fn seat(&self, code: &str) -> String {
        format!("{}:seat:{code}", self.0)
    }

    pub(super) fn tier(&self, code: &str) -> String {
        format!("{}:tier:{code}", self.0)
    }

    pub(super) fn tier_holds(&self, code: &str) -> String {
        format!("{}:tierholds:{code}", self.0)
    }

    pub(super) fn hold(&self, id: HoldGroupId) -> String {
        format!("{}:hold:{id}", self.0)
    }

    pub(super) fn user(&self, user_id: &str) -> String {
        format!("{}:user:{user_id}", self.0)
    }

    pub(super) fn sold(&self) -> String {
        format!("{}:sold", self.0)
    }

    pub(super) fn row_ends(&self) -> String {
        format!("{}:rowends", self.0)
    }

    pub(super) fn layout(&self) -> String {
        format!("{}:layout", self.0)
    }

    pub(super) fn policy(&self) -> String {
        format!("{}:policy", self.0)
    }

    pub(super) fn channels(&self) -> String {
        format!("{}:chan", self.0)
    }

    /// An admission's live holds: `buyer` is the token's `sub` or Queue-it `q`.
    pub(super) fn admission(&self, buyer: &str) -> String {
        format!("{}:adm:{buyer}", self.0)
    }

    pub(super) fn hist(&self) -> String {
        format!("{}:hist", self.0)
    }

    pub(super) fn watched(&self) -> String {
        format!("{}:watched", self.0)
    }

    /// The pub/sub channel of the event's seat changes (not a key).
    pub(super) fn changes(&self) -> String {
        format!("{}:changes", self.0)
    }

    pub(super) fn sold_by_booking(&self) -> String {
        format!("{}:sold_by_booking", self.0)
    }
}

/// The rate-limit key of one caller (its own hash tag: callers spread over a cluster).
pub(super) fn rate(prefix: &str, scope: &str, identity: &str) -> String {
    format!("{prefix}:rate:{{{scope}:{identity}}}")
}

/// The event of a changes channel under `prefix`, or None for another channel.
pub(super) fn event_of_channel(prefix: &str, channel: &str) -> Option<EventId> {
    let id = channel
        .strip_prefix(prefix)?
        .strip_prefix(":{e:")?
        .strip_suffix("}:changes")?;
    id.parse().ok().map(EventId)
}

/// The SET of events whose history stream may hold entries not yet flushed (see
/// `RedisStore::register_history`): a key of its own slot, never touched by a script.
pub(super) fn history_registry(prefix: &str) -> String {
    format!("{prefix}:hist:events")
}

/// The SCAN pattern matching every history stream under a prefix.
pub(super) fn history_pattern(prefix: &str) -> String {
    format!("{prefix}:{{e:*}}:hist")
}

/// The event of a history stream's key under `prefix`.
pub(super) fn event_of_history(prefix: &str, key: &str) -> Option<EventId> {
    let id = key
        .strip_prefix(prefix)?
        .strip_prefix(":{e:")?
        .strip_suffix("}:hist")?;
    id.parse().ok().map(EventId)
}

/// The SCAN pattern matching every cached inventory under a prefix.
pub(super) fn inventory_pattern(prefix: &str) -> String {
    format!("{prefix}:{{e:*}}:seats")
}

/// The layout key of the event whose inventory key (`{e}:seats`) is `seats`.
pub(super) fn layout_of_inventory(seats: &str) -> String {
    format!("{}layout", seats.strip_suffix("seats").unwrap_or(seats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::holds::HoldStore;

    #[test]
    fn every_key_of_an_event_shares_its_hash_tag() {
        let k = Keys::new("P", EventId(42));
        let id = HoldGroupId::new(EventId(42), HoldStore::Redis);
        for key in [
            k.seats(),
            k.booked(),
            k.blocked(),
            k.generation(),
            k.held(),
            k.seat("A1"),
            k.tier("GA"),
            k.tier_holds("GA"),
            k.hold(id),
            k.user("u}1"),
            k.sold(),
            k.sold_by_booking(),
            k.watched(),
            k.layout(),
            k.row_ends(),
            k.hist(),
        ] {
            assert!(key.starts_with("P:{e:42}:"), "{key}");
        }
        assert_eq!(k.seat("A1"), "P:{e:42}:seat:A1");
        assert_eq!(layout_of_inventory(&k.seats()), k.layout());
        assert_eq!(inventory_pattern("P"), "P:{e:*}:seats");
        assert_eq!(k.changes(), "P:{e:42}:changes");
        assert_eq!(event_of_channel("P", &k.changes()), Some(EventId(42)));
        assert_eq!(event_of_channel("Q", &k.changes()), None);
        // The scripts derive the channel from the watched key's name.
        assert_eq!(
            k.watched().strip_suffix("watched"),
            k.changes().strip_suffix("changes")
        );
        assert_eq!(rate("P", "user", "u1"), "P:rate:{user:u1}");
        assert_eq!(event_of_history("P", &k.hist()), Some(EventId(42)));
        assert_eq!(history_pattern("P"), "P:{e:*}:hist");
        // The scripts derive the blocked key from the booked key's name.
        assert_eq!(
            format!("{}blocked", &k.booked()[..k.booked().len() - 6]),
            k.blocked()
        );
    }
}
