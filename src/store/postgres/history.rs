//! The history in Postgres: the unnumbered rows the confirm, cancel and Postgres-hold
//! transactions write beside their change, the reads of `GET /events/{id}/changes` and of one
//! seat's history, the events a flush should look at, and the retention sweep. The flush itself
//! is [`super::history_flush`].

use chrono::{DateTime, TimeZone, Utc};
use sqlx::PgConnection;

use super::PgStore;
use crate::domain::events::EventId;
use crate::domain::history::{Change, ChangeRecord, Item, Status};
use crate::domain::holds::HoldGroupId;
use crate::domain::tiers::TierLine;
use crate::error::{Error, Result};
use crate::telemetry::PgOp;

/// The records one change of a hold makes (its seats and tier lines), to write unnumbered.
pub(super) struct HoldRows<'a> {
    pub change: Change,
    pub hold: HoldGroupId,
    pub user_id: &'a str,
    pub seats: &'a [String],
    pub tiers: &'a [TierLine],
    pub expires_at: Option<DateTime<Utc>>,
}

/// Writes the unnumbered rows of one change of a Postgres hold, in the transaction that makes it.
pub(super) async fn insert_hold_rows(
    tx: &mut PgConnection,
    event: EventId,
    rows: HoldRows<'_>,
) -> Result<()> {
    let (codes, quantities) = super::tiers::arrays(rows.tiers);
    let status = rows.change.status().as_str();
    sqlx::query(
        "INSERT INTO seat_changes (event_id, at, seat_code, tier_code, quantity, change, status, \
                                   hold_group_id, user_id, expires_at) \
         SELECT $1, clock_timestamp(), s, NULL, NULL, $2, $3, $4, $5, $6 \
           FROM unnest($7::text[]) WITH ORDINALITY AS u(s, n) \
         UNION ALL \
         SELECT $1, clock_timestamp(), NULL, t, q, $2, $8, $4, $5, $6 \
           FROM unnest($9::text[], $10::int[]) AS v(t, q)",
    )
    .bind(event.0)
    .bind(rows.change.as_str())
    .bind(status)
    .bind(rows.hold.0)
    .bind(rows.user_id)
    .bind(rows.expires_at)
    .bind(rows.seats)
    .bind(status)
    .bind(&codes)
    .bind(&quantities)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Writes the unnumbered rows of a booking confirmed (`Booked`) or cancelled (`Cancelled`), from
/// its seat and tier lines with their prices, in the transaction that books or cancels it.
pub(super) async fn insert_booking_rows(
    tx: &mut PgConnection,
    event: EventId,
    id: HoldGroupId,
    user_id: &str,
    change: Change,
) -> Result<()> {
    let status = change.status().as_str();
    sqlx::query(
        "INSERT INTO seat_changes (event_id, at, seat_code, tier_code, quantity, change, status, \
                                   hold_group_id, booking_group_id, user_id, price_cents, \
                                   traceparent) \
         SELECT $1, clock_timestamp(), seat_code, NULL, NULL, $3, $4, $2, $2, $5, price_cents, $6 \
           FROM booking_seats WHERE event_id = $1 AND booking_group_id = $2 \
         UNION ALL \
         SELECT $1, clock_timestamp(), NULL, tier_code, quantity, $3, $4, $2, $2, $5, \
                price_cents * quantity, $6 \
           FROM booking_tiers WHERE event_id = $1 AND booking_group_id = $2",
    )
    .bind(event.0)
    .bind(id.0)
    .bind(change.as_str())
    .bind(status)
    .bind(user_id)
    // The request's span, for the booking's webhook messages (while traces are exported).
    .bind(crate::telemetry::current_traceparent())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A numbered history row.
#[derive(sqlx::FromRow)]
struct ChangeRow {
    seq: i64,
    at: DateTime<Utc>,
    seat_code: Option<String>,
    tier_code: Option<String>,
    quantity: Option<i32>,
    change: String,
    status: String,
    hold_group_id: uuid::Uuid,
    booking_group_id: Option<uuid::Uuid>,
    user_id: String,
    expires_at: Option<DateTime<Utc>>,
}

impl TryFrom<ChangeRow> for ChangeRecord {
    type Error = Error;

    fn try_from(r: ChangeRow) -> Result<Self> {
        let item = match (r.seat_code, r.tier_code) {
            (Some(code), _) => Item::Seat(code),
            (None, Some(code)) => Item::Tier {
                code,
                quantity: r.quantity.unwrap_or(0).max(0) as u32,
            },
            (None, None) => return Err(Error::Internal("a change row of no seat".into())),
        };
        let known = |what: &str| Error::Internal(format!("unknown {what} in seat_changes"));
        Ok(ChangeRecord {
            seq: r.seq,
            at_ms: r.at.timestamp_millis(),
            item,
            change: Change::parse(&r.change).ok_or_else(|| known("change"))?,
            status: Status::parse(&r.status).ok_or_else(|| known("status"))?,
            hold: HoldGroupId(r.hold_group_id),
            booking: r.booking_group_id.map(HoldGroupId),
            user_id: r.user_id,
            expires_at_ms: r.expires_at.map(|t| t.timestamp_millis()),
        })
    }
}

/// The columns of a [`ChangeRow`].
macro_rules! change_columns {
    () => {
        "seq, at, seat_code, tier_code, quantity, change, status, hold_group_id, \
         booking_group_id, user_id, expires_at"
    };
}

/// A time in ms since the epoch.
pub(super) fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl PgStore {
    /// An event's numbered changes after `after`, oldest first, at most `limit`.
    pub async fn fetch_changes(
        &self,
        event: EventId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ChangeRecord>> {
        let rows = sqlx::query_as::<_, ChangeRow>(concat!(
            "SELECT ",
            change_columns!(),
            " FROM seat_changes WHERE event_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ))
        .bind(event.0)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool);
        let rows = self.timed(PgOp::FetchChanges, rows).await?;
        rows.into_iter().map(ChangeRecord::try_from).collect()
    }

    /// One seat's numbered changes, newest first, at most `limit`.
    pub async fn fetch_seat_history(
        &self,
        event: EventId,
        seat: &str,
        limit: i64,
    ) -> Result<Vec<ChangeRecord>> {
        let rows = sqlx::query_as::<_, ChangeRow>(concat!(
            "SELECT ",
            change_columns!(),
            " FROM seat_changes WHERE event_id = $1 AND seat_code = $2 AND seq IS NOT NULL \
              ORDER BY seq DESC LIMIT $3"
        ))
        .bind(event.0)
        .bind(seat)
        .bind(limit)
        .fetch_all(&self.pool);
        let rows = self.timed(PgOp::FetchChanges, rows).await?;
        rows.into_iter().map(ChangeRecord::try_from).collect()
    }

    /// Whether `seat` is a seat of `event`.
    pub async fn seat_exists(&self, event: EventId, seat: &str) -> Result<bool> {
        let found = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM seats WHERE event_id = $1 AND seat_code = $2)",
        )
        .bind(event.0)
        .bind(seat)
        .fetch_one(&self.pool);
        self.timed(PgOp::FetchChanges, found).await
    }

    /// Events whose history has something to record by Postgres's account: unnumbered rows, or
    /// an open hold whose end has passed.
    pub async fn fetch_history_candidates(&self) -> Result<Vec<EventId>> {
        let ids = sqlx::query_scalar::<_, i64>(
            "SELECT DISTINCT event_id FROM seat_changes WHERE seq IS NULL \
             UNION \
             SELECT DISTINCT event_id FROM history_open_holds WHERE expires_at <= clock_timestamp()",
        )
        .fetch_all(&self.pool);
        let ids = self.timed(PgOp::HistoryCandidates, ids).await?;
        Ok(ids.into_iter().map(EventId).collect())
    }

    /// Deletes numbered changes older than `days` days, at most 10,000; how many went.
    pub async fn sweep_history(&self, days: u32) -> Result<u64> {
        let gone = sqlx::query(
            "DELETE FROM seat_changes WHERE change_id = ANY(ARRAY( \
               SELECT change_id FROM seat_changes \
                WHERE at < now() - make_interval(days => $1) AND seq IS NOT NULL LIMIT 10000))",
        )
        .bind(days as i32)
        .execute(&self.pool);
        Ok(self.timed(PgOp::SweepHistory, gone).await?.rows_affected())
    }
}
