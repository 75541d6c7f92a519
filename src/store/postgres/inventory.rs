//! The inventory snapshot a Redis cache is rebuilt from: an event's seats (or their count),
//! rows, booked and blocked seats, tiers, confirmed bookings and sales policy, read from one
//! Postgres snapshot.

use futures_util::TryStreamExt;
use sqlx::PgConnection;

use super::{End, PgStore, Transaction, channels};
use crate::domain::events::EventId;
use crate::domain::holds::HoldGroupId;
use crate::domain::seats::{Inventory, RowSeat, RowsBuilder, SeatCodes, SoldBooking, TierStock};
use crate::error::Result;
use crate::telemetry::PgOp;

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
        let policy = channels::read_snapshot(tx, self.0)
            .await?
            .unwrap_or_default();
        let sold_pools: Vec<(String, uuid::Uuid, String)> = sqlx::query_as(
            "SELECT tier_code, booking_group_id, channel_units FROM booking_tiers \
             WHERE event_id = $1 AND active AND channel_units <> ''",
        )
        .bind(self.0.0)
        .fetch_all(&mut *tx)
        .await?;
        let sold_pools = sold_pools
            .into_iter()
            .map(|(code, booking, part)| (code, HoldGroupId(booking), part))
            .collect();
        Ok(End::Commit(Some(Inventory {
            sold_pools,
            seats,
            booked,
            blocked,
            tiers,
            rows,
            sold,
            policy,
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
    /// The event's seat codes, booked seat codes and confirmed bookings, for the Redis cache;
    /// None if the event does not exist.
    pub async fn fetch_inventory(&self, id: EventId) -> Result<Option<Inventory>> {
        self.execute(FetchInventory(id)).await
    }
}
