//! The event's history stream (`{e}:hist`): the hold scripts append what they change (see the
//! key table in [`super::keys`]); the history flush reads it here with the Redis clock
//! (`lua/history.lua`), copies it into Postgres and trims what it copied. Events whose stream
//! this instance appended to are remembered until the next flush takes them.

use std::collections::HashSet;

use redis::Value;

use super::RedisStore;
use super::keys::{event_of_history, history_pattern, history_registry};
use super::scripts::{self, HISTORY};
use crate::domain::events::EventId;
use crate::domain::history::merge::{EntryKind, StreamEntry};
use crate::domain::holds::HoldGroupId;
use crate::domain::tiers::TierLine;
use crate::error::Result;
use crate::telemetry::RedisOp;

/// What one read of the stream found.
#[derive(Debug, Clone, Default)]
pub struct HistoryRead {
    /// Redis's clock at the read, ms.
    pub now_ms: i64,
    /// Each entry with its id.
    pub entries: Vec<(String, StreamEntry)>,
}

impl RedisStore {
    /// Notes that `event`'s stream got an entry (the next flush of this instance looks at it).
    pub fn touch(&self, event: EventId) {
        if !self.record {
            return;
        }
        self.touched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(event);
    }

    /// The events touched since the last call.
    pub fn take_touched(&self) -> HashSet<EventId> {
        std::mem::take(&mut *self.touched.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Up to `count` entries after the entry `after`, and Redis's clock.
    pub async fn read_history(
        &self,
        event: EventId,
        after: &str,
        count: usize,
    ) -> Result<HistoryRead> {
        let mut inv = HISTORY.prepare_invoke();
        inv.key(self.keys(event).hist()).arg(after).arg(count);
        let reply = self.invoke(RedisOp::ReadHistory, &inv).await?;
        let Value::Array(parts) = reply else {
            return Err(scripts::unexpected("history", "not an array"));
        };
        let number = |v: Option<&Value>| -> Result<i64> {
            scripts::string(v.unwrap_or(&Value::Nil))?
                .parse::<i64>()
                .map_err(|_| scripts::unexpected("history", "TIME"))
        };
        let now_ms = number(parts.first())? * 1000 + number(parts.get(1))? / 1000;
        let mut entries = Vec::new();
        if let Some(Value::Array(list)) = parts.get(2) {
            for item in list {
                let Value::Array(pair) = item else { continue };
                let (Some(id), Some(Value::Array(fields))) = (pair.first(), pair.get(1)) else {
                    continue;
                };
                let id = scripts::string(id)?;
                let mut map = std::collections::HashMap::new();
                for kv in fields.chunks(2) {
                    if let [k, v] = kv {
                        map.insert(scripts::string(k)?, scripts::string(v)?);
                    }
                }
                if let Some(entry) = parse_entry(&id, &map) {
                    entries.push((id, entry));
                } else {
                    tracing::warn!(event.id = %event, entry = %id, "unreadable history entry skipped");
                }
            }
        }
        Ok(HistoryRead { now_ms, entries })
    }

    /// Deletes the entries up to and including `upto` (copied into Postgres).
    pub async fn trim_history(&self, event: EventId, upto: &str) -> Result<()> {
        let Some(min) = next_id(upto) else {
            return Ok(());
        };
        let key = self.keys(event).hist();
        self.run(RedisOp::TrimHistory, async |conn| {
            redis::cmd("XTRIM")
                .arg(&key)
                .arg("MINID")
                .arg(&min)
                .query_async::<i64>(conn)
                .await
        })
        .await?;
        Ok(())
    }

    /// Adds `events` to the registry of events whose stream may hold entries not yet flushed.
    /// Each instance adds the events it wrote to at its next flush round, so that another
    /// instance finds them without a SCAN of the whole key space if this one stops first.
    pub async fn register_history(&self, events: &[EventId]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let key = history_registry(&self.prefix);
        let mut cmd = redis::cmd("SADD");
        cmd.arg(&key);
        for event in events {
            cmd.arg(event.0);
        }
        self.run(RedisOp::HistoryRegistry, async |conn| {
            cmd.query_async::<i64>(conn).await
        })
        .await?;
        Ok(())
    }

    /// The events of the registry (see [`Self::register_history`]).
    pub async fn registered_history(&self) -> Result<Vec<EventId>> {
        let key = history_registry(&self.prefix);
        let ids: Vec<i64> = self
            .run(RedisOp::HistoryRegistry, async |conn| {
                redis::cmd("SMEMBERS").arg(&key).query_async(conn).await
            })
            .await?;
        Ok(ids.into_iter().map(EventId).collect())
    }

    /// Takes `event` out of the registry once its stream is empty. Not atomic (the registry and
    /// the stream live in different slots): taken out first, then put back if the stream is not
    /// empty; an entry appended in between is the writer's, which registers its events again at
    /// its next flush round.
    pub async fn unregister_history_if_empty(&self, event: EventId) -> Result<()> {
        let key = history_registry(&self.prefix);
        let stream = self.keys(event).hist();
        self.run(RedisOp::HistoryRegistry, async |conn| {
            redis::cmd("SREM")
                .arg(&key)
                .arg(event.0)
                .query_async::<i64>(conn)
                .await
        })
        .await?;
        let left: i64 = self
            .run(RedisOp::HistoryRegistry, async |conn| {
                redis::cmd("XLEN").arg(&stream).query_async(conn).await
            })
            .await?;
        if left > 0 {
            self.register_history(&[event]).await?;
        }
        Ok(())
    }

    /// Every event with a history stream under this prefix (left by any instance).
    pub async fn scan_history_events(&self) -> Result<Vec<EventId>> {
        let pattern = history_pattern(&self.prefix);
        let keys: Vec<String> = self
            .run(RedisOp::ScanHistory, async |conn| {
                super::scan::scan_all(conn, &pattern).await
            })
            .await?;
        Ok(keys
            .iter()
            .filter_map(|k| event_of_history(&self.prefix, k))
            .collect())
    }
}

/// The id right after a stream id (`ms-seq` -> `ms-(seq+1)`).
fn next_id(id: &str) -> Option<String> {
    let (ms, seq) = id.split_once('-')?;
    Some(format!("{ms}-{}", seq.parse::<u64>().ok()?.checked_add(1)?))
}

/// One entry's fields as a [`StreamEntry`]; None for an entry this version cannot read.
fn parse_entry(id: &str, f: &std::collections::HashMap<String, String>) -> Option<StreamEntry> {
    let id_ms = id.split_once('-')?.0.parse::<i64>().ok()?;
    let at_ms = f.get("a").and_then(|a| a.parse().ok()).unwrap_or(id_ms);
    let hold = f
        .get("h")
        .and_then(|h| uuid::Uuid::parse_str(h).ok())
        .map(HoldGroupId);
    let exp = || f.get("x")?.parse::<i64>().ok();
    let lines = |field: &str| -> Vec<String> {
        f.get(field)
            .map(|s| {
                s.split('\n')
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let kind = match f.get("k")?.as_str() {
        "H" => EntryKind::Held {
            user_id: f.get("u")?.clone(),
            expires_at_ms: exp()?,
            seats: lines("s"),
            tiers: lines("t")
                .iter()
                .filter_map(|l| {
                    let (code, q) = l.rsplit_once(' ')?;
                    Some(TierLine {
                        code: code.to_string(),
                        quantity: q.parse().ok()?,
                    })
                })
                .collect(),
        },
        "E" => EntryKind::Extended {
            expires_at_ms: exp()?,
        },
        "P" => EntryKind::Pinned {
            expires_at_ms: exp()?,
        },
        "R" => EntryKind::Released,
        "B" => EntryKind::Booked,
        "D" => EntryKind::Dropped { taken: lines("b") },
        "C" => EntryKind::Cancelled,
        _ => return None,
    };
    Some(StreamEntry {
        at_ms,
        hold: hold?,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_read_back() {
        let h = HoldGroupId::new(EventId(1), crate::domain::holds::HoldStore::Redis);
        let fields = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<std::collections::HashMap<_, _>>()
        };
        let held = parse_entry(
            "1700-0",
            &fields(&[
                ("k", "H"),
                ("h", &h.to_string()),
                ("a", "1699"),
                ("u", "u1"),
                ("x", "9000"),
                ("s", "A1\nA2"),
                ("t", "GA 2"),
            ]),
        )
        .expect("held");
        assert_eq!(held.at_ms, 1699);
        assert_eq!(
            held.kind,
            EntryKind::Held {
                user_id: "u1".into(),
                expires_at_ms: 9000,
                seats: vec!["A1".into(), "A2".into()],
                tiers: vec![TierLine {
                    code: "GA".into(),
                    quantity: 2
                }],
            }
        );
        let dropped = parse_entry(
            "5-1",
            &fields(&[("k", "D"), ("h", &h.to_string()), ("b", "")]),
        )
        .expect("d");
        assert_eq!(dropped.at_ms, 5);
        assert_eq!(dropped.kind, EntryKind::Dropped { taken: vec![] });
        assert!(
            parse_entry("5-1", &fields(&[("k", "R")])).is_none(),
            "a release names its hold"
        );
        assert!(parse_entry("5-1", &fields(&[("k", "?"), ("h", &h.to_string())])).is_none());
        assert_eq!(next_id("17-4").as_deref(), Some("17-5"));
        assert_eq!(next_id("0-0").as_deref(), Some("0-1"));
    }
}
