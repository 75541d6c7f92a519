//! One flush of an event's history, as a Postgres transaction the service steers: it locks the
//! event's head row (another instance flushing the event makes this one skip it), reads the
//! unnumbered rows and the open holds, lets the service read the Redis stream, reads the rows
//! committed meanwhile, then numbers and writes what [`merge`](crate::domain::history::merge)
//! ordered, moves the stream position and queues the webhook messages, and commits.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use super::PgStore;
use super::history::from_ms;
use crate::domain::events::EventId;
use crate::domain::history::merge::{FlushOutput, Pending};
use crate::domain::history::{Change, Group, Status};
use crate::domain::holds::HoldGroupId;
use crate::domain::tiers::TierLine;
use crate::domain::webhooks::Message;
use crate::error::{Error, Result};
use crate::telemetry::{self, PgOp};

#[path = "history_open.rs"]
mod open;

/// A flush in progress: the open transaction holding the event's head row.
pub struct HistoryFlush {
    tx: Transaction<'static, Postgres>,
    event: EventId,
    last_seq: i64,
    stream_pos: String,
    early: HashSet<i64>,
    started: Instant,
}

/// An unnumbered row.
#[derive(sqlx::FromRow)]
struct PendingRow {
    change_id: i64,
    op: i64,
    at: DateTime<Utc>,
    seat_code: Option<String>,
    tier_code: Option<String>,
    quantity: Option<i32>,
    change: String,
    status: String,
    hold_group_id: uuid::Uuid,
    user_id: String,
    expires_at: Option<DateTime<Utc>>,
    price_cents: i64,
    traceparent: Option<String>,
}

impl PgStore {
    /// Starts a flush of `event`'s history; None when another flush of it is running.
    pub async fn begin_history_flush(&self, event: EventId) -> Result<Option<HistoryFlush>> {
        let started = Instant::now();
        let mut tx = self.pool.begin().await?;
        // No JIT for this transaction: the planner's estimate of the open-hold read's join (ten
        // seats a hold) crosses `jit_above_cost` and compiling took 134 ms of a 30 ms query.
        sqlx::query(
            "INSERT INTO history_heads (event_id) \
             SELECT $1 FROM (SELECT set_config('jit', 'off', true)) AS no_jit \
             ON CONFLICT DO NOTHING",
        )
        .bind(event.0)
        .execute(&mut *tx)
        .await?;
        let head: Option<(i64, String)> = sqlx::query_as(
            "SELECT last_seq, stream_pos FROM history_heads WHERE event_id = $1 \
             FOR UPDATE SKIP LOCKED",
        )
        .bind(event.0)
        .fetch_optional(&mut *tx)
        .await?;
        Ok(head.map(|(last_seq, stream_pos)| HistoryFlush {
            tx,
            event,
            last_seq,
            stream_pos,
            early: HashSet::new(),
            started,
        }))
    }
}

impl HistoryFlush {
    /// The id of the last stream entry copied ("0-0" before the first).
    pub fn stream_pos(&self) -> &str {
        &self.stream_pos
    }

    /// The unnumbered rows and Postgres's clock (ms), read before the stream.
    pub async fn read_before_stream(&mut self) -> Result<(Vec<Pending>, i64)> {
        let pending = self.read_pending(true).await?;
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&mut *self.tx)
            .await?;
        Ok((pending, now.timestamp_millis()))
    }

    /// The rows committed since [`read_before_stream`](Self::read_before_stream).
    pub async fn read_after_stream(&mut self) -> Result<Vec<Pending>> {
        self.read_pending(false).await
    }

    async fn read_pending(&mut self, early: bool) -> Result<Vec<Pending>> {
        // Rows of one transaction share its xmin: one operation's rows, one group.
        let rows = sqlx::query_as::<_, PendingRow>(
            "SELECT change_id, xmin::text::bigint AS op, at, seat_code, tier_code, quantity, \
                    change, status, hold_group_id, user_id, expires_at, price_cents, traceparent \
             FROM seat_changes WHERE event_id = $1 AND seq IS NULL ORDER BY change_id LIMIT 20000",
        )
        .bind(self.event.0)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut groups: Vec<Group> = Vec::new();
        let mut index: HashMap<(i64, uuid::Uuid, String), usize> = HashMap::new();
        for r in rows {
            if !early && self.early.contains(&r.change_id) {
                continue;
            }
            if early {
                self.early.insert(r.change_id);
            }
            let change = Change::parse(&r.change)
                .ok_or_else(|| Error::Internal("unknown change in seat_changes".into()))?;
            let key = (r.op, r.hold_group_id, r.change.clone());
            let i = *index.entry(key).or_insert_with(|| {
                groups.push(Group {
                    change,
                    hold: HoldGroupId(r.hold_group_id),
                    user_id: r.user_id.clone(),
                    at_ms: r.at.timestamp_millis(),
                    expires_at_ms: r.expires_at.map(|t| t.timestamp_millis()),
                    seats: Vec::new(),
                    tiers: Vec::new(),
                    price_cents: 0,
                    pending_ids: Vec::new(),
                    traceparent: r.traceparent.clone(),
                });
                groups.len() - 1
            });
            let g = &mut groups[i];
            g.pending_ids.push(r.change_id);
            g.price_cents += r.price_cents;
            let status = Status::parse(&r.status).unwrap_or(change.status());
            match (r.seat_code, r.tier_code) {
                (Some(code), _) => g.seats.push((code, status)),
                (None, Some(code)) => g.tiers.push(TierLine {
                    code,
                    quantity: r.quantity.unwrap_or(0).max(0) as u32,
                }),
                (None, None) => {}
            }
        }
        Ok(groups
            .into_iter()
            .map(|group| Pending { group, early })
            .collect())
    }

    /// Numbers and writes what the merge ordered, moves the stream position to `stream_pos`,
    /// queues the webhook messages each recorded group makes, and commits. Returns the groups
    /// with the last `seq` each got.
    pub async fn finish(
        mut self,
        output: &FlushOutput,
        stream_pos: Option<&str>,
        message_of: impl Fn(&Group, i64) -> Option<Message>,
    ) -> Result<Vec<(Group, i64)>> {
        let event = self.event.0;
        let mut seq = self.last_seq;
        let mut numbered = Vec::with_capacity(output.groups.len());
        // Pending rows get their number in place; the stream's groups are inserted.
        let (mut ids, mut seqs) = (Vec::new(), Vec::new());
        let mut new = NewRows::default();
        for g in &output.groups {
            if g.pending_ids.is_empty() {
                for r in g.records(seq + 1) {
                    new.push(&r, g.price_cents);
                }
            } else {
                for (i, id) in g.pending_ids.iter().enumerate() {
                    ids.push(*id);
                    seqs.push(seq + 1 + i as i64);
                }
            }
            seq += g.len().max(g.pending_ids.len()) as i64;
            numbered.push((g.clone(), seq));
        }
        if !ids.is_empty() {
            sqlx::query(
                "UPDATE seat_changes c SET seq = u.seq \
                 FROM unnest($1::bigint[], $2::bigint[]) AS u(id, seq) WHERE c.change_id = u.id",
            )
            .bind(&ids)
            .bind(&seqs)
            .execute(&mut *self.tx)
            .await?;
        }
        new.insert(&mut self.tx, event).await?;
        self.write_open(output).await?;
        let pos = stream_pos.unwrap_or(&self.stream_pos).to_string();
        sqlx::query("UPDATE history_heads SET last_seq = $2, stream_pos = $3 WHERE event_id = $1")
            .bind(event)
            .bind(seq)
            .bind(&pos)
            .execute(&mut *self.tx)
            .await?;
        // Messages are made only when some endpoint could want them.
        let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM webhook_endpoints)")
            .fetch_one(&mut *self.tx)
            .await?;
        if any && !numbered.is_empty() {
            let messages: Vec<Message> = numbered
                .iter()
                .filter_map(|(g, s)| message_of(g, *s))
                .collect();
            super::webhooks::queue_messages(&mut self.tx, EventId(event), &messages).await?;
        }
        let started = self.started;
        let result = self.tx.commit().await;
        telemetry::record_postgres(PgOp::HistoryFlush, started.elapsed(), result.is_ok());
        result?;
        Ok(numbered)
    }

    async fn write_open(&mut self, output: &FlushOutput) -> Result<()> {
        let event = self.event.0;
        if !output.open_deletes.is_empty() {
            let gone: Vec<uuid::Uuid> = output.open_deletes.iter().map(|h| h.0).collect();
            sqlx::query(
                "DELETE FROM history_open_holds WHERE event_id = $1 AND hold_group_id = ANY($2)",
            )
            .bind(event)
            .bind(&gone)
            .execute(&mut *self.tx)
            .await?;
        }
        if output.open_upserts.is_empty() {
            return Ok(());
        }
        // One statement for every upsert: each hold's lists travel joined by "\n" (codes have
        // no whitespace) and are split again in SQL.
        let list = |v: &mut dyn Iterator<Item = String>| v.collect::<Vec<_>>().join("\n");
        let ups = &output.open_upserts;
        let holds: Vec<uuid::Uuid> = ups.iter().map(|h| h.hold.0).collect();
        let users: Vec<&str> = ups.iter().map(|h| h.user_id.as_str()).collect();
        let seats: Vec<String> = ups.iter().map(|h| h.seats.join("\n")).collect();
        let codes: Vec<String> = ups
            .iter()
            .map(|h| list(&mut h.tiers.iter().map(|l| l.code.clone())))
            .collect();
        let quantities: Vec<String> = ups
            .iter()
            .map(|h| list(&mut h.tiers.iter().map(|l| l.quantity.to_string())))
            .collect();
        let ends: Vec<DateTime<Utc>> = ups.iter().map(|h| from_ms(h.expires_at_ms)).collect();
        sqlx::query(
            "INSERT INTO history_open_holds (event_id, hold_group_id, user_id, seat_codes, \
                                             tier_codes, tier_quantities, expires_at) \
             SELECT $1, h, u, string_to_array(s, E'\\n'), string_to_array(c, E'\\n'), \
                    string_to_array(q, E'\\n')::int[], x \
               FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], \
                           $7::timestamptz[]) AS v(h, u, s, c, q, x) \
             ON CONFLICT ON CONSTRAINT history_open_holds_pkey DO UPDATE \
               SET seat_codes = EXCLUDED.seat_codes, expires_at = EXCLUDED.expires_at",
        )
        .bind(event)
        .bind(&holds)
        .bind(&users)
        .bind(&seats)
        .bind(&codes)
        .bind(&quantities)
        .bind(&ends)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

/// New rows, column by column, for one `INSERT ... SELECT FROM unnest(...)`.
#[derive(Default)]
struct NewRows {
    seq: Vec<i64>,
    at: Vec<DateTime<Utc>>,
    seat: Vec<Option<String>>,
    tier: Vec<Option<String>>,
    quantity: Vec<Option<i32>>,
    change: Vec<&'static str>,
    status: Vec<&'static str>,
    hold: Vec<uuid::Uuid>,
    booking: Vec<Option<uuid::Uuid>>,
    user: Vec<String>,
    expires: Vec<Option<DateTime<Utc>>>,
}

impl NewRows {
    fn push(&mut self, r: &crate::domain::history::ChangeRecord, _price: i64) {
        use crate::domain::history::Item;
        self.seq.push(r.seq);
        self.at.push(from_ms(r.at_ms));
        match &r.item {
            Item::Seat(code) => {
                self.seat.push(Some(code.clone()));
                self.tier.push(None);
                self.quantity.push(None);
            }
            Item::Tier { code, quantity } => {
                self.seat.push(None);
                self.tier.push(Some(code.clone()));
                self.quantity.push(Some(*quantity as i32));
            }
        }
        self.change.push(r.change.as_str());
        self.status.push(r.status.as_str());
        self.hold.push(r.hold.0);
        self.booking.push(r.booking.map(|b| b.0));
        self.user.push(r.user_id.clone());
        self.expires.push(r.expires_at_ms.map(from_ms));
    }

    async fn insert(&self, tx: &mut Transaction<'static, Postgres>, event: i64) -> Result<()> {
        if self.seq.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO seat_changes (event_id, seq, at, seat_code, tier_code, quantity, change, \
                                       status, hold_group_id, booking_group_id, user_id, expires_at) \
             SELECT $1, * FROM unnest($2::bigint[], $3::timestamptz[], $4::text[], $5::text[], \
                                      $6::int[], $7::text[], $8::text[], $9::uuid[], $10::uuid[], \
                                      $11::text[], $12::timestamptz[])",
        )
        .bind(event)
        .bind(&self.seq)
        .bind(&self.at)
        .bind(&self.seat)
        .bind(&self.tier)
        .bind(&self.quantity)
        .bind(&self.change)
        .bind(&self.status)
        .bind(&self.hold)
        .bind(&self.booking)
        .bind(&self.user)
        .bind(&self.expires)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}
