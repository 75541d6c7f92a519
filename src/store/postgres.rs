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

/// One seat of the seat map, with whether Postgres has it booked or held.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SeatRow {
    pub seat_code: String,
    pub seat_type: String,
    pub price_cents: i64,
    pub booked: bool,
    /// Milliseconds left on a live Postgres hold of the seat.
    pub held_ms: Option<i64>,
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
    /// The guard refused: these seats are held in Postgres by another live hold.
    HeldElsewhere(Vec<String>),
    /// (Postgres holds) the hold is not there or has expired.
    HoldGone,
    /// (Postgres holds) the hold belongs to another user.
    NotOwner,
}

/// Where the hold being confirmed lives, as far as the confirm transaction is concerned.
#[derive(Debug, Clone, Copy)]
pub enum HoldSource<'a> {
    /// A Redis hold (checked and pinned by the caller) of these seats.
    Redis(&'a [String]),
    /// A Postgres hold: checked, locked and consumed inside the transaction.
    Postgres,
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

/// Checks a connection out of the pool and opens a transaction, recording how long it took
/// (pool wait + BEGIN) in `seatlock_postgres_pool_acquire_duration_seconds`.
async fn begin(pg: &PgPool) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
    let started = Instant::now();
    let tx = pg.begin().await;
    crate::telemetry::record_pg_acquire(started.elapsed());
    tx
}

fn timed(op: &'static str, started: Instant, ok: bool) {
    crate::telemetry::record_postgres(op, started.elapsed(), ok);
}

/// Runs a transaction on a task of its own, so dropping the request (client gone, deadline
/// passed) cannot stop it half-way: it commits or rolls back whole, and its connection goes back
/// to the pool clean. The transactions of this module all go through here.
async fn detached<T, F>(work: F) -> Result<T>
where
    F: std::future::Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(work)
        .await
        .map_err(|e| Error::Internal(format!("transaction task failed: {e}")))?
}

/// Inserts an event and its seats in one transaction.
pub async fn insert_event(pg: &PgPool, event: &NewEvent) -> Result<EventId> {
    let started = Instant::now();
    let (pg, event) = (pg.clone(), event.clone());
    let result = detached(async move { insert_event_tx(&pg, &event).await }).await;
    timed("insert_event", started, result.is_ok());
    result
}

async fn insert_event_tx(pg: &PgPool, event: &NewEvent) -> Result<EventId> {
    let mut tx = begin(pg).await?;
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

/// Seats in confirmed bookings, and seats held by live Postgres holds.
pub async fn count_seats(pg: &PgPool, id: EventId) -> Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT (SELECT count(*) FROM booking_seats WHERE event_id = $1 AND active), \
                (SELECT count(*) FROM held_seats WHERE event_id = $1 AND held_until > now())",
    )
    .bind(id.0)
    .fetch_one(pg)
    .await?)
}

/// Seat codes held by live Postgres holds of an event.
pub async fn fetch_held_codes(pg: &PgPool, id: EventId) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT seat_code FROM held_seats WHERE event_id = $1 AND held_until > now()",
    )
    .bind(id.0)
    .fetch_all(pg)
    .await?)
}

/// Every seat of an event in seat-map order, with its booked flag.
pub async fn fetch_seat_map(pg: &PgPool, id: EventId) -> Result<Vec<SeatRow>> {
    let started = Instant::now();
    let result = sqlx::query_as::<_, SeatRow>(
        "SELECT s.seat_code, s.seat_type, s.price_cents, (b.seat_code IS NOT NULL) AS booked, \
                (extract(epoch FROM h.held_until - now()) * 1000)::bigint AS held_ms \
         FROM seats s \
         LEFT JOIN booking_seats b \
           ON b.event_id = s.event_id AND b.seat_code = s.seat_code AND b.active \
         LEFT JOIN held_seats h \
           ON h.event_id = s.event_id AND h.seat_code = s.seat_code AND h.held_until > now() \
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
    let pg = pg.clone();
    detached(async move { fetch_inventory_attached(&pg, id).await }).await
}

async fn fetch_inventory_attached(
    pg: &PgPool,
    id: EventId,
) -> Result<Option<(Vec<String>, Vec<String>)>> {
    let started = Instant::now();
    let result = async {
        let mut tx = begin(pg).await?;
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

/// Writes the booking of a hold in one transaction, guarded whatever Redis says:
/// - the seat rows are locked in code order, so overlapping confirms and Postgres holds wait on
///   each other instead of deadlocking;
/// - a seat held in Postgres by another live hold is refused (`HeldElsewhere`);
/// - the unique index `booking_seats_one_active_per_seat` refuses a seat already sold (`Conflict`);
/// - a Postgres hold is checked (owner, alive) under a row lock and consumed in the same
///   transaction; its expiry is decided by the Postgres clock.
///
/// Transient errors (serialization failure, deadlock) retry the whole transaction.
pub async fn insert_booking(
    pg: &PgPool,
    retries: u32,
    event: EventId,
    id: HoldGroupId,
    user_id: &str,
    source: HoldSource<'_>,
) -> Result<ConfirmOutcome> {
    let (pg, user_id) = (pg.clone(), user_id.to_string());
    let seats = match source {
        HoldSource::Redis(seats) => Some(seats.to_vec()),
        HoldSource::Postgres => None,
    };
    detached(async move {
        let source = match &seats {
            Some(seats) => HoldSource::Redis(seats),
            None => HoldSource::Postgres,
        };
        insert_booking_attached(&pg, retries, event, id, &user_id, source).await
    })
    .await
}

async fn insert_booking_attached(
    pg: &PgPool,
    retries: u32,
    event: EventId,
    id: HoldGroupId,
    user_id: &str,
    source: HoldSource<'_>,
) -> Result<ConfirmOutcome> {
    let started = Instant::now();
    let result = with_retries(retries, || {
        insert_booking_tx(pg, event, id, user_id, source)
    })
    .await;
    timed("confirm", started, result.is_ok());
    match result {
        Err(Error::Postgres(sqlx::Error::Database(db)))
            if db.constraint() == Some(ONE_ACTIVE_PER_SEAT) =>
        {
            let seats: Vec<String> = match source {
                HoldSource::Redis(seats) => seats.to_vec(),
                HoldSource::Postgres => fetch_hold(pg, event, id)
                    .await?
                    .map(|h| h.seats)
                    .unwrap_or_default(),
            };
            let taken: Vec<String> = sqlx::query_scalar(
                "SELECT seat_code FROM booking_seats \
                 WHERE event_id = $1 AND seat_code = ANY($2) AND active ORDER BY seat_code",
            )
            .bind(event.0)
            .bind(&seats)
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
    source: HoldSource<'_>,
) -> Result<ConfirmOutcome> {
    let mut tx = begin(pg).await?;
    let seats: Vec<String> = match source {
        HoldSource::Redis(seats) => seats.to_vec(),
        HoldSource::Postgres => {
            let hold: Option<(String, Vec<String>, bool)> = sqlx::query_as(
                "SELECT user_id, seat_codes, held_until > now() FROM holds \
                 WHERE event_id = $1 AND hold_group_id = $2 FOR UPDATE",
            )
            .bind(event.0)
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?;
            match hold {
                None | Some((_, _, false)) => return Ok(ConfirmOutcome::HoldGone),
                Some((owner, _, _)) if owner != user_id => return Ok(ConfirmOutcome::NotOwner),
                Some((_, seats, true)) => seats,
            }
        }
    };
    sqlx::query("SELECT seat_code FROM seats WHERE event_id = $1 AND seat_code = ANY($2) ORDER BY seat_code FOR UPDATE")
        .bind(event.0)
        .bind(&seats)
        .execute(&mut *tx)
        .await?;
    let held_elsewhere: Vec<String> = sqlx::query_scalar(
        "SELECT seat_code FROM held_seats WHERE event_id = $1 AND seat_code = ANY($2) \
         AND held_until > now() AND hold_group_id <> $3 ORDER BY seat_code",
    )
    .bind(event.0)
    .bind(&seats)
    .bind(id.0)
    .fetch_all(&mut *tx)
    .await?;
    if !held_elsewhere.is_empty() {
        tx.rollback().await?;
        return Ok(ConfirmOutcome::HeldElsewhere(held_elsewhere));
    }
    let inserted = sqlx::query(
        "INSERT INTO bookings (event_id, booking_group_id, user_id, total_price_cents) \
         SELECT $1, $2, $3, COALESCE(sum(price_cents), 0)::bigint \
         FROM seats WHERE event_id = $1 AND seat_code = ANY($4) \
         ON CONFLICT ON CONSTRAINT bookings_pkey DO NOTHING",
    )
    .bind(event.0)
    .bind(id.0)
    .bind(user_id)
    .bind(&seats)
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
    .bind(&seats)
    .execute(&mut *tx)
    .await?;
    if matches!(source, HoldSource::Postgres) {
        sqlx::query("DELETE FROM held_seats WHERE event_id = $1 AND hold_group_id = $2")
            .bind(event.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM holds WHERE event_id = $1 AND hold_group_id = $2")
            .bind(event.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
    }
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
    let (pg, user_id) = (pg.clone(), user_id.to_string());
    detached(async move { cancel_booking_attached(&pg, event, id, &user_id).await }).await
}

async fn cancel_booking_attached(
    pg: &PgPool,
    event: EventId,
    id: HoldGroupId,
    user_id: &str,
) -> Result<CancelOutcome> {
    let started = Instant::now();
    let result = async {
        let mut tx = begin(pg).await?;
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

/// Runs a whole transaction again after a serialization failure or a deadlock, at most
/// `retries` more times, with a short growing pause.
pub async fn with_retries<T, F, Fut>(retries: u32, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(Error::Postgres(sqlx::Error::Database(db)))
                if tries < retries && matches!(db.code().as_deref(), Some("40001" | "40P01")) =>
            {
                tries += 1;
                tracing::warn!(code = ?db.code(), tries, "transient postgres error; retrying the transaction");
                tokio::time::sleep(Duration::from_millis(5 * u64::from(tries))).await;
            }
            other => return other,
        }
    }
}

/// Result of taking a hold in Postgres.
#[derive(Debug)]
pub enum PgHoldAttempt {
    Held {
        expires_at: DateTime<Utc>,
    },
    Unknown(Vec<String>),
    Unavailable {
        booked: Vec<String>,
        held: Vec<String>,
    },
}

/// A hold kept in Postgres.
#[derive(Debug, Clone)]
pub struct PgHold {
    pub user_id: String,
    pub seats: Vec<String>,
    pub alive: bool,
}

/// Takes an all-or-nothing hold in Postgres: the event's seat rows are locked in code order, then
/// one conditional statement inserts every seat's `held_seats` row only if none is booked or held
/// by a live hold. A repeat with the same id and user acknowledges the existing hold.
pub async fn insert_hold(
    pg: &PgPool,
    event: EventId,
    id: HoldGroupId,
    user_id: &str,
    seats: &[String],
    ttl: Duration,
) -> Result<PgHoldAttempt> {
    let started = Instant::now();
    let (pg, user_id, seats) = (pg.clone(), user_id.to_string(), seats.to_vec());
    let result =
        detached(async move { insert_hold_tx(&pg, event, id, &user_id, &seats, ttl).await }).await;
    timed("hold", started, result.is_ok());
    result
}

async fn insert_hold_tx(
    pg: &PgPool,
    event: EventId,
    id: HoldGroupId,
    user_id: &str,
    seats: &[String],
    ttl: Duration,
) -> Result<PgHoldAttempt> {
    let mut tx = begin(pg).await?;
    let existing: Option<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT user_id, held_until FROM holds \
         WHERE event_id = $1 AND hold_group_id = $2 AND held_until > now()",
    )
    .bind(event.0)
    .bind(id.0)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((_, expires_at)) = existing.filter(|(owner, _)| owner == user_id) {
        return Ok(PgHoldAttempt::Held { expires_at });
    }
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT seat_code FROM seats WHERE event_id = $1 AND seat_code = ANY($2) \
         ORDER BY seat_code FOR UPDATE",
    )
    .bind(event.0)
    .bind(seats)
    .fetch_all(&mut *tx)
    .await?;
    if found.len() != seats.len() {
        let unknown = seats
            .iter()
            .filter(|s| !found.contains(s))
            .cloned()
            .collect();
        return Ok(PgHoldAttempt::Unknown(unknown));
    }
    let ttl_ms = ttl.as_millis() as i64;
    // One conditional statement: every seat or none. It runs after the seat locks are held, so
    // its snapshot sees every booking and hold committed before it.
    let row = sqlx::query(
        "WITH busy AS ( \
           SELECT seat_code, 'booked' AS why FROM booking_seats \
            WHERE event_id = $1 AND seat_code = ANY($2) AND active \
           UNION ALL \
           SELECT seat_code, 'held' FROM held_seats \
            WHERE event_id = $1 AND seat_code = ANY($2) AND held_until > now() \
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
                COALESCE((SELECT array_agg(seat_code) FROM busy WHERE why = 'booked'), '{}') AS booked, \
                COALESCE((SELECT array_agg(seat_code) FROM busy WHERE why = 'held'), '{}') AS held",
    )
    .bind(event.0)
    .bind(seats)
    .bind(id.0)
    .bind(ttl_ms)
    .fetch_one(&mut *tx)
    .await?;
    let taken: i64 = row.try_get("taken")?;
    if taken != seats.len() as i64 {
        tx.rollback().await?;
        return Ok(PgHoldAttempt::Unavailable {
            booked: row.try_get("booked")?,
            held: row.try_get("held")?,
        });
    }
    let expires_at: DateTime<Utc> = row.try_get("held_until")?;
    sqlx::query(
        "INSERT INTO holds (event_id, hold_group_id, user_id, seat_codes, held_until) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT ON CONSTRAINT holds_pkey DO UPDATE \
           SET user_id = EXCLUDED.user_id, seat_codes = EXCLUDED.seat_codes, held_until = EXCLUDED.held_until",
    )
    .bind(event.0)
    .bind(id.0)
    .bind(user_id)
    .bind(seats)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(PgHoldAttempt::Held { expires_at })
}

/// Reads a Postgres hold (alive or expired but not yet swept).
pub async fn fetch_hold(pg: &PgPool, event: EventId, id: HoldGroupId) -> Result<Option<PgHold>> {
    let row: Option<(String, Vec<String>, bool)> = sqlx::query_as(
        "SELECT user_id, seat_codes, held_until > now() FROM holds \
         WHERE event_id = $1 AND hold_group_id = $2",
    )
    .bind(event.0)
    .bind(id.0)
    .fetch_optional(pg)
    .await?;
    Ok(row.map(|(user_id, seats, alive)| PgHold {
        user_id,
        seats,
        alive,
    }))
}

/// Deletes a live Postgres hold of `user_id` and returns its seats; None if it was not there
/// (or not alive, or not theirs).
pub async fn delete_hold(
    pg: &PgPool,
    event: EventId,
    id: HoldGroupId,
    user_id: &str,
) -> Result<Option<Vec<String>>> {
    let (pg, user_id) = (pg.clone(), user_id.to_string());
    detached(async move { delete_hold_attached(&pg, event, id, &user_id).await }).await
}

async fn delete_hold_attached(
    pg: &PgPool,
    event: EventId,
    id: HoldGroupId,
    user_id: &str,
) -> Result<Option<Vec<String>>> {
    let started = Instant::now();
    let result = async {
        let mut tx = begin(pg).await?;
        let deleted: Option<Vec<String>> = sqlx::query_scalar(
            "DELETE FROM holds WHERE event_id = $1 AND hold_group_id = $2 AND user_id = $3 \
             AND held_until > now() RETURNING seat_codes",
        )
        .bind(event.0)
        .bind(id.0)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        if deleted.is_none() {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query("DELETE FROM held_seats WHERE event_id = $1 AND hold_group_id = $2")
            .bind(event.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(deleted)
    }
    .await;
    timed("release", started, result.is_ok());
    Ok(result?)
}

/// Deletes expired Postgres holds in batches that skip rows other transactions hold; returns
/// the number of seats freed.
pub async fn sweep_expired_holds(pg: &PgPool) -> Result<u64> {
    let started = Instant::now();
    let result = async {
        let mut tx = begin(pg).await?;
        // The sweeper must never make a hold wait behind it: it skips locked rows, and gives up
        // on any other lock it cannot take at once (the next tick tries again).
        sqlx::query("SET LOCAL lock_timeout = '50ms'")
            .execute(&mut *tx)
            .await?;
        let seats = sqlx::query(
            "DELETE FROM held_seats WHERE ctid = ANY(ARRAY( \
               SELECT ctid FROM held_seats WHERE held_until <= now() \
               LIMIT 1000 FOR UPDATE SKIP LOCKED)) \
             AND held_until <= now()",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "DELETE FROM holds WHERE ctid = ANY(ARRAY( \
               SELECT ctid FROM holds WHERE held_until <= now() \
               LIMIT 1000 FOR UPDATE SKIP LOCKED)) \
             AND held_until <= now()",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(seats)
    }
    .await;
    timed("sweep_holds", started, result.is_ok());
    match result {
        // 55P03 lock_not_available: a hold had the row; not a failure worth a warning.
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("55P03") => Ok(0),
        other => Ok(other?),
    }
}

/// Live Postgres holds, for copying into Redis after an outage.
pub async fn fetch_live_holds(
    pg: &PgPool,
) -> Result<Vec<(EventId, HoldGroupId, String, Vec<String>, i64)>> {
    let rows: Vec<(i64, uuid::Uuid, String, Vec<String>, f64)> = sqlx::query_as(
        "SELECT event_id, hold_group_id, user_id, seat_codes, \
                (extract(epoch FROM held_until - now()) * 1000)::float8 \
         FROM holds WHERE held_until > now() + interval '1 second' LIMIT 100000",
    )
    .fetch_all(pg)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(e, id, user, seats, ms)| (EventId(e), HoldGroupId(id), user, seats, ms as i64))
        .collect())
}

/// Identity of a stored response: (event, user, route, key).
#[derive(Debug, Clone)]
pub struct IdempotencyScope<'a> {
    pub event: EventId,
    pub user_id: &'a str,
    pub route: &'a str,
    pub key: &'a str,
}

/// What a keyed request found.
#[derive(Debug)]
pub enum KeyClaim {
    /// First use (or the first request's lease expired): run the request, then store.
    /// `claimed_at` (µs since epoch) identifies this use of the key: a key reused after its
    /// stored response expired is a new use.
    Owner { claimed_at: i64 },
    /// Completed before: answer with this.
    Replay { status: u16, body: Vec<u8> },
    /// Same key, different request body.
    Mismatch,
    /// The first request with this key is still running.
    InFlight,
}

/// Claims an Idempotency-Key for one request, or reports what it already holds.
pub async fn claim_idempotency_key(
    pg: &PgPool,
    scope: &IdempotencyScope<'_>,
    fingerprint: &str,
    lease: Duration,
    ttl: Duration,
) -> Result<KeyClaim> {
    let started = Instant::now();
    let result = claim_key(pg, scope, fingerprint, lease, ttl).await;
    timed("idempotency_claim", started, result.is_ok());
    result
}

async fn claim_key(
    pg: &PgPool,
    scope: &IdempotencyScope<'_>,
    fingerprint: &str,
    lease: Duration,
    ttl: Duration,
) -> Result<KeyClaim> {
    let lease_ms = lease.as_millis() as i64;
    // A stored response past its time is forgotten first, so the key starts a new use.
    sqlx::query(
        "DELETE FROM idempotency_keys \
          WHERE event_id = $1 AND user_id = $2 AND route = $3 AND idempotency_key = $4 \
            AND created_at < now() - make_interval(secs => $5::double precision)",
    )
    .bind(scope.event.0)
    .bind(scope.user_id)
    .bind(scope.route)
    .bind(scope.key)
    .bind(ttl.as_secs() as i64)
    .execute(pg)
    .await?;
    let claimed: Option<i64> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys \
           (event_id, user_id, route, idempotency_key, fingerprint, locked_until) \
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6::double precision / 1000)) \
         ON CONFLICT ON CONSTRAINT idempotency_keys_pkey DO NOTHING \
         RETURNING (extract(epoch FROM created_at) * 1000000)::bigint",
    )
    .bind(scope.event.0)
    .bind(scope.user_id)
    .bind(scope.route)
    .bind(scope.key)
    .bind(fingerprint)
    .bind(lease_ms)
    .fetch_optional(pg)
    .await?;
    if let Some(claimed_at) = claimed {
        return Ok(KeyClaim::Owner { claimed_at });
    }
    /// fingerprint, status_code, response_body, lease still running
    type StoredKey = (String, Option<i32>, Option<Vec<u8>>, bool);
    let row: Option<StoredKey> = sqlx::query_as(
        "SELECT fingerprint, status_code, response_body, locked_until > now() FROM idempotency_keys \
         WHERE event_id = $1 AND user_id = $2 AND route = $3 AND idempotency_key = $4",
    )
    .bind(scope.event.0)
    .bind(scope.user_id)
    .bind(scope.route)
    .bind(scope.key)
    .fetch_optional(pg)
    .await?;
    match row {
        // Released between the two statements by a first attempt that failed: retry.
        None => Ok(KeyClaim::InFlight),
        Some((fp, _, _, _)) if fp != fingerprint => Ok(KeyClaim::Mismatch),
        Some((_, Some(status), body, _)) => Ok(KeyClaim::Replay {
            status: status as u16,
            body: body.unwrap_or_default(),
        }),
        Some((_, None, _, true)) => Ok(KeyClaim::InFlight),
        Some((_, None, _, false)) => {
            // The first request died without answering: take its lease over (same use of the
            // key, so the same claimed_at and the same derived ids).
            let taken: Option<i64> = sqlx::query_scalar(
                "UPDATE idempotency_keys \
                    SET locked_until = now() + make_interval(secs => $5::double precision / 1000) \
                  WHERE event_id = $1 AND user_id = $2 AND route = $3 AND idempotency_key = $4 \
                    AND status_code IS NULL AND locked_until <= now() \
                 RETURNING (extract(epoch FROM created_at) * 1000000)::bigint",
            )
            .bind(scope.event.0)
            .bind(scope.user_id)
            .bind(scope.route)
            .bind(scope.key)
            .bind(lease_ms)
            .fetch_optional(pg)
            .await?;
            Ok(match taken {
                Some(claimed_at) => KeyClaim::Owner { claimed_at },
                None => KeyClaim::InFlight,
            })
        }
    }
}

/// Stores the final response of a claimed key.
pub async fn complete_idempotency_key(
    pg: &PgPool,
    scope: &IdempotencyScope<'_>,
    status: u16,
    body: &[u8],
) -> Result<()> {
    sqlx::query(
        "UPDATE idempotency_keys SET status_code = $5, response_body = $6 \
         WHERE event_id = $1 AND user_id = $2 AND route = $3 AND idempotency_key = $4",
    )
    .bind(scope.event.0)
    .bind(scope.user_id)
    .bind(scope.route)
    .bind(scope.key)
    .bind(i32::from(status))
    .bind(body)
    .execute(pg)
    .await?;
    Ok(())
}

/// Ends the lease of a claimed key whose request failed transiently (5xx) or was dropped, with
/// nothing stored: the retry takes the same use of the key over at once (same derived ids, so a
/// reserve that did take its hold acknowledges it instead of taking a second one).
pub async fn release_idempotency_key(pg: &PgPool, scope: &IdempotencyScope<'_>) -> Result<()> {
    sqlx::query(
        "UPDATE idempotency_keys SET locked_until = now() \
         WHERE event_id = $1 AND user_id = $2 AND route = $3 AND idempotency_key = $4 \
           AND status_code IS NULL",
    )
    .bind(scope.event.0)
    .bind(scope.user_id)
    .bind(scope.route)
    .bind(scope.key)
    .execute(pg)
    .await?;
    Ok(())
}

/// Deletes stored responses older than `ttl`, in batches; returns how many.
pub async fn sweep_idempotency_keys(pg: &PgPool, ttl: Duration) -> Result<u64> {
    let started = Instant::now();
    let result = sqlx::query(
        "DELETE FROM idempotency_keys WHERE (event_id, user_id, route, idempotency_key) IN ( \
           SELECT event_id, user_id, route, idempotency_key FROM idempotency_keys \
            WHERE created_at < now() - make_interval(secs => $1::double precision) \
            LIMIT 5000 FOR UPDATE SKIP LOCKED)",
    )
    .bind(ttl.as_secs() as i64)
    .execute(pg)
    .await;
    timed("sweep_idempotency", started, result.is_ok());
    Ok(result?.rows_affected())
}
