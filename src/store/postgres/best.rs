//! Best-available holds in Postgres (the fallback and the Postgres-only mode): the same choice
//! as `lua/best.lua` ([`choose_best`]), made inside the hold's transaction. Best-available
//! requests of one event take turns (a transaction-scoped advisory lock, and before it a turn in
//! the process, so waiting does not hold a pooled connection), so two never choose the same
//! seats; a manual hold that takes a chosen seat first makes the choice run again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::channels;
use super::holds::InsertHold;
use super::policy::{self, EventPolicyNow};
use super::{End, PgStore, Transaction};
use crate::domain::best::{BestChoice, BestFilter, Slot, choose_best};
use crate::domain::events::EventId;
use crate::domain::holds::{Caps, HoldAttempt, HoldGroupId};
use crate::domain::policy::{HoldCaller, SalesWindow};
use crate::error::Result;
use crate::telemetry::PgOp;

/// Tries of the choice when manual holds keep taking its seats first.
const TRIES: usize = 3;

struct InsertBestHold {
    event: EventId,
    id: HoldGroupId,
    user_id: String,
    count: u32,
    filter: BestFilter,
    ttl: Duration,
    caps: Caps,
    caller: HoldCaller,
    record: bool,
}

/// The event's rows in creation order, each its seats in number order, with what is free now.
/// Only seats the caller may hold now are eligible (blocked seats are never free).
async fn read_rows(
    tx: &mut PgConnection,
    event: EventId,
    filter: &BestFilter,
    sales: &EventPolicyNow,
    caller: &HoldCaller,
) -> Result<Vec<Vec<Slot>>> {
    #[derive(sqlx::FromRow)]
    struct RowSeat {
        seat_code: String,
        row_label: String,
        seat_number: i32,
        seat_type: String,
        price_cents: i64,
        free: bool,
        channel: Option<String>,
        sales_start: Option<DateTime<Utc>>,
        sales_end: Option<DateTime<Utc>>,
    }
    let seats: Vec<RowSeat> = sqlx::query_as(
        "SELECT s.seat_code, s.row_label, s.seat_number, s.seat_type, s.price_cents, \
                (b.seat_code IS NULL AND h.seat_code IS NULL AND s.blocked_reason IS NULL) \
                  AS free, \
                s.channel, c.sales_start, c.sales_end \
         FROM seats s \
         LEFT JOIN booking_seats b \
           ON b.event_id = s.event_id AND b.seat_code = s.seat_code AND b.active \
         LEFT JOIN held_seats h \
           ON h.event_id = s.event_id AND h.seat_code = s.seat_code AND h.held_until > now() \
         LEFT JOIN event_channels c ON c.event_id = s.event_id AND c.channel = s.channel \
         WHERE s.event_id = $1 AND s.row_label IS NOT NULL AND s.seat_number IS NOT NULL \
         ORDER BY min(s.position) OVER (PARTITION BY s.row_label), s.seat_number",
    )
    .bind(event.0)
    .fetch_all(&mut *tx)
    .await?;
    let mut rows: Vec<Vec<Slot>> = Vec::new();
    let mut current: Option<String> = None;
    for seat in seats {
        let RowSeat {
            seat_code: code,
            row_label: row,
            seat_number: number,
            seat_type,
            price_cents,
            free,
            channel,
            sales_start: start,
            sales_end: end,
        } = seat;
        if current.as_ref() != Some(&row) {
            rows.push(Vec::new());
            current = Some(row);
        }
        if let Some(last) = rows.last_mut() {
            let eligible = free
                && filter.accepts(&seat_type, price_cents)
                && policy::seat_allowed(
                    sales,
                    caller,
                    channel.as_deref(),
                    SalesWindow { start, end },
                );
            last.push(Slot {
                code,
                number,
                free,
                eligible,
            });
        }
    }
    Ok(rows)
}

impl Transaction for InsertBestHold {
    type Output = (HoldAttempt, Vec<String>);
    const OP: PgOp = PgOp::Best;

    async fn run(&self, tx: &mut PgConnection) -> Result<End<(HoldAttempt, Vec<String>)>> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('best:' || $1::text, 0))")
            .bind(self.event.0)
            .execute(&mut *tx)
            .await?;
        // A keyed retry of a hold taken already: the same hold, with its seats.
        let existing: Option<(String, Vec<String>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT user_id, seat_codes, held_until FROM holds \
             WHERE event_id = $1 AND hold_group_id = $2 AND held_until > now()",
        )
        .bind(self.event.0)
        .bind(self.id.0)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((_, seats, until)) = existing.filter(|(owner, _, _)| *owner == self.user_id) {
            let expires_at_ms = until.timestamp_millis();
            return Ok(End::Commit((HoldAttempt::Held { expires_at_ms }, seats)));
        }
        let Some(sales) = policy::read_event_policy(tx, self.event).await? else {
            return Ok(End::Rollback((
                HoldAttempt::Unknown(Vec::new()),
                Vec::new(),
            )));
        };
        if !policy::admitted(self.event, &sales, &self.caller) {
            return Ok(End::Rollback((HoldAttempt::AdmissionRefused, Vec::new())));
        }
        let channel_windows = if self.caller.channels.is_empty() {
            Vec::new()
        } else {
            channels::channel_windows(tx, self.event).await?
        };
        if let Some(refused) = policy::best_refusal(&sales, &self.caller, &channel_windows) {
            return Ok(End::Rollback((refused, Vec::new())));
        }
        for _ in 0..TRIES {
            let rows = read_rows(tx, self.event, &self.filter, &sales, &self.caller).await?;
            let seats = match choose_best(&rows, self.count as usize) {
                BestChoice::NoBlock { available } => {
                    return Ok(End::Rollback((
                        HoldAttempt::NoBlock { available },
                        Vec::new(),
                    )));
                }
                BestChoice::Seats(seats) => seats,
            };
            sqlx::query("SAVEPOINT best_choice")
                .execute(&mut *tx)
                .await?;
            let hold = InsertHold {
                event: self.event,
                id: self.id,
                user_id: self.user_id.clone(),
                seats: seats.clone(),
                tiers: Vec::new(),
                ttl: self.ttl,
                caps: self.caps,
                caller: self.caller.clone(),
                record: self.record,
            };
            match hold.run(tx).await? {
                End::Commit(attempt) => return Ok(End::Commit((attempt, seats))),
                End::Rollback(HoldAttempt::Unavailable { .. }) => {
                    // A manual hold took a chosen seat between the read and the insert.
                    sqlx::query("ROLLBACK TO SAVEPOINT best_choice")
                        .execute(&mut *tx)
                        .await?;
                }
                End::Rollback(attempt) => return Ok(End::Rollback((attempt, Vec::new()))),
            }
        }
        Ok(End::Rollback((
            HoldAttempt::NoBlock { available: 0 },
            Vec::new(),
        )))
    }
}

impl PgStore {
    /// Chooses and holds `count` seats together in Postgres (see [`InsertBestHold`]); a hold
    /// taken comes back with its seats.
    #[expect(
        clippy::too_many_arguments,
        reason = "one hold request, passed field by field"
    )]
    pub async fn insert_best_hold(
        &self,
        event: EventId,
        id: HoldGroupId,
        user_id: &str,
        count: u32,
        filter: &BestFilter,
        ttl: Duration,
        caps: Caps,
        caller: &HoldCaller,
    ) -> Result<(HoldAttempt, Vec<String>)> {
        // One at a time per event in this process (the advisory lock orders instances).
        let _turn = self.best_turn(event).lock().await;
        self.execute(InsertBestHold {
            event,
            id,
            user_id: user_id.to_string(),
            count,
            filter: filter.clone(),
            ttl,
            caps,
            caller: caller.clone(),
            record: self.record,
        })
        .await
    }
}
