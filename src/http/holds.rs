//! The hold flow: `POST /events/{id}/seats/reserve`, `.../confirm`, `.../release`. Field names and
//! success codes follow the seed-003 API so its clients keep working.

use axum::extract::State;
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, EventPath, UserIdInput};
use super::idempotency;
use super::rfc3339;
use super::state::AppState;
use crate::domain::access::Caller;
use crate::domain::events::{EventId, cents_to_amount};
use crate::domain::holds::{HoldGroupId, validate_seat_codes};
use crate::domain::idempotency::KeyUse;
use crate::error::Error;
use crate::telemetry::{self, HoldRefusal};

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/events/{event_id}/seats/reserve", post(reserve_seats))
        .route("/events/{event_id}/seats/confirm", post(confirm_hold))
        .route("/events/{event_id}/seats/release", post(release_hold))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            idempotency::replay_or_record,
        ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReserveBody {
    user_id: Option<UserIdInput>,
    seat_codes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HoldBody {
    user_id: Option<UserIdInput>,
    hold_group_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HoldView {
    hold_group_id: HoldGroupId,
    expires_in: u64,
    expires_at: String,
    seat_codes: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Confirmed {
    success: bool,
    booking_group_id: HoldGroupId,
    event_id: EventId,
    seat_codes: Vec<String>,
    total_price: f64,
}

#[derive(Serialize)]
struct Released {
    released: bool,
}

async fn reserve_seats(
    State(state): State<AppState>,
    caller: Caller,
    EventPath(event): EventPath,
    key_use: Option<Extension<KeyUse>>,
    ApiJson(body): ApiJson<ReserveBody>,
) -> ApiResult<Json<HoldView>> {
    let checked = UserIdInput::acting_user(&caller, body.user_id.as_ref()).and_then(|user| {
        let codes = body
            .seat_codes
            .ok_or_else(|| ApiError::validation("seatCodes is required"))?;
        validate_seat_codes(&codes, state.settings.holds.max_seats_per_hold)
            .map_err(ApiError::validation)?;
        Ok((user, codes))
    });
    let (user, codes) =
        checked.inspect_err(|_| telemetry::record_hold_refused(HoldRefusal::Invalid))?;
    let seed = key_use.map(|Extension(k)| k.seed());
    let hold = state
        .seatlock
        .reserve(event, &user, &codes, seed.as_deref())
        .await?;
    let expires_at = chrono::DateTime::from_timestamp_millis(hold.expires_at_ms)
        .ok_or_else(|| Error::Internal("hold expiry out of range".into()))?;
    Ok(Json(HoldView {
        hold_group_id: hold.id,
        expires_in: state.settings.holds.ttl_seconds,
        expires_at: rfc3339(expires_at),
        seat_codes: codes,
    }))
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

async fn confirm_hold(
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
        seat_codes: booking.seats.into_iter().map(|s| s.code).collect(),
        total_price: cents_to_amount(booking.total_price_cents),
    }))
}

async fn release_hold(
    State(state): State<AppState>,
    caller: Caller,
    EventPath(event): EventPath,
    ApiJson(body): ApiJson<HoldBody>,
) -> ApiResult<Json<Released>> {
    let (user, id) = parse_hold_body(&caller, body)?;
    state.seatlock.release(event, &user, id).await?;
    Ok(Json(Released { released: true }))
}
