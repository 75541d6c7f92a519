//! Postgres, the source of truth: events, seats, bookings. All SQL of the service lives here.

use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Row};

use crate::bookings::{BookedSeat, Booking, BookingStatus};
use crate::config::DatabaseSettings;
use crate::error::{Error, Result};
use crate::events::{EventId, NewEvent, Seats};
use crate::holds::HoldGroupId;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Name of the unique index that makes a double sale impossible.
pub const ONE_ACTIVE_PER_SEAT: &str = "booking_seats_one_active_per_seat";

/// Opens the pool (creating the database if configured to) and applies the migrations.
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    let statement_timeout = settings.statement_timeout_ms.to_string();
    let options = PgConnectOptions::from_str(&settings.url)?
        .application_name("seatlock")
        .options([("statement_timeout", statement_timeout.as_str())]);
    if settings.create_if_missing && !Postgres::database_exists(&settings.url).await? {
        // Two instances starting at once may race here; the loser's error is harmless.
        if let Err(e) = Postgres::create_database(&settings.url).await {
            tracing::warn!(error = %e, "create database failed; assuming a concurrent creator");
        }
    }
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        .connect_with(options)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// An event row with its seat count.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub event_id: i64,
    pub name: String,
    pub starts_at: DateTime<Utc>,
    pub location: String,
    pub total_seats: i32,
}

/// One seat of the seat map, with whether Postgres has it booked.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SeatRow {
    pub seat_code: String,
    pub seat_type: String,
    pub price_cents: i64,
    pub booked: bool,
}

/// Result of trying to write a booking.
#[derive(Debug)]
pub enum ConfirmOutcome {
    /// This call wrote the booking.
    Booked(Booking),
    /// The booking already existed (a repeated or concurrent confirm of the same hold).
    Existing(Booking),
    /// The guard refused: these seats are in another confirmed booking.
    Conflict(Vec<String>),
}

/// Result of cancelling a booking.
#[derive(Debug)]
pub enum CancelOutcome {
    /// Cancelled now; these seats were freed.
    Cancelled(Vec<String>),
    AlreadyCancelled,
    NotOwner,
    NotFound,
}

fn timed(op: &'static str, started: Instant, ok: bool) {
    crate::telemetry::record_postgres(op, started.elapsed(), ok);
}

/// Inserts an event and its seats in one transaction.
pub async fn insert_event(pg: &PgPool, event: &NewEvent) -> Result<EventId> {
    let started = Instant::now();
    let result = insert_event_tx(pg, event).await;
    timed("insert_event", started, result.is_ok());
    result
}

async fn insert_event_tx(pg: &PgPool, event: &NewEvent) -> Result<EventId> {
    let mut tx = pg.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO events (name, starts_at, location, total_seats) VALUES ($1, $2, $3, $4) \
         RETURNING event_id",
    )
    .bind(&event.name)
    .bind(event.starts_at)
    .bind(&event.location)
    .bind(event.seats.count() as i32)
    .fetch_one(&mut *tx)
    .await?;
    match &event.seats {
        Seats::Numbered(n) => {
            sqlx::query(
                "INSERT INTO seats (event_id, seat_code, position) \
                 SELECT $1, 'S' || g, g FROM generate_series(1, $2) AS g",
            )
            .bind(id)
            .bind(*n as i32)
            .execute(&mut *tx)
            .await?;
        }
        Seats::Listed(list) => {
            let codes: Vec<&str> = list.iter().map(|s| s.code.as_str()).collect();
            let types: Vec<&str> = list.iter().map(|s| s.seat_type.as_str()).collect();
            let prices: Vec<i64> = list.iter().map(|s| s.price_cents).collect();
            sqlx::query(
                "INSERT INTO seats (event_id, seat_code, position, seat_type, price_cents) \
                 SELECT $1, c, p::int, t, pr \
                 FROM unnest($2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY AS u(c, t, pr, p)",
            )
            .bind(id)
            .bind(&codes)
            .bind(&types)
            .bind(&prices)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(EventId(id))
}

pub async fn fetch_events(pg: &PgPool, limit: i64, offset: i64) -> Result<Vec<EventRow>> {
    let started = Instant::now();
    let result = sqlx::query_as::<_, EventRow>(
        "SELECT event_id, name, starts_at, location, total_seats FROM events \
         ORDER BY event_id DESC LIMIT $1 OFFSET $2",
    )
    .bind(limit)
    .bind(offset)
    .fetch_all(pg)
    .await;
    timed("fetch_events", started, result.is_ok());
    Ok(result?)
}

pub async fn fetch_event(pg: &PgPool, id: EventId) -> Result<Option<EventRow>> {
    let result = sqlx::query_as::<_, EventRow>(
        "SELECT event_id, name, starts_at, location, total_seats FROM events WHERE event_id = $1",
    )
    .bind(id.0)
    .fetch_optional(pg)
    .await;
    Ok(result?)
}

/// Number of seats in confirmed bookings.
pub async fn count_confirmed_seats(pg: &PgPool, id: EventId) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM booking_seats WHERE event_id = $1 AND active")
            .bind(id.0)
            .fetch_one(pg)
            .await?,
    )
}

/// Every seat of an event in seat-map order, with its booked flag.
pub async fn fetch_seat_map(pg: &PgPool, id: EventId) -> Result<Vec<SeatRow>> {
    let started = Instant::now();
    let result = sqlx::query_as::<_, SeatRow>(
        "SELECT s.seat_code, s.seat_type, s.price_cents, (b.seat_code IS NOT NULL) AS booked \
         FROM seats s LEFT JOIN booking_seats b \
           ON b.event_id = s.event_id AND b.seat_code = s.seat_code AND b.active \
         WHERE s.event_id = $1 ORDER BY s.position",
    )
    .bind(id.0)
    .fetch_all(pg)
    .await;
    timed("fetch_seat_map", started, result.is_ok());
    Ok(result?)
}

/// Every seat code and every booked seat code of an event, for the Redis cache; None if the
/// event does not exist.
pub async fn fetch_inventory(
    pg: &PgPool,
    id: EventId,
) -> Result<Option<(Vec<String>, Vec<String>)>> {
    let started = Instant::now();
    let result = async {
        let mut tx = pg.begin().await?;
        // One snapshot for both reads.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let seats: Vec<String> =
            sqlx::query_scalar("SELECT seat_code FROM seats WHERE event_id = $1")
                .bind(id.0)
                .fetch_all(&mut *tx)
                .await?;
        if seats.is_empty() {
            return Ok::<_, sqlx::Error>(None);
        }
        let booked: Vec<String> = sqlx::query_scalar(
            "SELECT seat_code FROM booking_seats WHERE event_id = $1 AND active",
        )
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some((seats, booked)))
    }
    .await;
    timed("fetch_inventory", started, result.is_ok());
    Ok(result?)
}

/// Writes the booking of a hold in one transaction, guarded by the unique index
/// `booking_seats_one_active_per_seat`. Seat rows are inserted in code order so two
/// overlapping confirms wait on each other instead of deadlocking.
pub async fn insert_booking(
    pg: &PgPool,
    event: EventId,
    id: HoldGroupId,
    user_id: &str,
    seats: &[String],
) -> Result<ConfirmOutcome> {
    let started = Instant::now();
    let result = insert_booking_tx(pg, event, id, user_id, seats).await;
    timed("confirm", started, result.is_ok());
    match result {
        Err(Error::Postgres(sqlx::Error::Database(db)))
            if db.constraint() == Some(ONE_ACTIVE_PER_SEAT) =>
        {
            let taken: Vec<String> = sqlx::query_scalar(
                "SELECT seat_code FROM booking_seats \
                 WHERE event_id = $1 AND seat_code = ANY($2) AND active ORDER BY seat_code",
            )
            .bind(event.0)
            .bind(seats)
            .fetch_all(pg)
            .await?;
            Ok(ConfirmOutcome::Conflict(taken))
        }
        other => other,
    }
}

async fn insert_booking_tx(
    pg: &PgPool,
    event: EventId,
    id: HoldGroupId,
    user_id: &str,
    seats: &[String],
) -> Result<ConfirmOutcome> {
    let mut tx = pg.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO bookings (event_id, booking_group_id, user_id, total_price_cents) \
         SELECT $1, $2, $3, COALESCE(sum(price_cents), 0)::bigint \
         FROM seats WHERE event_id = $1 AND seat_code = ANY($4) \
         ON CONFLICT ON CONSTRAINT bookings_pkey DO NOTHING",
    )
    .bind(event.0)
    .bind(id.0)
    .bind(user_id)
    .bind(seats)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        tx.rollback().await?;
        let existing = fetch_booking(pg, event, id).await?;
        return existing
            .map(ConfirmOutcome::Existing)
            .ok_or_else(|| Error::Internal("booking vanished after a conflicting insert".into()));
    }
    sqlx::query(
        "INSERT INTO booking_seats (event_id, booking_group_id, seat_code, price_cents) \
         SELECT $1, $2, seat_code, price_cents FROM seats \
         WHERE event_id = $1 AND seat_code = ANY($3) ORDER BY seat_code",
    )
    .bind(event.0)
    .bind(id.0)
    .bind(seats)
    .execute(&mut *tx)
    .await?;
    let booking = fetch_booking_in(&mut tx, event, id).await?;
    tx.commit().await?;
    booking
        .map(ConfirmOutcome::Booked)
        .ok_or_else(|| Error::Internal("booking missing inside its own transaction".into()))
}

pub async fn fetch_booking(
    pg: &PgPool,
    event: EventId,
    id: HoldGroupId,
) -> Result<Option<Booking>> {
    let mut conn = pg.acquire().await?;
    fetch_booking_in(&mut conn, event, id).await
}

async fn fetch_booking_in(
    conn: &mut sqlx::PgConnection,
    event: EventId,
    id: HoldGroupId,
) -> Result<Option<Booking>> {
    let Some(row) = sqlx::query(
        "SELECT user_id, status, total_price_cents, confirmed_at, cancelled_at FROM bookings \
         WHERE event_id = $1 AND booking_group_id = $2",
    )
    .bind(event.0)
    .bind(id.0)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let seats = sqlx::query(
        "SELECT b.seat_code, s.seat_type, b.price_cents FROM booking_seats b \
         JOIN seats s ON s.event_id = b.event_id AND s.seat_code = b.seat_code \
         WHERE b.event_id = $1 AND b.booking_group_id = $2 ORDER BY s.position",
    )
    .bind(event.0)
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| {
        Ok(BookedSeat {
            code: r.try_get("seat_code")?,
            seat_type: r.try_get("seat_type")?,
            price_cents: r.try_get("price_cents")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let status: String = row.try_get("status")?;
    Ok(Some(Booking {
        event_id: event,
        booking_group_id: id,
        user_id: row.try_get("user_id")?,
        status: BookingStatus::parse(&status)
            .ok_or_else(|| Error::Internal(format!("unknown booking status {status}")))?,
        seats,
        total_price_cents: row.try_get("total_price_cents")?,
        confirmed_at: row.try_get("confirmed_at")?,
        cancelled_at: row.try_get("cancelled_at")?,
    }))
}

/// Cancels a confirmed booking of `user_id` and frees its seats, in one transaction.
pub async fn cancel_booking(
    pg: &PgPool,
    event: EventId,
    id: HoldGroupId,
    user_id: &str,
) -> Result<CancelOutcome> {
    let started = Instant::now();
    let result = async {
        let mut tx = pg.begin().await?;
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT user_id, status FROM bookings WHERE event_id = $1 AND booking_group_id = $2 \
             FOR UPDATE",
        )
        .bind(event.0)
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match row {
            None => CancelOutcome::NotFound,
            Some((owner, _)) if owner != user_id => CancelOutcome::NotOwner,
            Some((_, status)) if status == BookingStatus::Cancelled.as_str() => {
                CancelOutcome::AlreadyCancelled
            }
            Some(_) => {
                sqlx::query(
                    "UPDATE bookings SET status = 'CANCELLED', cancelled_at = now() \
                     WHERE event_id = $1 AND booking_group_id = $2",
                )
                .bind(event.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
                let freed: Vec<String> = sqlx::query_scalar(
                    "UPDATE booking_seats SET active = FALSE \
                     WHERE event_id = $1 AND booking_group_id = $2 AND active RETURNING seat_code",
                )
                .bind(event.0)
                .bind(id.0)
                .fetch_all(&mut *tx)
                .await?;
                CancelOutcome::Cancelled(freed)
            }
        };
        tx.commit().await?;
        Ok::<_, sqlx::Error>(outcome)
    }
    .await;
    timed("cancel", started, result.is_ok());
    Ok(result?)
}
