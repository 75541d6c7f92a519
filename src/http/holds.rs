//! The hold flow: `POST /events/{id}/seats/reserve`, `.../confirm`, `.../release`. Field names and
//! success codes follow the seed-003 API so its clients keep working.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, EventPath, UserIdInput};
use super::idempotency;
use super::rfc3339;
use super::state::AppState;
use crate::domain::access::Caller;
use crate::domain::best::BestFilter;
use crate::domain::events::{EventId, cents_to_amount};
use crate::domain::fields::{price_cents, validate_seat_codes};
use crate::domain::holds::HoldGroupId;
use crate::domain::idempotency::KeyUse;
use crate::domain::limits::DeferredCount;
use crate::domain::tiers::{TierLine, validate_hold_lines};
use crate::error::Error;
use crate::service::Wanted;
use crate::telemetry::{self, HoldRefusal};

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/events/{event_id}/seats/reserve", post(reserve_seats))
        .route("/events/{event_id}/seats/confirm", post(confirm_hold))
        .route("/events/{event_id}/seats/release", post(release_hold))
        .route("/events/{event_id}/seats/extend", post(extend_hold))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            idempotency::replay_or_record,
        ))
}

/// `userId` may be left out by a buyer with a JWT (its `sub` is used); keys must name it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReserveBody {
    #[schema(value_type = Option<String>, max_length = 128, example = "user-42")]
    user_id: Option<UserIdInput>,
    /// Seats to hold; may be left out (or `[]`) when `tiers` asks for units.
    #[schema(value_type = Option<Vec<String>>, max_items = 10)]
    seat_codes: Option<Vec<String>>,
    /// General-admission units to hold: a tier at most once, quantity 1 or more. Seats plus
    /// quantities at most `holds.max_seats_per_hold`.
    #[schema(max_items = 10)]
    tiers: Option<Vec<TierLineInput>>,
    /// Instead of `seatCodes` and `tiers`: let the service choose `count` seats together, as good
    /// as possible (see the README's "Best available").
    best_available: Option<BestAvailableInput>,
}

/// A best-available request: how many seats together, and optional filters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct BestAvailableInput {
    #[schema(minimum = 1, maximum = 10, example = 4)]
    count: i64,
    /// Only seats of this type.
    #[serde(rename = "type")]
    #[schema(max_length = 64, example = "STANDARD")]
    seat_type: Option<String>,
    /// Only seats at this price or less.
    #[schema(minimum = 0, maximum = 10000000, example = 60)]
    max_price: Option<f64>,
}

/// Units of one tier.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub(super) struct TierLineInput {
    #[schema(min_length = 1, max_length = 64, pattern = "^\\S+$", example = "FLOOR")]
    code: String,
    #[schema(minimum = 1, maximum = 10, example = 2)]
    quantity: i64,
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
    hold_group_id: HoldGroupId,
    /// Seconds the hold lasts (`holds.ttl_seconds`).
    expires_in: u64,
    #[schema(format = DateTime)]
    expires_at: String,
    /// `[]` when the hold is of tier units only.
    seat_codes: Vec<String>,
    tiers: Vec<TierLineView>,
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

/// Holds seats and/or general-admission units, all or nothing, for `holds.ttl_seconds`; or, with
/// `bestAvailable`, the best block of `count` seats together that the service chooses.
#[utoipa::path(post, path = "/events/{event_id}/seats/reserve", tag = "holds", request_body = ReserveBody,
    params(("event_id" = i64, Path, description = "Event id", minimum = 1, example = 1), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry of this request return the first answer (1-255 visible ASCII characters)", max_length = 255)),
    responses(
        (status = 200, description = "Held", body = HoldView),
        (status = 400, description = "Invalid JSON or a field out of range", body = ErrorBody),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "The token may not do this", body = ErrorBody),
        (status = 404, description = "No such event / seats / booking", body = ErrorBody),
        (status = 409, description = "Conflict (see the code)", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
        (status = 422, description = "Idempotency-Key reused with another body", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn reserve_seats(
    State(state): State<AppState>,
    caller: Caller,
    EventPath(event): EventPath,
    key_use: Option<Extension<KeyUse>>,
    count: Option<Extension<Arc<DeferredCount>>>,
    ApiJson(body): ApiJson<ReserveBody>,
) -> ApiResult<Json<HoldView>> {
    let max = state.settings.holds.max_seats_per_hold;
    let best = body.best_available;
    let checked = UserIdInput::acting_user(&caller, body.user_id.as_ref()).and_then(|user| {
        let codes = body.seat_codes.unwrap_or_default();
        let tiers = tier_lines(body.tiers.unwrap_or_default(), max)?;
        let best = match best {
            Some(best) if codes.is_empty() && tiers.is_empty() => Some(best_filter(best, max)?),
            Some(_) => {
                return Err(ApiError::validation(
                    "ask for bestAvailable or for seatCodes/tiers, not both",
                ));
            }
            None => None,
        };
        if best.is_none() {
            if !codes.is_empty() {
                validate_seat_codes(&codes, max).map_err(ApiError::validation)?;
            }
            validate_hold_lines(codes.len(), &tiers, max).map_err(ApiError::validation)?;
        }
        Ok((user, codes, tiers, best))
    });
    let (user, codes, tiers, best) =
        checked.inspect_err(|_| telemetry::record_hold_refused(HoldRefusal::Invalid))?;
    let seed = key_use.map(|Extension(k)| k.seed());
    let wanted = match &best {
        Some((count, filter)) => Wanted::Best {
            count: *count,
            filter,
        },
        None => Wanted::Named {
            codes: &codes,
            tiers: &tiers,
        },
    };
    let hold = state
        .seatlock
        .reserve(
            event,
            &user,
            wanted,
            seed.as_deref(),
            count.as_deref().map(Arc::as_ref),
        )
        .await?;
    let expires_at = chrono::DateTime::from_timestamp_millis(hold.expires_at_ms)
        .ok_or_else(|| Error::Internal("hold expiry out of range".into()))?;
    Ok(Json(HoldView {
        hold_group_id: hold.id,
        expires_in: state.settings.holds.ttl_seconds,
        expires_at: rfc3339(expires_at),
        seat_codes: hold.seats,
        tiers: tiers.into_iter().map(TierLineView::from).collect(),
    }))
}

/// The count and filters of a best-available request.
fn best_filter(input: BestAvailableInput, max: usize) -> ApiResult<(u32, BestFilter)> {
    let count = u32::try_from(input.count)
        .ok()
        .filter(|c| (1..=max as u32).contains(c))
        .ok_or_else(|| ApiError::validation(format!("bestAvailable.count must be 1 to {max}")))?;
    let seat_type = input.seat_type.map(|t| t.trim().to_string());
    if seat_type
        .as_deref()
        .is_some_and(|t| t.is_empty() || t.chars().count() > 64 || t.chars().any(char::is_control))
    {
        return Err(ApiError::validation(
            "bestAvailable.type must be 1 to 64 characters without control characters",
        ));
    }
    let max_price_cents = match input.max_price {
        None => None,
        Some(_) => Some(
            price_cents(input.max_price)
                .map_err(|why| ApiError::validation(format!("bestAvailable.maxPrice {why}")))?,
        ),
    };
    let filter = BestFilter {
        seat_type,
        max_price_cents,
    };
    Ok((count, filter))
}

/// The tier lines of a reserve body; a quantity out of range is refused before anything else
/// looks at it.
fn tier_lines(input: Vec<TierLineInput>, max: usize) -> ApiResult<Vec<TierLine>> {
    if input.len() > max {
        return Err(ApiError::validation(format!(
            "a hold may list at most {max} tiers"
        )));
    }
    input
        .into_iter()
        .map(|l| match u32::try_from(l.quantity) {
            Ok(quantity) if quantity >= 1 => Ok(TierLine {
                code: l.code,
                quantity,
            }),
            _ => Err(ApiError::validation(format!(
                "the quantity of tier {} must be an integer from 1 to {max}",
                l.code
            ))),
        })
        .collect()
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
