//! Blocked seats (admins): `POST /events/{id}/seats/block {seatCodes, reason}` and
//! `POST /events/{id}/seats/unblock {seatCodes}`, all or nothing; blocking a blocked seat or
//! unblocking a free one is a no-op.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, EventPath};
use super::state::AppState;
use crate::domain::access::{Action, Caller, authorize};
use crate::domain::fields::check_code;

/// Most seats one request may block or unblock.
const MAX_CODES: usize = 1000;
/// Longest reason.
const MAX_REASON: usize = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/events/{event_id}/seats/block", post(block_seats))
        .route("/events/{event_id}/seats/unblock", post(unblock_seats))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct BlockBody {
    /// 1-1,000 seat codes.
    #[schema(value_type = Vec<String>, required = true, min_items = 1, max_items = 1000)]
    seat_codes: Option<Vec<String>>,
    /// Why (1-200 characters): shown to admins and service keys in the seat map.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200, example = "wheelchair companion seat")]
    reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct UnblockBody {
    /// 1-1,000 seat codes.
    #[schema(value_type = Vec<String>, required = true, min_items = 1, max_items = 1000)]
    seat_codes: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Blocked {
    blocked: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Unblocked {
    unblocked: Vec<String>,
}

/// The codes of a body: 1 to [`MAX_CODES`] well-formed codes, repeats dropped (first kept).
fn codes(list: Option<Vec<String>>) -> ApiResult<Vec<String>> {
    let list = list.ok_or_else(|| ApiError::validation("seatCodes is required"))?;
    // The body's size bounds the list; a repeat counts once against the limit.
    let mut seen = std::collections::HashSet::with_capacity(list.len().min(MAX_CODES));
    let mut out: Vec<String> = Vec::with_capacity(list.len().min(MAX_CODES));
    for code in list {
        check_code("seat", &code).map_err(ApiError::validation)?;
        if seen.insert(code.clone()) {
            out.push(code);
        }
    }
    if out.is_empty() || out.len() > MAX_CODES {
        return Err(ApiError::validation(format!(
            "seatCodes must list 1 to {MAX_CODES} seats"
        )));
    }
    Ok(out)
}

/// Who did it, for the history.
fn actor(caller: &Caller) -> String {
    match (&caller.key_name, &caller.subject) {
        (Some(key), _) => format!("key:{key}"),
        (None, Some(sub)) => sub.clone(),
        (None, None) => "admin".into(),
    }
}

/// Blocks seats (admins): no hold may take them until they are unblocked.
#[utoipa::path(post, path = "/events/{event_id}/seats/block", tag = "events",
    params(("event_id" = i64, Path, description = "Event id", minimum = 1, example = 1)),
    request_body = BlockBody,
    responses(
        (status = 200, description = "Blocked (all of them)", body = Blocked),
        (status = 400, description = "A field out of range", body = ErrorBody),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "No such event, or seats (SEATS_NOT_FOUND)", body = ErrorBody),
        (status = 409, description = "Some seats are held or booked (SEATS_UNAVAILABLE lists them); nothing blocked", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn block_seats(
    State(state): State<AppState>,
    caller: Caller,
    EventPath(id): EventPath,
    body: ApiResult<ApiJson<BlockBody>>,
) -> ApiResult<Json<Blocked>> {
    authorize(&caller, Action::ManageSeats, None)?;
    let ApiJson(body) = body?;
    let codes = codes(body.seat_codes)?;
    let reason = body
        .reason
        .map(|r| r.trim().to_string())
        .filter(|r| (1..=MAX_REASON).contains(&r.chars().count()))
        .ok_or_else(|| {
            ApiError::validation(format!("reason is required, 1 to {MAX_REASON} characters"))
        })?;
    let blocked = state
        .seatlock
        .block_seats(id, &codes, &reason, &actor(&caller))
        .await?;
    Ok(Json(Blocked { blocked }))
}

/// Puts blocked seats on sale again (admins).
#[utoipa::path(post, path = "/events/{event_id}/seats/unblock", tag = "events",
    params(("event_id" = i64, Path, description = "Event id", minimum = 1, example = 1)),
    request_body = UnblockBody,
    responses(
        (status = 200, description = "Unblocked (all of them)", body = Unblocked),
        (status = 400, description = "A field out of range", body = ErrorBody),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "No such event, or seats (SEATS_NOT_FOUND)", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn unblock_seats(
    State(state): State<AppState>,
    caller: Caller,
    EventPath(id): EventPath,
    body: ApiResult<ApiJson<UnblockBody>>,
) -> ApiResult<Json<Unblocked>> {
    authorize(&caller, Action::ManageSeats, None)?;
    let ApiJson(body) = body?;
    let codes = codes(body.seat_codes)?;
    let unblocked = state
        .seatlock
        .unblock_seats(id, &codes, &actor(&caller))
        .await?;
    Ok(Json(Unblocked { unblocked }))
}
