//! Events and seats: create an event with its seats, list and read events, the seat map, and the
//! inventory snapshot a Redis cache is rebuilt from.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::PgConnection;

use super::{End, PgStore, Transaction};
use crate::domain::events::{Event, EventId, NewEvent, Seats};
use crate::domain::holds::HoldGroupId;
use crate::domain::seats::SeatRecord;
use crate::domain::seats::{Inventory, RowSeat, RowsBuilder, SeatCodes, SoldBooking, TierStock};
use crate::error::Result;
use crate::telemetry::PgOp;

/// An event row.
#[derive(sqlx::FromRow)]
struct EventRow {
    event_id: i64,
    name: String,
    starts_at: DateTime<Utc>,
    location: String,
    total_seats: i32,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        Event {
            id: EventId(r.event_id),
            name: r.name,
            starts_at: r.starts_at,
            location: r.location,
            total_seats: r.total_seats,
        }
    }
}

/// A seat-map row: the seat, whether it is sold, and the time left on a live Postgres hold.
#[derive(sqlx::FromRow)]
struct SeatRow {
    seat_code: String,
    seat_type: String,
    price_cents: i64,
    row_label: Option<String>,
    seat_number: Option<i32>,
    booked: bool,
    blocked_reason: Option<String>,
    held_ms: Option<i64>,
}

/// Seats sold, and seats held by live Postgres holds, of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatCounts {
    pub confirmed: i64,
    pub postgres_held: i64,
    pub blocked: i64,
}

/// The columns of an [`EventRow`].
macro_rules! event_columns {
    () => {
        "event_id, name, starts_at, location, total_seats"
    };
}

/// Seats inserted per statement.
const SEAT_CHUNK: usize = 10_000;

/// Inserts an event and its seats.
struct InsertEvent(NewEvent);

impl Transaction for InsertEvent {
    type Output = EventId;
    const OP: PgOp = PgOp::InsertEvent;

    async fn run(&self, tx: &mut PgConnection) -> Result<End<EventId>> {
        let event = &self.0;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO events (name, starts_at, location, total_seats, seats_numbered) \
             VALUES ($1, $2, $3, $4, $5) RETURNING event_id",
        )
        .bind(&event.name)
        .bind(event.starts_at)
        .bind(&event.location)
        .bind(event.seats.count() as i32)
        .bind(matches!(event.seats, Seats::Numbered(_)))
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
                // In chunks, so a 100,000-seat house never has all its seats as SQL arrays (and
                // their encoding) in memory at once; positions continue across chunks.
                for (chunk_at, chunk) in (0_i32..).step_by(SEAT_CHUNK).zip(list.chunks(SEAT_CHUNK))
                {
                    let codes: Vec<&str> = chunk.iter().map(|s| s.code.as_str()).collect();
                    let types: Vec<&str> = chunk.iter().map(|s| s.seat_type.as_str()).collect();
                    let prices: Vec<i64> = chunk.iter().map(|s| s.price_cents).collect();
                    let rows: Vec<Option<&str>> = chunk.iter().map(|s| s.row.as_deref()).collect();
                    let numbers: Vec<Option<i32>> = chunk.iter().map(|s| s.number).collect();
                    sqlx::query(
                        "INSERT INTO seats (event_id, seat_code, position, seat_type, price_cents, \
                                            row_label, seat_number) \
                         SELECT $1, c, $7 + p::int, t, pr, r, n \
                         FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::int[]) \
                              WITH ORDINALITY AS u(c, t, pr, r, n, p)",
                    )
                    .bind(id)
                    .bind(&codes)
                    .bind(&types)
                    .bind(&prices)
                    .bind(&rows)
                    .bind(&numbers)
                    .bind(chunk_at)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        if !event.tiers.is_empty() {
            let codes: Vec<&str> = event.tiers.iter().map(|t| t.code.as_str()).collect();
            let names: Vec<&str> = event.tiers.iter().map(|t| t.name.as_str()).collect();
            let prices: Vec<i64> = event.tiers.iter().map(|t| t.price_cents).collect();
            let capacities: Vec<i32> = event
                .tiers
                .iter()
                .map(|t| t.capacity.min(i32::MAX as u32) as i32)
                .collect();
            sqlx::query(
                "INSERT INTO tiers (event_id, tier_code, position, name, price_cents, capacity) \
                 SELECT $1, c, p::int, n, pr, cap \
                 FROM unnest($2::text[], $3::text[], $4::bigint[], $5::int[]) \
                      WITH ORDINALITY AS u(c, n, pr, cap, p)",
            )
            .bind(id)
            .bind(&codes)
            .bind(&names)
            .bind(&prices)
            .bind(&capacities)
            .execute(&mut *tx)
            .await?;
        }
        Ok(End::Commit(EventId(id)))
    }
}

/// Reads the event's seats (their codes, or only their count for a numbered event), its rows,
/// booked seats, tiers and confirmed bookings from one snapshot (REPEATABLE READ).
struct FetchInventory(EventId);

impl Transaction for FetchInventory {
    type Output = Option<Inventory>;
    const OP: PgOp = PgOp::FetchInventory;

    async fn run(&self, tx: &mut PgConnection) -> Result<End<Option<Inventory>>> {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let event: Option<(bool, i32)> =
            sqlx::query_as("SELECT seats_numbered, total_seats FROM events WHERE event_id = $1")
                .bind(self.0.0)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((numbered, total_seats)) = event else {
            return Ok(End::Commit(None));
        };
        let tiers: Vec<(String, i32, i32)> = sqlx::query_as(
            "SELECT tier_code, capacity, sold FROM tiers WHERE event_id = $1 ORDER BY position",
        )
        .bind(self.0.0)
        .fetch_all(&mut *tx)
        .await?;
        let mut booked: Vec<String> = sqlx::query_scalar(
            "SELECT seat_code FROM booking_seats WHERE event_id = $1 AND active",
        )
        .bind(self.0.0)
        .fetch_all(&mut *tx)
        .await?;
        let blocked: Vec<String> = sqlx::query_scalar(
            "SELECT seat_code FROM seats WHERE event_id = $1 AND blocked_reason IS NOT NULL",
        )
        .bind(self.0.0)
        .fetch_all(&mut *tx)
        .await?;
        booked.extend(blocked.iter().cloned());
        // Seats plus tier units of every confirmed booking.
        let sold: Vec<(uuid::Uuid, String, i64)> = sqlx::query_as(
            "SELECT b.booking_group_id, b.user_id, \
                    (SELECT count(*) FROM booking_seats s WHERE s.event_id = b.event_id \
                       AND s.booking_group_id = b.booking_group_id AND s.active) \
                  + (SELECT COALESCE(sum(t.quantity), 0) FROM booking_tiers t \
                      WHERE t.event_id = b.event_id \
                        AND t.booking_group_id = b.booking_group_id AND t.active) \
             FROM bookings b WHERE b.event_id = $1 AND b.status = 'CONFIRMED'",
        )
        .bind(self.0.0)
        .fetch_all(&mut *tx)
        .await?;
        let sold = sold
            .into_iter()
            .map(|(booking, user_id, seats)| SoldBooking {
                booking: HoldGroupId(booking),
                user_id,
                seats,
            })
            .collect();
        let (seats, rows) = if numbered {
            (SeatCodes::Numbered(total_seats.max(0) as u32), Vec::new())
        } else {
            let (codes, rows) = read_seats(&mut *tx, self.0).await?;
            (SeatCodes::Listed(codes), rows)
        };
        let tiers = tiers
            .into_iter()
            .map(|(code, capacity, sold)| TierStock {
                code,
                capacity: capacity.into(),
                sold: sold.into(),
            })
            .collect();
        Ok(End::Commit(Some(Inventory {
            seats,
            booked,
            blocked,
            tiers,
            rows,
            sold,
        })))
    }
}

/// Every seat code of a listed event, and its rows: one unordered, streamed read (the columns of
/// a seat without a row come back NULL, so a house without rows reads little more than its
/// codes); the rows are put in order here rather than sorted by Postgres.
async fn read_seats(
    tx: &mut PgConnection,
    event: EventId,
) -> Result<(Vec<String>, Vec<Vec<RowSeat>>)> {
    type SeatLine = (
        String,
        Option<String>,
        Option<i32>,
        Option<String>,
        Option<i64>,
        Option<i32>,
    );
    let mut lines = sqlx::query_as::<_, SeatLine>(
        "SELECT seat_code, row_label, seat_number, \
                CASE WHEN row_label IS NOT NULL AND seat_number IS NOT NULL THEN seat_type END, \
                CASE WHEN row_label IS NOT NULL AND seat_number IS NOT NULL THEN price_cents END, \
                CASE WHEN row_label IS NOT NULL AND seat_number IS NOT NULL THEN position END \
         FROM seats WHERE event_id = $1",
    )
    .bind(event.0)
    .fetch(&mut *tx);
    let mut seats = Vec::new();
    let mut rows = RowsBuilder::default();
    while let Some((code, label, number, seat_type, price_cents, position)) =
        lines.try_next().await?
    {
        if let (Some(label), Some(number), Some(seat_type), Some(price_cents), Some(position)) =
            (label, number, seat_type, price_cents, position)
        {
            let seat = RowSeat {
                code: code.clone(),
                number,
                seat_type,
                price_cents,
            };
            rows.push(label, position, seat);
        }
        seats.push(code);
    }
    drop(lines);
    let rows = rows.finish();
    Ok((seats, rows))
}

impl PgStore {
    /// Inserts an event and its seats in one transaction.
    pub async fn insert_event(&self, event: NewEvent) -> Result<EventId> {
        self.execute(InsertEvent(event)).await
    }

    /// Events, newest first.
    pub async fn fetch_events(&self, limit: i64, offset: i64) -> Result<Vec<Event>> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events ORDER BY event_id DESC LIMIT $1 OFFSET $2"
        );
        let rows = sqlx::query_as::<_, EventRow>(sql)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool);
        let rows = self.timed(PgOp::FetchEvents, rows).await?;
        Ok(rows.into_iter().map(Event::from).collect())
    }

    pub async fn fetch_event(&self, id: EventId) -> Result<Option<Event>> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE event_id = $1"
        );
        let row = sqlx::query_as::<_, EventRow>(sql)
            .bind(id.0)
            .fetch_optional(&self.pool);
        Ok(self.timed(PgOp::FetchEvent, row).await?.map(Event::from))
    }

    /// Seats in confirmed bookings, and seats held by live Postgres holds.
    pub async fn count_seats(&self, id: EventId) -> Result<SeatCounts> {
        let counts = sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT (SELECT count(*) FROM booking_seats WHERE event_id = $1 AND active), \
                    (SELECT count(*) FROM held_seats WHERE event_id = $1 AND held_until > now()), \
                    (SELECT count(*) FROM seats WHERE event_id = $1 AND blocked_reason IS NOT NULL)",
        )
        .bind(id.0)
        .fetch_one(&self.pool);
        let (confirmed, postgres_held, blocked) = self.timed(PgOp::CountSeats, counts).await?;
        Ok(SeatCounts {
            confirmed,
            postgres_held,
            blocked,
        })
    }

    /// Seat codes held by live Postgres holds of an event.
    pub async fn fetch_held_codes(&self, id: EventId) -> Result<Vec<String>> {
        let codes = sqlx::query_scalar(
            "SELECT seat_code FROM held_seats WHERE event_id = $1 AND held_until > now()",
        )
        .bind(id.0)
        .fetch_all(&self.pool);
        self.timed(PgOp::FetchHeldCodes, codes).await
    }

    /// Every seat of an event in seat-map order (or only `only`, when given), with what Postgres
    /// knows of it.
    pub async fn fetch_seat_map(
        &self,
        id: EventId,
        only: Option<&[String]>,
    ) -> Result<Vec<SeatRecord>> {
        let rows = sqlx::query_as::<_, SeatRow>(
            "SELECT s.seat_code, s.seat_type, s.price_cents, s.row_label, s.seat_number, \
                    (b.seat_code IS NOT NULL) AS booked, s.blocked_reason, \
                    (extract(epoch FROM h.held_until - now()) * 1000)::bigint AS held_ms \
             FROM seats s \
             LEFT JOIN booking_seats b \
               ON b.event_id = s.event_id AND b.seat_code = s.seat_code AND b.active \
             LEFT JOIN held_seats h \
               ON h.event_id = s.event_id AND h.seat_code = s.seat_code AND h.held_until > now() \
             WHERE s.event_id = $1 AND ($2::text[] IS NULL OR s.seat_code = ANY($2)) \
             ORDER BY s.position",
        )
        .bind(id.0)
        .bind(only)
        .fetch_all(&self.pool);
        let rows = self.timed(PgOp::FetchSeatMap, rows).await?;
        Ok(rows
            .into_iter()
            .map(|r| SeatRecord {
                code: r.seat_code,
                seat_type: r.seat_type,
                price_cents: r.price_cents,
                row: r.row_label,
                number: r.seat_number,
                booked: r.booked,
                postgres_held_ms: r.held_ms,
                blocked: r.blocked_reason,
            })
            .collect())
    }

    /// The event's seat codes, booked seat codes and confirmed bookings, for the Redis cache;
    /// None if the event does not exist.
    pub async fn fetch_inventory(&self, id: EventId) -> Result<Option<Inventory>> {
        self.execute(FetchInventory(id)).await
    }
}
