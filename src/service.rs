//! The flows that span both stores: hold in Redis, confirm through Postgres, release, cancel,
//! and the read models. Handlers call these; these call `store::*`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tracing::{Span, warn};

use crate::app::AppState;
use crate::bookings::{Booking, BookingStatus};
use crate::breaker::Transition;
use crate::config::{HoldBackend, HoldFallback};
use crate::error::{Error, Result};
use crate::events::EventId;
use crate::holds::{HoldGroupId, HoldStore, RefusalReason};
use crate::store::postgres::{
    self as pg, CancelOutcome, ConfirmOutcome, EventRow, HoldSource, PgHoldAttempt, SeatRow,
};
use crate::store::redis::{HoldAttempt, HoldCheck, Rebuild, Settle};
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

/// Takes an all-or-nothing hold on `codes` for `user_id`: in Redis, or in Postgres when so
/// configured or while the breaker says Redis is down. `key` (an Idempotency-Key) makes the hold
/// id deterministic, so a re-executed keyed request finds the hold it already took.
pub async fn reserve(
    state: &AppState,
    event: EventId,
    user_id: &str,
    codes: &[String],
    key: Option<&str>,
) -> Result<HoldTaken> {
    telemetry::record_hold_attempt(codes.len());
    let make_id = |store| match key {
        Some(k) => HoldGroupId::derived(event, store, user_id, k),
        None => HoldGroupId::new(event, store),
    };
    let result = if redis_allowed(state) {
        let attempt =
            reserve_in_redis(state, event, make_id(HoldStore::Redis), user_id, codes).await;
        match note_redis(state, attempt) {
            Err(e) if is_redis_outage(&e) => {
                fallback_reserve(
                    state,
                    event,
                    make_id(HoldStore::Postgres),
                    user_id,
                    codes,
                    e,
                )
                .await
            }
            other => other,
        }
    } else if state.settings.holds.backend == HoldBackend::Postgres {
        reserve_in_postgres(state, event, make_id(HoldStore::Postgres), user_id, codes).await
    } else {
        let down = Error::Unavailable { what: "redis" };
        fallback_reserve(
            state,
            event,
            make_id(HoldStore::Postgres),
            user_id,
            codes,
            down,
        )
        .await
    };
    match &result {
        Ok(hold) => {
            telemetry::record_hold_acquired();
            Span::current().record("hold.id", tracing::field::display(hold.id));
        }
        Err(Error::SeatsNotFound { .. }) => {
            telemetry::record_hold_refused(RefusalReason::UnknownSeat)
        }
        // SEATS_UNAVAILABLE was counted by reason where it was decided; the rest are not refusals.
        Err(_) => {}
    }
    result
}

/// Holds while Redis is down: in Postgres, or refused with 503, as configured.
async fn fallback_reserve(
    state: &AppState,
    event: EventId,
    id: HoldGroupId,
    user_id: &str,
    codes: &[String],
    cause: Error,
) -> Result<HoldTaken> {
    match state.settings.holds.fallback {
        HoldFallback::Reject => Err(cause),
        HoldFallback::Postgres => reserve_in_postgres(state, event, id, user_id, codes).await,
    }
}

async fn reserve_in_redis(
    state: &AppState,
    event: EventId,
    id: HoldGroupId,
    user_id: &str,
    codes: &[String],
) -> Result<HoldTaken> {
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
                telemetry::record_seats_expired(expired_trimmed);
                return Ok(HoldTaken { id, expires_at_ms });
            }
            HoldAttempt::NoCache => rebuild_inventory(state, event).await?,
            HoldAttempt::Unknown(seats) => return Err(Error::SeatsNotFound { seats }),
            HoldAttempt::Unavailable { booked, held } => {
                return Err(unavailable(codes, booked, held));
            }
        }
    }
    Err(Error::Internal(
        "inventory cache missing right after a rebuild".into(),
    ))
}

async fn reserve_in_postgres(
    state: &AppState,
    event: EventId,
    id: HoldGroupId,
    user_id: &str,
    codes: &[String],
) -> Result<HoldTaken> {
    let ttl = state.settings.holds.ttl();
    let retries = state.settings.database.max_retries;
    let attempt = pg::with_retries(retries, || {
        pg::insert_hold(&state.pg, event, id, user_id, codes, ttl)
    });
    match attempt.await? {
        PgHoldAttempt::Held { expires_at } => Ok(HoldTaken {
            id,
            expires_at_ms: expires_at.timestamp_millis(),
        }),
        PgHoldAttempt::Unknown(seats) => match pg::fetch_event(&state.pg, event).await? {
            Some(_) => Err(Error::SeatsNotFound { seats }),
            None => Err(Error::EventNotFound),
        },
        PgHoldAttempt::Unavailable { booked, held } => Err(unavailable(codes, booked, held)),
    }
}

/// The 409 of a refused hold: exactly the requested seats that are taken, in request order.
fn unavailable(codes: &[String], booked: Vec<String>, held: Vec<String>) -> Error {
    let reason = if booked.is_empty() {
        RefusalReason::Held
    } else {
        RefusalReason::Booked
    };
    telemetry::record_hold_refused(reason);
    let taken: HashSet<&String> = booked.iter().chain(&held).collect();
    Error::SeatsUnavailable {
        seats: codes
            .iter()
            .filter(|c| taken.contains(c))
            .cloned()
            .collect(),
    }
}

/// Loads the event's seats and booked seats from Postgres into Redis. The cache generation is
/// read before the snapshot, so a cancel or booking that lands in between makes the write refuse
/// and the snapshot is taken again.
async fn rebuild_inventory(state: &AppState, event: EventId) -> Result<()> {
    for _ in 0..3 {
        let started = Instant::now();
        let generation = state.redis.inventory_generation(event).await?;
        let (seats, booked) = pg::fetch_inventory(&state.pg, event)
            .await?
            .ok_or(Error::EventNotFound)?;
        match state
            .redis
            .rebuild_inventory(event, &generation, &seats, &booked)
            .await?
        {
            Rebuild::Written => {
                telemetry::record_rebuild(started.elapsed());
                tracing::info!(event.id = %event, seats = seats.len(), booked = booked.len(), "inventory cache rebuilt");
                return Ok(());
            }
            Rebuild::AlreadyCached => return Ok(()),
            Rebuild::Stale => continue,
        }
    }
    Err(Error::Unavailable {
        what: "the inventory cache (it keeps changing during rebuilds)",
    })
}

/// Whether Redis should be asked now (configured backend, and the breaker lets it through).
fn redis_allowed(state: &AppState) -> bool {
    state.settings.holds.backend == HoldBackend::Redis && state.breaker.allow(Instant::now())
}

/// Errors that mean Redis is unreachable or too slow, as opposed to an answer.
pub fn is_redis_outage(e: &Error) -> bool {
    matches!(e, Error::Redis(_) | Error::RedisPool(_))
}

/// Feeds a Redis call's outcome to the breaker and reacts to its transitions.
fn note_redis<T>(state: &AppState, result: Result<T>) -> Result<T> {
    let transition = match &result {
        Err(e) if is_redis_outage(e) => state.breaker.on_failure(Instant::now()),
        _ => state.breaker.on_success(),
    };
    match transition {
        Transition::Opened => {
            let fallback = state.settings.holds.fallback;
            warn!(?fallback, "redis is failing; holds switch to the fallback");
            telemetry::record_backend(match fallback {
                HoldFallback::Postgres => "postgres",
                HoldFallback::Reject => "none",
            });
        }
        Transition::Closed => {
            tracing::info!("redis is back; holds return to redis");
            telemetry::record_backend("redis");
            if !state
                .reconciling
                .swap(true, std::sync::atomic::Ordering::AcqRel)
            {
                let state = state.clone();
                tokio::spawn(async move {
                    reconcile_after_outage(&state).await;
                    state
                        .reconciling
                        .store(false, std::sync::atomic::Ordering::Release);
                });
            }
        }
        Transition::None => {}
    }
    result
}

/// After an outage, Redis's caches may be stale (bookings and cancels went to Postgres only):
/// drop them so they rebuild from Postgres, and copy live Postgres holds into Redis so new Redis
/// holds do not take their seats.
async fn reconcile_after_outage(state: &AppState) {
    match state.redis.drop_inventories().await {
        Ok(n) => tracing::info!(events = n, "dropped cached inventories after the outage"),
        Err(e) => warn!(error = %e, "could not drop cached inventories"),
    }
    let holds = match pg::fetch_live_holds(&state.pg).await {
        Ok(h) => h,
        Err(e) => return warn!(error = %e, "could not read postgres holds to copy into redis"),
    };
    let mut copied = 0;
    for (event, id, user, seats, ms) in holds {
        let ttl = Duration::from_millis(ms.max(1) as u64);
        let mut copy = state
            .redis
            .acquire_hold(event, id, &user, ttl, &seats)
            .await;
        if matches!(copy, Ok(HoldAttempt::NoCache)) && rebuild_inventory(state, event).await.is_ok()
        {
            copy = state
                .redis
                .acquire_hold(event, id, &user, ttl, &seats)
                .await;
        }
        match copy {
            Ok(HoldAttempt::Held { .. }) => {
                // Released, confirmed or expired in Postgres while we copied: drop the copy.
                let still_alive =
                    matches!(pg::fetch_hold(&state.pg, event, id).await, Ok(Some(h)) if h.alive);
                if still_alive {
                    copied += 1;
                } else if let Err(e) = state
                    .redis
                    .settle_hold(event, id, Settle::Drop, &seats)
                    .await
                {
                    warn!(error = %e, hold.id = %id, "could not drop the copy of a finished postgres hold");
                }
            }
            Ok(other) => {
                warn!(hold.id = %id, outcome = ?other, "postgres hold not copied into redis")
            }
            Err(e) => warn!(error = %e, hold.id = %id, "postgres hold not copied into redis"),
        }
    }
    tracing::info!(holds = copied, "copied live postgres holds into redis");
}

/// For a Redis hold checked while Redis cannot be asked: Postgres can only say whether it was
/// settled; "not in Postgres" means "unknown until Redis is back" (503), not "gone" (410).
fn unknown_while_redis_is_down<T>(settled: Result<T>) -> Result<T> {
    match settled {
        Err(Error::HoldGone) => Err(Error::Unavailable { what: "redis" }),
        other => other,
    }
}

/// Fails with 400 when the hold id was issued for another event.
fn check_hold_event(event: EventId, id: HoldGroupId) -> Result<()> {
    match id.event() {
        Some(owner) if owner != event => Err(Error::HoldEventMismatch),
        _ => Ok(()),
    }
}

/// What is known about a hold that its store no longer has.
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
        Err(Error::SeatsAlreadyBooked { .. } | Error::SeatsUnavailable { .. }) => "guard_refused",
        Err(Error::HoldEventMismatch) => "wrong_event",
        Err(_) => "error",
    };
    telemetry::record_confirm(outcome);
    if result.is_ok() {
        Span::current().record("booking.id", tracing::field::display(id));
    }
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
    if id.store() == HoldStore::Postgres {
        return confirm_postgres_hold(state, event, user_id, id).await;
    }
    if !redis_allowed(state) {
        // The hold can only be checked in Redis; a repeat of a committed confirm still answers.
        return unknown_while_redis_is_down(repeat_confirm(state, event, user_id, id).await);
    }
    match note_redis(state, confirm_redis_hold(state, event, user_id, id).await) {
        Err(e) if is_redis_outage(&e) => match repeat_confirm(state, event, user_id, id).await {
            Err(Error::HoldGone) => Err(e),
            other => other,
        },
        other => other,
    }
}

async fn confirm_redis_hold(
    state: &AppState,
    event: EventId,
    user_id: &str,
    id: HoldGroupId,
) -> Result<(Booking, bool)> {
    let hold = match state.redis.fetch_hold(event, id).await? {
        Some(hold) => hold,
        None => return repeat_confirm(state, event, user_id, id).await,
    };
    if hold.user_id != user_id {
        return Err(Error::NotHoldOwner);
    }
    let grace = Duration::from_secs(state.settings.holds.confirm_grace_seconds);
    // This attempt's pin: a failed attempt removes only its own, never a concurrent one's.
    let token = uuid::Uuid::new_v4().to_string();
    let pinned = state
        .redis
        .pin_hold(event, id, user_id, &hold.seats, grace, &token)
        .await;
    match pinned {
        Ok(HoldCheck::Ok | HoldCheck::Pinned) => {}
        Ok(HoldCheck::NotOwner) => return Err(Error::NotHoldOwner),
        Ok(HoldCheck::Gone) => return repeat_confirm(state, event, user_id, id).await,
        Err(e) => {
            // The pin may have landed without its reply: take it back if it did.
            let _ = state.redis.unpin_hold(event, id, &token).await;
            return Err(e);
        }
    }
    let retries = state.settings.database.max_retries;
    let source = HoldSource::Redis(&hold.seats);
    let outcome = match pg::insert_booking(&state.pg, retries, event, id, user_id, source).await {
        Ok(outcome) => outcome,
        Err(e) => {
            // The commit may have happened without its reply reaching us: if the booking is
            // there, this confirm succeeded.
            if let Ok(Some(booking)) = pg::fetch_booking(&state.pg, event, id).await
                && booking.user_id == user_id
                && is_booking_of(&booking, &hold.seats)
            {
                finish_hold(state, event, id, Settle::Book, &hold.seats).await;
                return Ok((booking, false));
            }
            // Nothing was written; let the owner release the hold again (or retry the confirm).
            if let Err(unpin) = state.redis.unpin_hold(event, id, &token).await {
                warn!(error = %unpin, "could not unpin the hold after a failed confirm");
            }
            return Err(e);
        }
    };
    match outcome {
        ConfirmOutcome::Booked(booking) => {
            finish_hold(state, event, id, Settle::Book, &hold.seats).await;
            Ok((booking, false))
        }
        ConfirmOutcome::Existing(booking) if booking.user_id != user_id => Err(Error::NotHoldOwner),
        ConfirmOutcome::Existing(booking) if is_booking_of(&booking, &hold.seats) => {
            finish_hold(state, event, id, Settle::Book, &hold.seats).await;
            Ok((booking, true))
        }
        ConfirmOutcome::Existing(_) => {
            // A booking with this id exists but is not this hold's (cancelled since, or other
            // seats): nothing was sold by this confirm; let the hold's seats go.
            finish_hold(state, event, id, Settle::Drop, &hold.seats).await;
            Err(Error::HoldGone)
        }
        ConfirmOutcome::NotOwner => Err(Error::NotHoldOwner),
        ConfirmOutcome::Conflict(seats) => {
            // Redis had lost track of these sales; Postgres refused. Teach Redis and let go.
            finish_hold(state, event, id, Settle::Drop, &hold.seats).await;
            if let Err(e) = state.redis.mark_booked(event, true, &seats).await {
                warn!(error = %e, "could not mark guard-refused seats as booked in redis");
            }
            Err(Error::SeatsAlreadyBooked { seats })
        }
        ConfirmOutcome::HeldElsewhere(seats) => {
            finish_hold(state, event, id, Settle::Drop, &hold.seats).await;
            Err(Error::SeatsUnavailable { seats })
        }
        ConfirmOutcome::HoldGone => Err(Error::HoldGone),
    }
}

async fn confirm_postgres_hold(
    state: &AppState,
    event: EventId,
    user_id: &str,
    id: HoldGroupId,
) -> Result<(Booking, bool)> {
    let retries = state.settings.database.max_retries;
    match pg::insert_booking(&state.pg, retries, event, id, user_id, HoldSource::Postgres).await? {
        ConfirmOutcome::Booked(booking) => {
            let seats: Vec<String> = booking.seats.iter().map(|s| s.code.clone()).collect();
            // Best effort: drop a copy of the hold in Redis and mark its seats booked there.
            if redis_allowed(state) {
                let settled = state
                    .redis
                    .settle_hold(event, id, Settle::Book, &seats)
                    .await;
                let _ = note_redis(state, settled);
            }
            Ok((booking, false))
        }
        ConfirmOutcome::Existing(booking) if booking.user_id != user_id => Err(Error::NotHoldOwner),
        ConfirmOutcome::Existing(booking) if booking.status == BookingStatus::Confirmed => {
            Ok((booking, true))
        }
        ConfirmOutcome::Existing(_) => Err(Error::HoldGone),
        ConfirmOutcome::NotOwner => Err(Error::NotHoldOwner),
        ConfirmOutcome::HoldGone => repeat_confirm(state, event, user_id, id).await,
        ConfirmOutcome::Conflict(seats) => Err(Error::SeatsAlreadyBooked { seats }),
        ConfirmOutcome::HeldElsewhere(seats) => Err(Error::SeatsUnavailable { seats }),
    }
}

/// Whether an existing booking is the confirmed booking of exactly these seats (a repeat).
fn is_booking_of(booking: &Booking, seats: &[String]) -> bool {
    let booked: HashSet<&str> = booking.seats.iter().map(|s| s.code.as_str()).collect();
    booking.status == BookingStatus::Confirmed
        && booked.len() == seats.len()
        && seats.iter().all(|s| booked.contains(s.as_str()))
}

/// A confirm whose hold is no longer in its store: a repeat of a committed confirm gets its
/// booking.
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
    seats: &[String],
) {
    if let Err(e) = state.redis.settle_hold(event, id, how, seats).await {
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
    if id.store() == HoldStore::Postgres {
        if let Some(seats) = pg::delete_hold(&state.pg, event, id, user_id).await? {
            // Best effort: drop the copy of this hold that recovery may have put in Redis.
            if redis_allowed(state) {
                let dropped = state
                    .redis
                    .settle_hold(event, id, Settle::Drop, &seats)
                    .await;
                let _ = note_redis(state, dropped);
            }
            return Ok(());
        }
        if let Some(hold) = pg::fetch_hold(&state.pg, event, id).await?
            && hold.alive
            && hold.user_id != user_id
        {
            return Err(Error::NotHoldOwner);
        }
        return released_elsewhere(state, event, user_id, id).await;
    }
    if !redis_allowed(state) {
        return unknown_while_redis_is_down(released_elsewhere(state, event, user_id, id).await);
    }
    match note_redis(state, release_redis_hold(state, event, user_id, id).await) {
        Ok(true) => Ok(()),
        Ok(false) => released_elsewhere(state, event, user_id, id).await,
        Err(e) => Err(e),
    }
}

/// Releases a Redis hold; false when Redis no longer has it.
async fn release_redis_hold(
    state: &AppState,
    event: EventId,
    user_id: &str,
    id: HoldGroupId,
) -> Result<bool> {
    let Some(hold) = state.redis.fetch_hold(event, id).await? else {
        return Ok(false);
    };
    if hold.user_id != user_id {
        return Err(Error::NotHoldOwner);
    }
    match state
        .redis
        .settle_hold(event, id, Settle::Release { user_id }, &hold.seats)
        .await?
    {
        HoldCheck::Ok => Ok(true),
        HoldCheck::NotOwner => Err(Error::NotHoldOwner),
        HoldCheck::Pinned => Err(Error::HoldAlreadyConfirmed),
        HoldCheck::Gone => Ok(false),
    }
}

/// A release whose hold is gone from its store: confirmed (409) or expired/unknown (410).
async fn released_elsewhere(
    state: &AppState,
    event: EventId,
    user_id: &str,
    id: HoldGroupId,
) -> Result<()> {
    match settled_hold(state, event, id).await? {
        Some(b) if b.user_id != user_id => Err(Error::NotHoldOwner),
        Some(_) => Err(Error::HoldAlreadyConfirmed),
        None => Err(Error::HoldGone),
    }
}

/// Cancels a confirmed booking of `user_id`; its seats can be held again at once.
pub async fn cancel(state: &AppState, user_id: &str, id: HoldGroupId) -> Result<()> {
    let event = id.event().ok_or(Error::BookingNotFound)?;
    let retries = state.settings.database.max_retries;
    let outcome = pg::with_retries(retries, || {
        pg::cancel_booking(&state.pg, event, id, user_id)
    })
    .await;
    telemetry::record_cancel(match &outcome {
        Ok(CancelOutcome::Cancelled(_)) => "cancelled",
        Ok(CancelOutcome::AlreadyCancelled) => "repeat",
        Ok(CancelOutcome::NotOwner) => "not_owner",
        Ok(CancelOutcome::NotFound) => "not_found",
        Err(_) => "error",
    });
    match outcome? {
        CancelOutcome::Cancelled(seats) => {
            // While Redis is down the cache is dropped on recovery instead (see reconcile).
            if redis_allowed(state) {
                let freed = note_redis(state, state.redis.mark_booked(event, false, &seats).await);
                if let Err(e) = freed {
                    warn!(error = %e, booking.id = %id, "could not free cancelled seats in redis");
                }
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

/// Seats held in Redis now, with milliseconds left; empty while Redis is down (reads then show
/// Postgres holds only, rather than failing).
async fn redis_held_seats(state: &AppState, event: EventId) -> Vec<(String, i64)> {
    if !redis_allowed(state) {
        return Vec::new();
    }
    note_redis(state, state.redis.held_seats(event).await).unwrap_or_else(|e| {
        warn!(error = %e, "could not read redis holds; showing postgres holds only");
        Vec::new()
    })
}

/// An event with confirmed seats from Postgres and held seats from both stores.
pub async fn event_summary(state: &AppState, event: EventId) -> Result<EventSummary> {
    let row = pg::fetch_event(&state.pg, event)
        .await?
        .ok_or(Error::EventNotFound)?;
    let redis_count = async {
        if !redis_allowed(state) {
            return 0;
        }
        note_redis(state, state.redis.held_count(event).await).unwrap_or(0)
    };
    let (counts, redis_held) = tokio::join!(pg::count_seats(&state.pg, event), redis_count);
    let (confirmed_seats, pg_held) = counts?;
    let held_seats = if pg_held > 0 && redis_held > 0 {
        // Postgres holds may have been copied into Redis after an outage: count each seat once.
        let mut seats: HashSet<String> = pg::fetch_held_codes(&state.pg, event)
            .await?
            .into_iter()
            .collect();
        seats.extend(
            redis_held_seats(state, event)
                .await
                .into_iter()
                .map(|(code, _)| code),
        );
        seats.len() as i64
    } else {
        redis_held + pg_held
    };
    Ok(EventSummary {
        event: row,
        confirmed_seats,
        held_seats,
    })
}

/// The seat map: every seat with its status now.
pub async fn seat_map(state: &AppState, event: EventId) -> Result<Vec<SeatState>> {
    let (seats, held) = tokio::join!(
        pg::fetch_seat_map(&state.pg, event),
        redis_held_seats(state, event)
    );
    let seats = seats?;
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
                held.get(&seat.seat_code).copied().or(seat.held_ms)
            };
            SeatState { seat, held_ms }
        })
        .collect())
}

/// Creates an event and warms its inventory cache in Redis (best effort: a cold cache is
/// rebuilt on the first hold).
pub async fn create_event(state: &AppState, event: &crate::events::NewEvent) -> Result<EventId> {
    let id = pg::insert_event(&state.pg, event).await?;
    if redis_allowed(state)
        && let Err(e) = note_redis(state, rebuild_inventory(state, id).await)
    {
        warn!(error = %e, event.id = %id, "could not warm the inventory cache; the first hold will");
    }
    Ok(id)
}
