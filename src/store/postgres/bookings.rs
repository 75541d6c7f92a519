//! Bookings: the guarded confirm transaction, reading a booking back, and cancel.

use sqlx::{PgConnection, Row};

use super::holds::{delete_held_seats, read_hold};
use super::{
    End, ONE_ACTIVE_PER_SEAT, PgStore, Transaction, caps, history, tiers, violated_constraint,
};
use crate::domain::bookings::{BookedSeat, Booking, BookingStatus, CancelOutcome, Freed};
use crate::domain::confirm::ConfirmOutcome;
use crate::domain::events::EventId;
use crate::domain::history::Change;
use crate::domain::holds::HoldGroupId;
use crate::domain::tiers::TierLine;
use crate::error::{Error, Result};
use crate::telemetry::PgOp;

/// Where the hold being confirmed lives, as far as the confirm transaction is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmSource {
    /// A Redis hold (checked and pinned by the caller) of these seats and tier units.
    Redis {
        seats: Vec<String>,
        tiers: Vec<TierLine>,
        /// (tier code, channel part) of units taken from channels' allocations.
        pools: Vec<(String, String)>,
        /// When it was taken (ms, the Redis clock): only Postgres holds taken before it (during
        /// an outage, while Redis could not tell) refuse its seats. None: every live one does.
        taken_ms: Option<i64>,
    },
    /// A Postgres hold: checked, locked and consumed inside the transaction.
    Postgres,
}

/// Writes the booking of a hold in one transaction, guarded whatever Redis says:
/// - the seat rows are locked in code order, so overlapping confirms and Postgres holds wait on
///   each other instead of deadlocking;
/// - a seat held in Postgres by another live hold is refused (`HeldElsewhere`), and so is a tier
///   with fewer units left than the hold has (tier rows locked in code order; `sold` checked
///   against the capacity, and the table's check constraint behind it);
/// - the unique index `booking_seats_one_active_per_seat` refuses a seat already sold (the
///   caller maps the violation to `Conflict`);
/// - a Postgres hold is checked (owner, alive) under a row lock and consumed in the same
///   transaction; its expiry is decided by the Postgres clock.
struct InsertBooking {
    event: EventId,
    id: HoldGroupId,
    user_id: String,
    source: ConfirmSource,
    /// `limits.max_seats_per_user`: confirmed seats of the buyer in the event, this hold's
    /// included.
    max_seats: Option<u32>,
    /// Whether the history rows are written (`history.enabled`).
    record: bool,
}

impl Transaction for InsertBooking {
    type Output = ConfirmOutcome;
    const OP: PgOp = PgOp::Confirm;

    async fn run(&self, tx: &mut PgConnection) -> Result<End<ConfirmOutcome>> {
        let (event, id) = (self.event, self.id);
        if self.max_seats.is_some() {
            caps::lock_buyer(tx, event, &self.user_id).await?;
        }
        let (seats, tier_lines, pools, taken_ms) = match &self.source {
            ConfirmSource::Redis {
                seats,
                tiers,
                pools,
                taken_ms,
            } => (seats.clone(), tiers.clone(), pools.clone(), *taken_ms),
            ConfirmSource::Postgres => match read_hold(&mut *tx, event, id, true).await? {
                Some(hold) if !hold.alive => return Ok(End::Rollback(ConfirmOutcome::HoldGone)),
                None => return Ok(End::Rollback(ConfirmOutcome::HoldGone)),
                Some(hold) if hold.user_id != self.user_id => {
                    return Ok(End::Rollback(ConfirmOutcome::NotOwner));
                }
                Some(hold) => (
                    hold.seats,
                    hold.tiers,
                    tiers::held_pools(&mut *tx, event, id).await?,
                    None,
                ),
            },
        };
        sqlx::query(
            "SELECT seat_code FROM seats WHERE event_id = $1 AND seat_code = ANY($2) \
             ORDER BY seat_code FOR UPDATE",
        )
        .bind(event.0)
        .bind(&seats)
        .execute(&mut *tx)
        .await?;
        // The first hold of a seat wins: a Redis hold is refused only by Postgres holds taken
        // before it.
        let held_elsewhere: Vec<String> = sqlx::query_scalar(
            "SELECT s.seat_code FROM held_seats s JOIN holds h \
               ON h.event_id = s.event_id AND h.hold_group_id = s.hold_group_id \
             WHERE s.event_id = $1 AND s.seat_code = ANY($2) AND s.held_until > now() \
               AND s.hold_group_id <> $3 \
               AND ($4::bigint IS NULL OR h.created_at < to_timestamp($4::bigint / 1000.0)) \
             ORDER BY s.seat_code",
        )
        .bind(event.0)
        .bind(&seats)
        .bind(id.0)
        .bind(taken_ms)
        .fetch_all(&mut *tx)
        .await?;
        let tier_check = tiers::lock_tiers(tx, event, id, &tier_lines).await?;
        if !held_elsewhere.is_empty() || !tier_check.short.is_empty() {
            return Ok(End::Rollback(ConfirmOutcome::HeldElsewhere {
                seats: held_elsewhere,
                tiers: tier_check.short,
            }));
        }
        if let Some(max) = self.max_seats {
            // The buyer's other confirmed seats and units of the event (a repeat of this confirm
            // does not count itself twice).
            let sold: i64 = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM booking_seats s JOIN bookings b \
                           ON b.event_id = s.event_id AND b.booking_group_id = s.booking_group_id \
                          WHERE s.event_id = $1 AND b.user_id = $2 AND s.active \
                            AND b.booking_group_id <> $3) \
                      + (SELECT COALESCE(sum(t.quantity), 0) FROM booking_tiers t JOIN bookings b \
                           ON b.event_id = t.event_id AND b.booking_group_id = t.booking_group_id \
                          WHERE t.event_id = $1 AND b.user_id = $2 AND t.active \
                            AND b.booking_group_id <> $3)",
            )
            .bind(event.0)
            .bind(&self.user_id)
            .bind(id.0)
            .fetch_one(&mut *tx)
            .await?;
            if sold + caps::tier_units(seats.len(), &tier_lines) > i64::from(max) {
                let current = sold.clamp(0, i64::from(u32::MAX)) as u32;
                return Ok(End::Rollback(ConfirmOutcome::UserLimit { max, current }));
            }
        }
        let tier_total: i64 = tier_lines
            .iter()
            .map(|l| tier_check.prices.get(&l.code).copied().unwrap_or(0) * i64::from(l.quantity))
            .sum();
        let inserted = sqlx::query(
            "INSERT INTO bookings (event_id, booking_group_id, user_id, total_price_cents) \
             SELECT $1, $2, $3, COALESCE(sum(price_cents), 0)::bigint + $5 \
             FROM seats WHERE event_id = $1 AND seat_code = ANY($4) \
             ON CONFLICT ON CONSTRAINT bookings_pkey DO NOTHING",
        )
        .bind(event.0)
        .bind(id.0)
        .bind(&self.user_id)
        .bind(&seats)
        .bind(tier_total)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            // The booking exists (a repeat, or a concurrent confirm that committed first; the
            // insert waited for it). A new statement sees it.
            let existing = read_booking(tx, event, id).await?.ok_or_else(|| {
                Error::Internal("booking vanished after a conflicting insert".into())
            })?;
            return Ok(End::Rollback(ConfirmOutcome::Existing(existing)));
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
        tiers::sell_tiers(tx, event, id, &tier_lines, &pools).await?;
        if self.record {
            history::insert_booking_rows(tx, event, id, &self.user_id, Change::Booked).await?;
        }
        if self.source == ConfirmSource::Postgres {
            delete_held_seats(tx, event, id).await?;
            tiers::delete_held_tiers(tx, event, id).await?;
            sqlx::query("DELETE FROM holds WHERE event_id = $1 AND hold_group_id = $2")
                .bind(event.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
        }
        let booking = read_booking(tx, event, id)
            .await?
            .ok_or_else(|| Error::Internal("booking missing inside its own transaction".into()))?;
        Ok(End::Commit(ConfirmOutcome::Booked(booking)))
    }
}

/// Cancels a confirmed booking of one user and frees its seats.
struct CancelBooking {
    event: EventId,
    id: HoldGroupId,
    user_id: String,
    record: bool,
}

impl Transaction for CancelBooking {
    type Output = CancelOutcome;
    const OP: PgOp = PgOp::Cancel;

    async fn run(&self, tx: &mut PgConnection) -> Result<End<CancelOutcome>> {
        let (event, id) = (self.event.0, self.id.0);
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT user_id, status FROM bookings WHERE event_id = $1 AND booking_group_id = $2 \
             FOR UPDATE",
        )
        .bind(event)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match row {
            None => CancelOutcome::NotFound,
            Some((owner, _)) if owner != self.user_id => CancelOutcome::NotOwner,
            Some((_, status)) if status == BookingStatus::Cancelled.as_str() => {
                CancelOutcome::AlreadyCancelled
            }
            Some(_) => {
                sqlx::query(
                    "UPDATE bookings SET status = 'CANCELLED', cancelled_at = now() \
                     WHERE event_id = $1 AND booking_group_id = $2",
                )
                .bind(event)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                let seats: Vec<String> = sqlx::query_scalar(
                    "UPDATE booking_seats SET active = FALSE \
                     WHERE event_id = $1 AND booking_group_id = $2 AND active \
                     RETURNING seat_code",
                )
                .bind(event)
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                let tiers = tiers::unsell_tiers(tx, self.event, self.id).await?;
                if self.record {
                    history::insert_booking_rows(
                        tx,
                        self.event,
                        self.id,
                        &self.user_id,
                        Change::Cancelled,
                    )
                    .await?;
                }
                CancelOutcome::Cancelled(Freed { seats, tiers })
            }
        };
        Ok(End::Commit(outcome))
    }
}

/// Reads a booking with its seats (in seat-map order) on one connection.
async fn read_booking(
    conn: &mut PgConnection,
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
    let tiers = tiers::read_booking_tiers(conn, event, id).await?;
    Ok(Some(Booking {
        event_id: event,
        booking_group_id: id,
        user_id: row.try_get("user_id")?,
        status: BookingStatus::parse(&status)
            .ok_or_else(|| Error::Internal(format!("unknown booking status {status}")))?,
        seats,
        tiers,
        total_price_cents: row.try_get("total_price_cents")?,
        confirmed_at: row.try_get("confirmed_at")?,
        cancelled_at: row.try_get("cancelled_at")?,
    }))
}

impl PgStore {
    /// Writes the booking of a hold (see [`InsertBooking`]); a seat already sold comes back as
    /// `Conflict` with the seats of the hold that are taken.
    pub async fn insert_booking(
        &self,
        event: EventId,
        id: HoldGroupId,
        user_id: &str,
        source: ConfirmSource,
        max_seats: Option<u32>,
    ) -> Result<ConfirmOutcome> {
        let command = InsertBooking {
            event,
            id,
            user_id: user_id.to_string(),
            source,
            max_seats,
            record: self.record,
        };
        let source = command.source.clone();
        match self.execute(command).await {
            Err(e) if violated_constraint(&e) == Some(ONE_ACTIVE_PER_SEAT) => {
                let seats = match source {
                    ConfirmSource::Redis { seats, .. } => seats,
                    ConfirmSource::Postgres => self
                        .fetch_hold(event, id)
                        .await?
                        .map(|h| h.seats)
                        .unwrap_or_default(),
                };
                let taken = sqlx::query_scalar(
                    "SELECT seat_code FROM booking_seats \
                     WHERE event_id = $1 AND seat_code = ANY($2) AND active ORDER BY seat_code",
                )
                .bind(event.0)
                .bind(&seats)
                .fetch_all(&self.pool);
                Ok(ConfirmOutcome::Conflict(
                    self.timed(PgOp::FetchBooking, taken).await?,
                ))
            }
            other => other,
        }
    }

    pub async fn fetch_booking(&self, event: EventId, id: HoldGroupId) -> Result<Option<Booking>> {
        self.timed(PgOp::FetchBooking, async {
            let mut conn = self.pool.acquire().await?;
            read_booking(&mut conn, event, id).await
        })
        .await
    }

    /// Cancels a confirmed booking of `user_id` and frees its seats, in one transaction.
    pub async fn cancel_booking(
        &self,
        event: EventId,
        id: HoldGroupId,
        user_id: &str,
    ) -> Result<CancelOutcome> {
        let user_id = user_id.to_string();
        self.execute(CancelBooking {
            event,
            id,
            user_id,
            record: self.record,
        })
        .await
    }
}
