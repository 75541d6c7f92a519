//! The flows that span both stores: hold in Redis, confirm through Postgres, release, cancel,
//! and the read models. Handlers call these; these call `store::*`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tracing::{Span, warn};

use crate::app::AppState;
use crate::bookings::{Booking, BookingStatus};
use crate::error::{Error, Result};
use crate::events::EventId;
use crate::holds::{HoldGroupId, RefusalReason};
use crate::store::postgres::{self as pg, CancelOutcome, ConfirmOutcome, EventRow, SeatRow};
use crate::store::redis::{HoldAttempt, HoldCheck, HoldRecord, Settle};
use crate::telemetry;

/// A hold just taken.
#[derive(Debug, Clone)]
pub struct HoldTaken {
    pub id: HoldGroupId,
    pub expires_at_ms: i64,
}

/// An event with its live counts.
#[derive(Debug, Clone)]
pub struct EventSummary {
    pub event: EventRow,
    pub confirmed_seats: i64,
    pub held_seats: i64,
}

/// One seat of the seat map with its status now.
#[derive(Debug, Clone)]
pub struct SeatState {
    pub seat: SeatRow,
    /// Milliseconds left on the hold, when the seat is held and not booked.
    pub held_ms: Option<i64>,
}

/// Takes an all-or-nothing hold on `codes` for `user_id`.
pub async fn reserve(
    state: &AppState,
    event: EventId,
    user_id: &str,
    codes: &[String],
) -> Result<HoldTaken> {
    telemetry::record_hold_attempt(codes.len());
    let id = HoldGroupId::new(event);
    let ttl = state.settings.holds.ttl();
    // Two tries: the second follows a rebuild of a missing inventory cache.
    for _ in 0..2 {
        match state
            .redis
            .acquire_hold(event, id, user_id, ttl, codes)
            .await?
        {
            HoldAttempt::Held {
                expires_at_ms,
                expired_trimmed,
            } => {
                telemetry::record_hold_acquired();
                telemetry::record_seats_expired(expired_trimmed);
                Span::current().record("hold.id", tracing::field::display(id));
                return Ok(HoldTaken { id, expires_at_ms });
            }
            HoldAttempt::NoCache => rebuild_inventory(state, event).await?,
            HoldAttempt::Unknown(seats) => {
                telemetry::record_hold_refused(RefusalReason::UnknownSeat);
                return Err(Error::SeatsNotFound { seats });
            }
            HoldAttempt::Unavailable { booked, held } => {
                let reason = if booked.is_empty() {
                    RefusalReason::Held
                } else {
                    RefusalReason::Booked
                };
                telemetry::record_hold_refused(reason);
                let taken: HashSet<&String> = booked.iter().chain(&held).collect();
                let seats = codes
                    .iter()
                    .filter(|c| taken.contains(c))
                    .cloned()
                    .collect();
                return Err(Error::SeatsUnavailable { seats });
            }
        }
    }
    Err(Error::Internal(
        "inventory cache missing right after a rebuild".into(),
    ))
}

/// Loads the event's seats and booked seats from Postgres into Redis.
async fn rebuild_inventory(state: &AppState, event: EventId) -> Result<()> {
    let started = Instant::now();
    let (seats, booked) = pg::fetch_inventory(&state.pg, event)
        .await?
        .ok_or(Error::EventNotFound)?;
    if state
        .redis
        .rebuild_inventory(event, &seats, &booked)
        .await?
    {
        telemetry::record_rebuild(started.elapsed());
        tracing::info!(event.id = %event, seats = seats.len(), booked = booked.len(), "inventory cache rebuilt");
    }
    Ok(())
}

/// Fails with 400 when the hold id was issued for another event.
fn check_hold_event(event: EventId, id: HoldGroupId) -> Result<()> {
    match id.event() {
        Some(owner) if owner != event => Err(Error::HoldEventMismatch),
        _ => Ok(()),
    }
}

/// What is known about a hold that Redis no longer has.
async fn settled_hold(
    state: &AppState,
    event: EventId,
    id: HoldGroupId,
) -> Result<Option<Booking>> {
    if let Some(booking) = pg::fetch_booking(&state.pg, event, id).await? {
        return Ok(Some(booking));
    }
    match pg::fetch_event(&state.pg, event).await? {
        Some(_) => Ok(None),
        None => Err(Error::EventNotFound),
    }
}

/// Confirms a hold into a booking. Repeating a successful confirm returns the same booking.
pub async fn confirm(
    state: &AppState,
    event: EventId,
    user_id: &str,
    id: HoldGroupId,
) -> Result<Booking> {
    let result = confirm_inner(state, event, user_id, id).await;
    let outcome = match &result {
        Ok((_, repeat)) => {
            if *repeat {
                "repeat"
            } else {
                "booked"
            }
        }
        Err(Error::HoldGone | Error::EventNotFound) => "expired",
        Err(Error::NotHoldOwner) => "not_owner",
        Err(Error::SeatsAlreadyBooked { .. }) => "guard_refused",
        Err(Error::HoldEventMismatch) => "wrong_event",
        Err(_) => "error",
    };
    telemetry::record_confirm(outcome);
    result.map(|(booking, _)| booking)
}

/// Returns the booking and whether it already existed.
async fn confirm_inner(
    state: &AppState,
    event: EventId,
    user_id: &str,
    id: HoldGroupId,
) -> Result<(Booking, bool)> {
    check_hold_event(event, id)?;
    let hold = match state.redis.fetch_hold(event, id).await? {
        Some(hold) => hold,
        None => return repeat_confirm(state, event, user_id, id).await,
    };
    if hold.user_id != user_id {
        return Err(Error::NotHoldOwner);
    }
    let grace = Duration::from_secs(state.settings.holds.confirm_grace_seconds);
    match state
        .redis
        .pin_hold(event, id, user_id, &hold.seats, grace)
        .await?
    {
        HoldCheck::Ok | HoldCheck::Pinned => {}
        HoldCheck::NotOwner => return Err(Error::NotHoldOwner),
        HoldCheck::Gone => return repeat_confirm(state, event, user_id, id).await,
    }
    match pg::insert_booking(&state.pg, event, id, user_id, &hold.seats).await? {
        ConfirmOutcome::Booked(booking) => {
            finish_hold(state, event, id, Settle::Book, &hold).await;
            Span::current().record("booking.id", tracing::field::display(id));
            Ok((booking, false))
        }
        ConfirmOutcome::Existing(booking) if booking.user_id == user_id => {
            finish_hold(state, event, id, Settle::Book, &hold).await;
            Ok((booking, true))
        }
        ConfirmOutcome::Existing(_) => Err(Error::NotHoldOwner),
        ConfirmOutcome::Conflict(seats) => {
            // Redis had lost track of these sales; Postgres refused. Teach Redis and let go.
            finish_hold(state, event, id, Settle::Drop, &hold).await;
            if let Err(e) = state.redis.mark_booked(event, true, &seats).await {
                warn!(error = %e, "could not mark guard-refused seats as booked in redis");
            }
            Err(Error::SeatsAlreadyBooked { seats })
        }
    }
}

/// A confirm whose hold is no longer in Redis: a repeat of a committed confirm gets its booking.
async fn repeat_confirm(
    state: &AppState,
    event: EventId,
    user_id: &str,
    id: HoldGroupId,
) -> Result<(Booking, bool)> {
    match settled_hold(state, event, id).await? {
        Some(b) if b.user_id != user_id => Err(Error::NotHoldOwner),
        Some(b) if b.status == BookingStatus::Confirmed => Ok((b, true)),
        _ => Err(Error::HoldGone),
    }
}

/// Ends a hold in Redis after Postgres decided. Postgres already holds the truth, so a Redis
/// failure here is logged, not returned: the hold's keys expire by TTL on their own.
async fn finish_hold(
    state: &AppState,
    event: EventId,
    id: HoldGroupId,
    how: Settle<'_>,
    hold: &HoldRecord,
) {
    if let Err(e) = state.redis.settle_hold(event, id, how, &hold.seats).await {
        warn!(error = %e, hold.id = %id, "could not settle the hold in redis; it will expire by TTL");
    }
}

/// Releases a live hold of `user_id`.
pub async fn release(
    state: &AppState,
    event: EventId,
    user_id: &str,
    id: HoldGroupId,
) -> Result<()> {
    let result = release_inner(state, event, user_id, id).await;
    let outcome = match &result {
        Ok(()) => "released",
        Err(Error::HoldGone | Error::EventNotFound) => "expired",
        Err(Error::NotHoldOwner) => "not_owner",
        Err(Error::HoldAlreadyConfirmed) => "already_confirmed",
        Err(Error::HoldEventMismatch) => "wrong_event",
        Err(_) => "error",
    };
    telemetry::record_release(outcome);
    result
}

async fn release_inner(
    state: &AppState,
    event: EventId,
    user_id: &str,
    id: HoldGroupId,
) -> Result<()> {
    check_hold_event(event, id)?;
    let gone = match state.redis.fetch_hold(event, id).await? {
        Some(hold) if hold.user_id != user_id => return Err(Error::NotHoldOwner),
        Some(hold) => {
            let how = Settle::Release { user_id };
            match state.redis.settle_hold(event, id, how, &hold.seats).await? {
                HoldCheck::Ok => return Ok(()),
                HoldCheck::NotOwner => return Err(Error::NotHoldOwner),
                HoldCheck::Pinned => return Err(Error::HoldAlreadyConfirmed),
                HoldCheck::Gone => true,
            }
        }
        None => true,
    };
    debug_assert!(gone);
    match settled_hold(state, event, id).await? {
        Some(b) if b.user_id != user_id => Err(Error::NotHoldOwner),
        Some(_) => Err(Error::HoldAlreadyConfirmed),
        None => Err(Error::HoldGone),
    }
}

/// Cancels a confirmed booking of `user_id`; its seats can be held again at once.
pub async fn cancel(state: &AppState, user_id: &str, id: HoldGroupId) -> Result<()> {
    let event = id.event().ok_or(Error::BookingNotFound)?;
    let outcome = pg::cancel_booking(&state.pg, event, id, user_id).await;
    telemetry::record_cancel(match &outcome {
        Ok(CancelOutcome::Cancelled(_)) => "cancelled",
        Ok(CancelOutcome::AlreadyCancelled) => "repeat",
        Ok(CancelOutcome::NotOwner) => "not_owner",
        Ok(CancelOutcome::NotFound) => "not_found",
        Err(_) => "error",
    });
    match outcome? {
        CancelOutcome::Cancelled(seats) => {
            if let Err(e) = state.redis.mark_booked(event, false, &seats).await {
                warn!(error = %e, booking.id = %id, "could not free cancelled seats in redis");
            }
            Ok(())
        }
        CancelOutcome::AlreadyCancelled => Ok(()),
        CancelOutcome::NotOwner => Err(Error::NotBookingOwner),
        CancelOutcome::NotFound => Err(Error::BookingNotFound),
    }
}

pub async fn fetch_booking(state: &AppState, id: HoldGroupId) -> Result<Booking> {
    let event = id.event().ok_or(Error::BookingNotFound)?;
    pg::fetch_booking(&state.pg, event, id)
        .await?
        .ok_or(Error::BookingNotFound)
}

/// An event with confirmed seats from Postgres and held seats from Redis.
pub async fn event_summary(state: &AppState, event: EventId) -> Result<EventSummary> {
    let row = pg::fetch_event(&state.pg, event)
        .await?
        .ok_or(Error::EventNotFound)?;
    let (confirmed_seats, held_seats) = tokio::try_join!(
        pg::count_confirmed_seats(&state.pg, event),
        state.redis.held_count(event)
    )?;
    Ok(EventSummary {
        event: row,
        confirmed_seats,
        held_seats,
    })
}

/// The seat map: every seat with its status now.
pub async fn seat_map(state: &AppState, event: EventId) -> Result<Vec<SeatState>> {
    let (seats, held) = tokio::try_join!(
        pg::fetch_seat_map(&state.pg, event),
        state.redis.held_seats(event)
    )?;
    if seats.is_empty() {
        return Err(Error::EventNotFound);
    }
    let held: HashMap<String, i64> = held.into_iter().collect();
    Ok(seats
        .into_iter()
        .map(|seat| {
            let held_ms = if seat.booked {
                None
            } else {
                held.get(&seat.seat_code).copied()
            };
            SeatState { seat, held_ms }
        })
        .collect())
}

/// Creates an event and warms its inventory cache in Redis (best effort: a cold cache is
/// rebuilt on the first hold).
pub async fn create_event(state: &AppState, event: &crate::events::NewEvent) -> Result<EventId> {
    let id = pg::insert_event(&state.pg, event).await?;
    if let Err(e) = rebuild_inventory(state, id).await {
        warn!(error = %e, event.id = %id, "could not warm the inventory cache; the first hold will");
    }
    Ok(id)
}
