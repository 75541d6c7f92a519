//! The history: `GET /events/{id}/changes?after=&limit=` (every change of the event, oldest
//! first, to loop on with `nextAfter`) and `GET /events/{id}/seats/{code}/history?limit=` (one
//! seat's, newest first). For the seller's systems: admins and service keys (a buyer gets 403).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::EventPath;
use super::state::AppState;
use crate::domain::access::{Action, Caller, authorize};
use crate::domain::events::EventId;
use crate::domain::history::{ChangeRecord, Item};
use crate::domain::webhooks::rfc3339;
use crate::error::Error;

/// Most changes one read returns.
const MAX_LIMIT: i64 = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/events/{event_id}/changes", get(list_changes))
        .route(
            "/events/{event_id}/seats/{seat_code}/history",
            get(seat_history),
        )
}

/// One change of one seat (`seatCode`) or of some units of a tier (`tierCode` + `quantity`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ChangeView {
    /// Per event, strictly increasing.
    seq: i64,
    /// When it happened (RFC 3339).
    #[schema(format = DateTime)]
    at: String,
    /// The seat, or null for a tier line.
    seat_code: Option<String>,
    /// The tier, or null for a seat.
    tier_code: Option<String>,
    /// Units of the tier, or null for a seat.
    quantity: Option<u32>,
    /// HELD, EXTENDED, RELEASED, EXPIRED, BOOKED, CANCELLED, BLOCKED or UNBLOCKED.
    #[schema(example = "HELD")]
    change: &'static str,
    /// The seat's status after the change: AVAILABLE, HELD, BOOKED or BLOCKED.
    #[schema(example = "HELD")]
    status: &'static str,
    /// The hold; null for a block or an unblock.
    #[schema(value_type = Option<String>, format = Uuid)]
    hold_group_id: Option<String>,
    /// Set when booked or cancelled.
    #[schema(value_type = Option<String>, format = Uuid)]
    booking_group_id: Option<String>,
    user_id: String,
    /// Set when held or extended (RFC 3339).
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

impl From<ChangeRecord> for ChangeView {
    fn from(r: ChangeRecord) -> Self {
        let (seat_code, tier_code, quantity) = match r.item {
            Item::Seat(code) => (Some(code), None, None),
            Item::Tier { code, quantity } => (None, Some(code), Some(quantity)),
        };
        ChangeView {
            seq: r.seq,
            at: rfc3339(r.at_ms),
            seat_code,
            tier_code,
            quantity,
            change: r.change.as_str(),
            status: r.status.as_str(),
            hold_group_id: (!r.hold.0.is_nil()).then(|| r.hold.to_string()),
            booking_group_id: r.booking.map(|b| b.to_string()),
            user_id: r.user_id,
            expires_at: r.expires_at_ms.map(rfc3339),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ChangesPage {
    #[schema(value_type = i64)]
    event_id: EventId,
    changes: Vec<ChangeView>,
    /// The last `seq` returned, or the `after` given when nothing is new: the next `after`.
    next_after: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct SeatHistory {
    #[schema(value_type = i64)]
    event_id: EventId,
    seat_code: String,
    /// Newest first.
    changes: Vec<ChangeView>,
}

/// A query integer within bounds, or a 400 naming it.
fn number(
    params: &HashMap<String, String>,
    key: &str,
    default: i64,
    (min, max): (i64, i64),
) -> Result<i64, ApiError> {
    match params.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ApiError::validation(format!("{key} must be an integer from {min} to {max}"))
            }),
    }
}

/// Every change of an event after `after`, oldest first (admins and service keys).
#[utoipa::path(get, path = "/events/{event_id}/changes", tag = "history",
    params(
        ("event_id" = i64, Path, description = "Event id", minimum = 1, example = 1),
        ("after" = Option<i64>, Query, description = "Return changes with a greater seq (default 0)", minimum = 0),
        ("limit" = Option<i64>, Query, description = "At most this many (default 100)", minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "The changes", body = ChangesPage),
        (status = 400, description = "A parameter out of range", body = ErrorBody),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "The token may not do this (buyers)", body = ErrorBody),
        (status = 404, description = "No such event, or history.enabled is false (HISTORY_DISABLED)", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn list_changes(
    State(state): State<AppState>,
    caller: Caller,
    EventPath(id): EventPath,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<ChangesPage>> {
    authorize(&caller, Action::ReadHistory, None)?;
    let after = number(&params, "after", 0, (0, i64::MAX))?;
    let limit = number(&params, "limit", 100, (1, MAX_LIMIT))?;
    let changes = state.seatlock.changes(id, after, limit).await?;
    let next_after = changes.last().map_or(after, |c| c.seq);
    Ok(Json(ChangesPage {
        event_id: id,
        changes: changes.into_iter().map(ChangeView::from).collect(),
        next_after,
    }))
}

/// One seat's changes, newest first (admins and service keys).
#[utoipa::path(get, path = "/events/{event_id}/seats/{seat_code}/history", tag = "history",
    params(
        ("event_id" = i64, Path, description = "Event id", minimum = 1, example = 1),
        ("seat_code" = String, Path, description = "Seat code", example = "A12"),
        ("limit" = Option<i64>, Query, description = "At most this many (default 100)", minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "The seat's changes", body = SeatHistory),
        (status = 400, description = "A parameter out of range", body = ErrorBody),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "The token may not do this (buyers)", body = ErrorBody),
        (status = 404, description = "No such event or seat, or history.enabled is false (HISTORY_DISABLED)", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn seat_history(
    State(state): State<AppState>,
    caller: Caller,
    path: Option<Path<(String, String)>>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<SeatHistory>> {
    let Some(Path((event, seat))) = path else {
        return Err(Error::EventNotFound.into());
    };
    let id = EventId::parse(&event).ok_or(Error::EventNotFound)?;
    tracing::Span::current().record("event.id", id.0);
    authorize(&caller, Action::ReadHistory, None)?;
    let limit = number(&params, "limit", 100, (1, MAX_LIMIT))?;
    let changes = state.seatlock.seat_history(id, &seat, limit).await?;
    Ok(Json(SeatHistory {
        event_id: id,
        seat_code: seat,
        changes: changes.into_iter().map(ChangeView::from).collect(),
    }))
}
