//! The hold flow: `POST /events/{id}/seats/reserve`, `.../confirm`, `.../release`.
//! Field names and success codes follow the seed-003 API so its clients keep working.

use axum::Extension;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::events::{parse_event_id, rfc3339};
use super::idempotency::{self, IdempotencyKey};
use super::{ApiJson, Segment};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::events::{EventId, cents_to_amount};
use crate::holds::{HoldGroupId, RefusalReason, validate_seat_codes, validate_user_id};
use crate::{service, telemetry};

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

/// A user id given as a string, or as a number by clients that number their users.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum UserIdInput {
    Text(String),
    Number(i64),
}

impl UserIdInput {
    pub fn validate(input: Option<&UserIdInput>) -> Result<String> {
        let text = input.map(|u| match u {
            UserIdInput::Text(s) => s.clone(),
            UserIdInput::Number(n) => n.to_string(),
        });
        validate_user_id(text.as_deref()).map_err(Error::Validation)
    }
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
    Segment(raw): Segment,
    idempotency_key: Option<Extension<IdempotencyKey>>,
    ApiJson(body): ApiJson<ReserveBody>,
) -> Result<Json<HoldView>> {
    let event = parse_event_id(raw.as_deref().unwrap_or_default())?;
    let checked = UserIdInput::validate(body.user_id.as_ref()).and_then(|user| {
        let codes = body
            .seat_codes
            .ok_or_else(|| Error::Validation("seatCodes is required".into()))?;
        validate_seat_codes(&codes, state.settings.holds.max_seats_per_hold)
            .map_err(Error::Validation)?;
        Ok((user, codes))
    });
    let (user, codes) =
        checked.inspect_err(|_| telemetry::record_hold_refused(RefusalReason::Invalid))?;
    let key = idempotency_key
        .as_ref()
        .map(|Extension(IdempotencyKey(k))| k.as_str());
    let hold = service::reserve(&state, event, &user, &codes, key).await?;
    let expires_at = chrono::DateTime::from_timestamp_millis(hold.expires_at_ms)
        .ok_or_else(|| Error::Internal("hold expiry out of range".into()))?;
    Ok(Json(HoldView {
        hold_group_id: hold.id,
        expires_in: state.settings.holds.ttl_seconds,
        expires_at: rfc3339(expires_at),
        seat_codes: codes,
    }))
}

/// Validates `{userId, holdGroupId}`.
fn parse_hold_body(body: HoldBody) -> Result<(String, HoldGroupId)> {
    let user = UserIdInput::validate(body.user_id.as_ref())?;
    let raw = body
        .hold_group_id
        .ok_or_else(|| Error::Validation("holdGroupId is required".into()))?;
    let id = HoldGroupId::parse(&raw)
        .ok_or_else(|| Error::Validation("holdGroupId must be a UUID".into()))?;
    tracing::Span::current().record("hold.id", tracing::field::display(id));
    Ok((user, id))
}

async fn confirm_hold(
    State(state): State<AppState>,
    Segment(raw): Segment,
    ApiJson(body): ApiJson<HoldBody>,
) -> Result<Json<Confirmed>> {
    let event = parse_event_id(raw.as_deref().unwrap_or_default())?;
    let (user, id) = parse_hold_body(body)?;
    let booking = service::confirm(&state, event, &user, id).await?;
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
    Segment(raw): Segment,
    ApiJson(body): ApiJson<HoldBody>,
) -> Result<Json<Released>> {
    let event = parse_event_id(raw.as_deref().unwrap_or_default())?;
    let (user, id) = parse_hold_body(body)?;
    service::release(&state, event, &user, id).await?;
    Ok(Json(Released { released: true }))
}
