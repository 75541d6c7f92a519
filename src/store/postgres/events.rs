//! Events and seats: create an event with its seats, list and read events, the seat map, and the
//! inventory snapshot a Redis cache is rebuilt from.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{End, PgStore, Transaction, channels};
use crate::domain::events::{Event, EventId, NewEvent, Seats};
use crate::domain::policy::{EventPolicy, SalesWindow};
use crate::domain::seats::SeatRecord;
use crate::error::{Error, Result};
use crate::telemetry::PgOp;

/// An event row.
#[derive(sqlx::FromRow)]
struct EventRow {
    event_id: i64,
    name: String,
    starts_at: DateTime<Utc>,
    location: String,
    total_seats: i32,
    sales_start: Option<DateTime<Utc>>,
    sales_end: Option<DateTime<Utc>>,
    queueit_event_id: Option<String>,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        Event {
            id: EventId(r.event_id),
            name: r.name,
            starts_at: r.starts_at,
            location: r.location,
            total_seats: r.total_seats,
            policy: EventPolicy {
                window: SalesWindow {
                    start: r.sales_start,
                    end: r.sales_end,
                },
                queueit_event_id: r.queueit_event_id,
            },
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
    channel: Option<String>,
    held_ms: Option<i64>,
}

/// Seats sold, and seats held by live Postgres holds, of one event; and its channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct SeatCounts {
    pub confirmed: i64,
    pub postgres_held: i64,
    pub blocked: i64,
    pub channels: i64,
}

/// The columns of an [`EventRow`].
macro_rules! event_columns {
    () => {
        "event_id, name, starts_at, location, total_seats, sales_start, sales_end, queueit_event_id"
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
            "INSERT INTO events (name, starts_at, location, total_seats, seats_numbered, \
                                 sales_start, sales_end) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING event_id",
        )
        .bind(&event.name)
        .bind(event.starts_at)
        .bind(&event.location)
        .bind(event.seats.count() as i32)
        .bind(matches!(event.seats, Seats::Numbered(_)))
        .bind(event.window.start)
        .bind(event.window.end)
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
        if let Err(refusal) = channels::replace_channels(tx, EventId(id), &event.channels).await? {
            // At creation every refusal is a 400: the body names codes it does not create.
            return Err(Error::Validation(match refusal {
                channels::ChannelRefusal::UnknownSeats(seats) => format!(
                    "channels name seats that are not in the event: {}",
                    seats.join(", ")
                ),
                channels::ChannelRefusal::UnknownTiers(tiers) => format!(
                    "channels name tiers that are not in the event: {}",
                    tiers.join(", ")
                ),
                channels::ChannelRefusal::OverCapacity(problems) => problems.join("; "),
            }));
        }
        Ok(End::Commit(EventId(id)))
    }
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
        let counts = sqlx::query_as::<_, SeatCounts>(
            "SELECT (SELECT count(*) FROM booking_seats WHERE event_id = $1 AND active) \
                      AS confirmed, \
                    (SELECT count(*) FROM held_seats WHERE event_id = $1 AND held_until > now()) \
                      AS postgres_held, \
                    (SELECT count(*) FROM seats WHERE event_id = $1 AND blocked_reason IS NOT NULL) \
                      AS blocked, \
                    (SELECT count(*) FROM event_channels WHERE event_id = $1) AS channels",
        )
        .bind(id.0)
        .fetch_one(&self.pool);
        self.timed(PgOp::CountSeats, counts).await
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
                    (b.seat_code IS NOT NULL) AS booked, s.blocked_reason, s.channel, \
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
                channel: r.channel,
            })
            .collect())
    }
}
