//! Postgres holds: the fallback while Redis is down, and the Postgres-only mode. A hold is one
//! `holds` row (owner, seats, tier lines, `held_until`), one `held_seats` row per seat and one
//! `held_tiers` row per tier line; a row whose `held_until` has passed is ignored at once (the
//! Postgres clock decides) and swept later.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, Row};

use super::history::{self, HoldRows};
use super::{End, PgStore, Transaction, caps, tiers};
use super::{policy, pools};
use crate::domain::bookings::Freed;
use crate::domain::events::EventId;
use crate::domain::history::Change;
use crate::domain::holds::{Caps, HoldAttempt, HoldGroupId, StoredHold};
use crate::domain::policy::HoldCaller;
use crate::domain::tiers::TierLine;
use crate::error::Result;
use crate::telemetry::PgOp;

/// The hold-row query; `FOR UPDATE` is appended where the row must stay locked.
macro_rules! hold_row_sql {
    () => {
        "SELECT user_id, seat_codes, tier_codes, tier_quantities, held_until > now() FROM holds \
         WHERE event_id = $1 AND hold_group_id = $2"
    };
}

/// Reads one hold row, locked when `lock` (inside a transaction that then decides on it).
pub(super) async fn read_hold<'e>(
    db: impl PgExecutor<'e>,
    event: EventId,
    id: HoldGroupId,
    lock: bool,
) -> Result<Option<StoredHold>> {
    let sql = if lock {
        concat!(hold_row_sql!(), " FOR UPDATE")
    } else {
        hold_row_sql!()
    };
    type HoldRow = (String, Vec<String>, Vec<String>, Vec<i32>, bool);
    let row: Option<HoldRow> = sqlx::query_as(sql)
        .bind(event.0)
        .bind(id.0)
        .fetch_optional(db)
        .await?;
    Ok(
        row.map(|(user_id, seats, codes, quantities, alive)| StoredHold {
            user_id,
            seats,
            tiers: tiers::lines(codes, quantities),
            alive,
        }),
    )
}

/// Takes an all-or-nothing hold: the requested seat rows are locked in code order, then one
/// conditional statement inserts every seat's `held_seats` row only if none is booked or held by
/// a live hold; the requested tier rows are locked and checked for units left, and a shortage
/// rolls the whole hold back. A repeat with the same id and user acknowledges the existing hold.
pub(super) struct InsertHold {
    pub event: EventId,
    pub id: HoldGroupId,
    pub user_id: String,
    pub seats: Vec<String>,
    pub tiers: Vec<TierLine>,
    pub ttl: Duration,
    pub caps: Caps,
    pub caller: HoldCaller,
    /// Whether the history rows are written (`history.enabled`).
    pub record: bool,
}

impl Transaction for InsertHold {
    type Output = HoldAttempt;
    const OP: PgOp = PgOp::Hold;

    async fn run(&self, tx: &mut PgConnection) -> Result<End<HoldAttempt>> {
        let (event, seats) = (self.event.0, &self.seats);
        if self.caps.any() {
            caps::lock_buyer(tx, self.event, &self.user_id).await?;
        }
        let existing: Option<(String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT user_id, held_until FROM holds \
             WHERE event_id = $1 AND hold_group_id = $2 AND held_until > now()",
        )
        .bind(event)
        .bind(self.id.0)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((_, until)) = existing.filter(|(owner, _)| *owner == self.user_id) {
            let expires_at_ms = until.timestamp_millis();
            return Ok(End::Commit(HoldAttempt::Held { expires_at_ms }));
        }
        // The admission first (a Queue-it token of another event is refused before anything).
        let Some(sales) = policy::read_event_policy(tx, self.event).await? else {
            return Ok(End::Rollback(HoldAttempt::Unknown(seats.clone())));
        };
        if !policy::admitted(self.event, &sales, &self.caller) {
            return Ok(End::Rollback(HoldAttempt::AdmissionRefused));
        }
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT seat_code FROM seats WHERE event_id = $1 AND seat_code = ANY($2) \
             ORDER BY seat_code FOR UPDATE",
        )
        .bind(event)
        .bind(seats)
        .fetch_all(&mut *tx)
        .await?;
        if found.len() != seats.len() {
            let unknown = seats.iter().filter(|s| !found.contains(s)).cloned();
            return Ok(End::Rollback(HoldAttempt::Unknown(unknown.collect())));
        }
        let tier_check = tiers::lock_tiers(tx, self.event, self.id, &self.tiers).await?;
        if !tier_check.unknown.is_empty() {
            return Ok(End::Rollback(HoldAttempt::UnknownTiers(tier_check.unknown)));
        }
        // Units of channels' allocations: only their callers take them, each in its window.
        let pools = pools::plan(
            tx,
            self.event,
            self.id,
            &sales,
            &self.caller,
            &self.tiers,
            &tier_check.left,
        )
        .await?;
        let mut tier_check = tier_check;
        tier_check
            .short
            .retain(|s| !pools.decided.contains(&s.code));
        tier_check.short.extend(pools.short);
        let tiers_asked = !self.tiers.is_empty() && !pools.own_open;
        let foreign =
            match policy::check_hold(tx, self.event, &sales, seats, tiers_asked, &self.caller)
                .await?
            {
                Ok(foreign) => foreign,
                Err(refused) => return Ok(End::Rollback(refused)),
            };
        // One conditional statement: every seat or none. It runs after the seat locks are held,
        // so its snapshot sees every booking and hold committed before it.
        let row = sqlx::query(
            "WITH busy AS ( \
               SELECT seat_code, 'booked' AS why FROM booking_seats \
                WHERE event_id = $1 AND seat_code = ANY($2) AND active \
               UNION ALL \
               SELECT seat_code, 'held' FROM held_seats \
                WHERE event_id = $1 AND seat_code = ANY($2) AND held_until > now() \
               UNION ALL \
               SELECT seat_code, 'blocked' FROM seats \
                WHERE event_id = $1 AND seat_code = ANY($2) AND blocked_reason IS NOT NULL \
             ), taken AS ( \
               INSERT INTO held_seats (event_id, seat_code, hold_group_id, held_until) \
               SELECT $1, code, $3, now() + make_interval(secs => $4::double precision / 1000) \
                 FROM unnest($2::text[]) AS code WHERE NOT EXISTS (SELECT 1 FROM busy) \
               ON CONFLICT ON CONSTRAINT held_seats_pkey DO UPDATE \
                 SET hold_group_id = EXCLUDED.hold_group_id, held_until = EXCLUDED.held_until \
                 WHERE held_seats.held_until <= now() \
               RETURNING held_until \
             ) \
             SELECT (SELECT count(*) FROM taken) AS taken, \
                    (SELECT max(held_until) FROM taken) AS held_until, \
                    COALESCE((SELECT array_agg(seat_code) FROM busy \
                               WHERE why IN ('booked', 'blocked')), '{}') AS booked, \
                    COALESCE((SELECT array_agg(seat_code) FROM busy WHERE why = 'blocked'), '{}') \
                      AS blocked, \
                    COALESCE((SELECT array_agg(seat_code) FROM busy WHERE why = 'held'), '{}') \
                      AS held",
        )
        .bind(event)
        .bind(seats)
        .bind(self.id.0)
        .bind(self.ttl.as_millis() as i64)
        .fetch_one(&mut *tx)
        .await?;
        let taken: i64 = row.try_get("taken")?;
        if taken != seats.len() as i64 || !tier_check.short.is_empty() || !foreign.is_empty() {
            // Some seats taken or another channel's, or a tier short: nothing stays (the seats
            // just written roll back).
            let (booked, held, blocked) = if taken == seats.len() as i64 {
                (Vec::new(), Vec::new(), Vec::new())
            } else {
                let list = |c: &str| row.try_get::<Vec<String>, _>(c);
                (list("booked")?, list("held")?, list("blocked")?)
            };
            let short = tier_check.short;
            return Ok(End::Rollback(HoldAttempt::Unavailable {
                booked,
                held,
                short,
                blocked,
                channel: foreign,
            }));
        }
        // The buyer's caps, as in Redis: only for a hold that could otherwise be taken (taken or
        // blocked seats are refused as such first).
        let asked = caps::Asked {
            event: self.event,
            hold: self.id,
            user_id: &self.user_id,
            seats: seats.len(),
            tiers: &self.tiers,
        };
        if let Some(refused) = caps::over_caps(tx, &asked, self.caps).await? {
            return Ok(End::Rollback(refused));
        }
        if let Some(refused) = policy::check_admission(tx, self.event, &self.caller).await? {
            return Ok(End::Rollback(refused));
        }
        let until: DateTime<Utc> = match row.try_get::<Option<DateTime<Utc>>, _>("held_until")? {
            Some(until) => until,
            // A hold of tier units only: no seat row gave the time.
            None => {
                sqlx::query_scalar(
                    "SELECT now() + make_interval(secs => $1::double precision / 1000)",
                )
                .bind(self.ttl.as_millis() as i64)
                .fetch_one(&mut *tx)
                .await?
            }
        };
        tiers::insert_held_tiers(tx, self.event, self.id, &self.tiers, &pools.parts, until).await?;
        let (codes, quantities) = tiers::arrays(&self.tiers);
        sqlx::query(
            "INSERT INTO holds (event_id, hold_group_id, user_id, seat_codes, held_until, \
                                tier_codes, tier_quantities, admission) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT ON CONSTRAINT holds_pkey DO UPDATE \
               SET user_id = EXCLUDED.user_id, seat_codes = EXCLUDED.seat_codes, \
                   held_until = EXCLUDED.held_until, tier_codes = EXCLUDED.tier_codes, \
                   tier_quantities = EXCLUDED.tier_quantities, created_at = now(), renewals = 0, \
                   admission = EXCLUDED.admission",
        )
        .bind(event)
        .bind(self.id.0)
        .bind(&self.user_id)
        .bind(seats)
        .bind(until)
        .bind(&codes)
        .bind(&quantities)
        .bind(self.caller.admission.as_ref().map(|a| a.buyer.as_str()))
        .execute(&mut *tx)
        .await?;
        let rows = HoldRows {
            change: Change::Held,
            hold: self.id,
            user_id: &self.user_id,
            seats,
            tiers: &self.tiers,
            expires_at: Some(until),
        };
        if self.record {
            history::insert_hold_rows(tx, self.event, rows).await?;
        }
        let expires_at_ms = until.timestamp_millis();
        Ok(End::Commit(HoldAttempt::Held { expires_at_ms }))
    }
}

/// Deletes a live hold of one user; its seats and units, or None if it was not there (or not
/// alive, or not theirs).
struct DeleteHold {
    event: EventId,
    id: HoldGroupId,
    user_id: String,
    record: bool,
}

impl Transaction for DeleteHold {
    type Output = Option<Freed>;
    const OP: PgOp = PgOp::Release;

    async fn run(&self, tx: &mut PgConnection) -> Result<End<Option<Freed>>> {
        let deleted: Option<(Vec<String>, Vec<String>, Vec<i32>)> = sqlx::query_as(
            "DELETE FROM holds WHERE event_id = $1 AND hold_group_id = $2 AND user_id = $3 \
             AND held_until > now() RETURNING seat_codes, tier_codes, tier_quantities",
        )
        .bind(self.event.0)
        .bind(self.id.0)
        .bind(&self.user_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((seats, codes, quantities)) = deleted else {
            return Ok(End::Rollback(None));
        };
        delete_held_seats(tx, self.event, self.id).await?;
        tiers::delete_held_tiers(tx, self.event, self.id).await?;
        let freed = Freed {
            seats,
            tiers: tiers::lines(codes, quantities),
        };
        let rows = HoldRows {
            change: Change::Released,
            hold: self.id,
            user_id: &self.user_id,
            seats: &freed.seats,
            tiers: &freed.tiers,
            expires_at: None,
        };
        if self.record {
            history::insert_hold_rows(tx, self.event, rows).await?;
        }
        Ok(End::Commit(Some(freed)))
    }
}

/// Deletes the seat rows of one hold (released or confirmed).
pub(super) async fn delete_held_seats(
    tx: &mut PgConnection,
    event: EventId,
    id: HoldGroupId,
) -> Result<()> {
    sqlx::query("DELETE FROM held_seats WHERE event_id = $1 AND hold_group_id = $2")
        .bind(event.0)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

impl PgStore {
    /// Takes an all-or-nothing hold in Postgres under the buyer's caps (see [`InsertHold`]).
    #[expect(
        clippy::too_many_arguments,
        reason = "one hold request, passed field by field"
    )]
    pub async fn insert_hold(
        &self,
        event: EventId,
        id: HoldGroupId,
        user_id: &str,
        seats: &[String],
        tiers: &[TierLine],
        ttl: Duration,
        caps: Caps,
        caller: &HoldCaller,
    ) -> Result<HoldAttempt> {
        self.execute(InsertHold {
            event,
            id,
            user_id: user_id.to_string(),
            seats: seats.to_vec(),
            tiers: tiers.to_vec(),
            ttl,
            caps,
            caller: caller.clone(),
            record: self.record,
        })
        .await
    }

    /// Reads a Postgres hold (alive, or expired but not yet swept).
    pub async fn fetch_hold(&self, event: EventId, id: HoldGroupId) -> Result<Option<StoredHold>> {
        self.timed(PgOp::FetchHold, read_hold(&self.pool, event, id, false))
            .await
    }

    /// A live Postgres hold's seats and when it was taken, in ms since the epoch (the Postgres
    /// clock); None if it is not live.
    pub async fn live_hold_seats(
        &self,
        event: EventId,
        id: HoldGroupId,
    ) -> Result<Option<(Vec<String>, i64)>> {
        let query = sqlx::query_as(
            "SELECT seat_codes, (extract(epoch FROM created_at) * 1000)::bigint FROM holds \
             WHERE event_id = $1 AND hold_group_id = $2 AND held_until > now()",
        )
        .bind(event.0)
        .bind(id.0)
        .fetch_optional(&self.pool);
        self.timed(PgOp::FetchHold, query).await
    }

    /// Deletes a live Postgres hold of `user_id` and returns its seats and units; None if it
    /// was not there (or not alive, or not theirs).
    pub async fn delete_hold(
        &self,
        event: EventId,
        id: HoldGroupId,
        user_id: &str,
    ) -> Result<Option<Freed>> {
        let user_id = user_id.to_string();
        self.execute(DeleteHold {
            event,
            id,
            user_id,
            record: self.record,
        })
        .await
    }
}
