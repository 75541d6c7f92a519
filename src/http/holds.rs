//! The hold flow: `POST /events/{id}/seats/reserve` (in `reserve.rs`), `.../confirm`,
//! `.../release`, `.../extend`. Field names and
//! success codes follow the seed-003 API so its clients keep working.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, EventPath, UserIdInput};
use super::idempotency;
use super::rfc3339;
use super::state::AppState;
use crate::domain::access::Caller;
use crate::domain::events::{EventId, cents_to_amount};
use crate::domain::holds::HoldGroupId;
use crate::domain::tiers::TierLine;
use crate::error::Error;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/events/{event_id}/seats/confirm", post(confirm_hold))
        .route("/events/{event_id}/seats/release", post(release_hold))
        .route("/events/{event_id}/seats/extend", post(extend_hold))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            idempotency::replay_or_record,
        ))
}

/// Units of one tier.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub(super) struct TierLineInput {
    #[schema(min_length = 1, max_length = 64, pattern = "^\\S+$", example = "FLOOR")]
    pub(super) code: String,
    #[schema(minimum = 1, maximum = 10, example = 2)]
    pub(super) quantity: i64,
}

/// Units of one tier in a hold or a confirmed booking.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TierLineView {
    code: String,
    quantity: u32,
}

impl From<TierLine> for TierLineView {
    fn from(l: TierLine) -> Self {
        TierLineView {
            code: l.code,
            quantity: l.quantity,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct HoldBody {
    #[schema(value_type = Option<String>, max_length = 128, example = "user-42")]
    user_id: Option<UserIdInput>,
    #[schema(value_type = String, required = true, format = Uuid)]
    hold_group_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct HoldView {
    #[schema(value_type = String, format = Uuid)]
    pub(super) hold_group_id: HoldGroupId,
    /// Seconds the hold lasts (`holds.ttl_seconds`).
    pub(super) expires_in: u64,
    #[schema(format = DateTime)]
    pub(super) expires_at: String,
    /// `[]` when the hold is of tier units only.
    pub(super) seat_codes: Vec<String>,
    pub(super) tiers: Vec<TierLineView>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Confirmed {
    success: bool,
    #[schema(value_type = String, format = Uuid)]
    booking_group_id: HoldGroupId,
    #[schema(value_type = i64)]
    event_id: EventId,
    seat_codes: Vec<String>,
    tiers: Vec<TierLineView>,
    /// Seats plus tier units at their prices.
    total_price: f64,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Released {
    released: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ExtendedView {
    #[schema(value_type = String, format = Uuid)]
    hold_group_id: HoldGroupId,
    #[schema(format = DateTime)]
    expires_at: String,
    /// Seconds from now until it ends.
    expires_in: u64,
    /// Extensions still allowed (`holds.max_renewals` in all).
    renewals_left: u32,
}

/// Validates `{userId, holdGroupId}` for this caller.
fn parse_hold_body(caller: &Caller, body: HoldBody) -> ApiResult<(String, HoldGroupId)> {
    let user = UserIdInput::acting_user(caller, body.user_id.as_ref())?;
    let raw = body
        .hold_group_id
        .ok_or_else(|| ApiError::validation("holdGroupId is required"))?;
    let id = HoldGroupId::parse(&raw)
        .ok_or_else(|| ApiError::validation("holdGroupId must be a UUID"))?;
    tracing::Span::current().record("hold.id", tracing::field::display(id));
    Ok((user, id))
}

/// Confirms a hold into a booking (repeating a successful confirm returns the same booking).
#[utoipa::path(post, path = "/events/{event_id}/seats/confirm", tag = "holds", request_body = HoldBody,
    params(("event_id" = i64, Path, description = "Event id", minimum = 1, example = 1), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry of this request return the first answer (1-255 visible ASCII characters)", max_length = 255)),
    responses(
        (status = 200, description = "Booked", body = Confirmed),
        (status = 400, description = "Invalid JSON or a field out of range", body = ErrorBody),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "The token may not do this", body = ErrorBody),
        (status = 404, description = "No such event / seats / booking", body = ErrorBody),
        (status = 409, description = "Conflict (see the code)", body = ErrorBody),
        (status = 410, description = "The hold expired, was released, or never existed", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
        (status = 422, description = "Idempotency-Key reused with another body", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn confirm_hold(
    State(state): State<AppState>,
    caller: Caller,
    EventPath(event): EventPath,
    ApiJson(body): ApiJson<HoldBody>,
) -> ApiResult<Json<Confirmed>> {
    let (user, id) = parse_hold_body(&caller, body)?;
    let booking = state.seatlock.confirm(event, &user, id).await?.booking;
    Ok(Json(Confirmed {
        success: true,
        booking_group_id: booking.booking_group_id,
        event_id: booking.event_id,
        tiers: booking
            .tier_lines()
            .into_iter()
            .map(TierLineView::from)
            .collect(),
        seat_codes: booking.seats.into_iter().map(|s| s.code).collect(),
        total_price: cents_to_amount(booking.total_price_cents),
    }))
}

/// Gives a live hold back; its seats are free at once.
#[utoipa::path(post, path = "/events/{event_id}/seats/release", tag = "holds", request_body = HoldBody,
    params(("event_id" = i64, Path, description = "Event id", minimum = 1, example = 1), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry of this request return the first answer (1-255 visible ASCII characters)", max_length = 255)),
    responses(
        (status = 200, description = "Released", body = Released),
        (status = 400, description = "Invalid JSON or a field out of range", body = ErrorBody),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "The token may not do this", body = ErrorBody),
        (status = 404, description = "No such event / seats / booking", body = ErrorBody),
        (status = 409, description = "Conflict (see the code)", body = ErrorBody),
        (status = 410, description = "The hold expired, was released, or never existed", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
        (status = 422, description = "Idempotency-Key reused with another body", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn release_hold(
    State(state): State<AppState>,
    caller: Caller,
    EventPath(event): EventPath,
    ApiJson(body): ApiJson<HoldBody>,
) -> ApiResult<Json<Released>> {
    let (user, id) = parse_hold_body(&caller, body)?;
    state.seatlock.release(event, &user, id).await?;
    Ok(Json(Released { released: true }))
}

/// Runs a live hold again for `holds.ttl_seconds` (all its seats and units), never past
/// `holds.max_lifetime_seconds` from when it was taken, at most `holds.max_renewals` times.
#[utoipa::path(post, path = "/events/{event_id}/seats/extend", tag = "holds", request_body = HoldBody,
    params(("event_id" = i64, Path, description = "Event id", minimum = 1, example = 1), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry of this request return the first answer (1-255 visible ASCII characters)", max_length = 255)),
    responses(
        (status = 200, description = "Extended", body = ExtendedView),
        (status = 400, description = "Invalid JSON or a field out of range", body = ErrorBody),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "The token may not do this, or the hold is another buyer's", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
        (status = 409, description = "HOLD_LIMIT_REACHED (limit, cap) or HOLD_ALREADY_CONFIRMED", body = ErrorBody),
        (status = 410, description = "The hold expired, was released, never existed, or lost seats (seats)", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
        (status = 422, description = "Idempotency-Key reused with another body", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn extend_hold(
    State(state): State<AppState>,
    caller: Caller,
    EventPath(event): EventPath,
    ApiJson(body): ApiJson<HoldBody>,
) -> ApiResult<Json<ExtendedView>> {
    let (user, id) = parse_hold_body(&caller, body)?;
    let extended = state.seatlock.extend(event, &user, id).await?;
    let expires_at = chrono::DateTime::from_timestamp_millis(extended.expires_at_ms)
        .ok_or_else(|| Error::Internal("hold expiry out of range".into()))?;
    let left_ms = extended.expires_at_ms - chrono::Utc::now().timestamp_millis();
    Ok(Json(ExtendedView {
        hold_group_id: id,
        expires_at: rfc3339(expires_at),
        expires_in: (left_ms.max(0) as u64).div_ceil(1000),
        renewals_left: extended.renewals_left,
    }))
}
