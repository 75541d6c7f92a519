//! Bookings: `GET /bookings/{id}` and `POST /bookings/{id}/cancel`.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiResult, ErrorBody};
use super::extract::{ApiJson, BookingPath, UserIdInput};
use super::idempotency;
use super::rfc3339;
use super::state::AppState;
use crate::domain::access::{Action, Caller, authorize};
use crate::domain::bookings::{Booking, BookingStatus};
use crate::domain::events::{EventId, cents_to_amount};
use crate::domain::holds::HoldGroupId;

pub fn router(state: AppState) -> Router<AppState> {
    let cancel = Router::new()
        .route("/bookings/{booking_id}/cancel", post(cancel_booking))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            idempotency::replay_or_record,
        ));
    Router::new()
        .route("/bookings/{booking_id}", get(get_booking))
        .merge(cancel)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct CancelBody {
    #[schema(value_type = Option<String>, max_length = 128, example = "user-42")]
    user_id: Option<UserIdInput>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct BookingView {
    #[schema(value_type = String, format = Uuid)]
    booking_group_id: HoldGroupId,
    #[schema(value_type = i64)]
    event_id: EventId,
    user_id: String,
    /// CONFIRMED or CANCELLED.
    #[schema(value_type = String, example = "CONFIRMED")]
    status: BookingStatus,
    seats: Vec<BookedSeatView>,
    /// General-admission units, at the unit price they were sold at (`[]` when none).
    tiers: Vec<BookedTierView>,
    /// Seats plus tier units.
    total_price: f64,
    #[schema(format = DateTime)]
    confirmed_at: String,
    #[schema(format = DateTime)]
    cancelled_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct BookedSeatView {
    code: String,
    #[serde(rename = "type")]
    seat_type: String,
    price: f64,
}

#[derive(Serialize, ToSchema)]
pub(super) struct BookedTierView {
    code: String,
    name: String,
    quantity: u32,
    /// Unit price.
    price: f64,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Cancelled {
    cancelled: bool,
}

impl From<Booking> for BookingView {
    fn from(b: Booking) -> Self {
        BookingView {
            booking_group_id: b.booking_group_id,
            event_id: b.event_id,
            user_id: b.user_id,
            status: b.status,
            seats: b
                .seats
                .into_iter()
                .map(|s| BookedSeatView {
                    code: s.code,
                    seat_type: s.seat_type,
                    price: cents_to_amount(s.price_cents),
                })
                .collect(),
            tiers: b
                .tiers
                .into_iter()
                .map(|t| BookedTierView {
                    code: t.code,
                    name: t.name,
                    quantity: t.quantity,
                    price: cents_to_amount(t.price_cents),
                })
                .collect(),
            total_price: cents_to_amount(b.total_price_cents),
            confirmed_at: rfc3339(b.confirmed_at),
            cancelled_at: b.cancelled_at.map(rfc3339),
        }
    }
}

/// A booking. A buyer sees its own bookings only; another buyer's is answered like an unknown
/// one.
#[utoipa::path(get, path = "/bookings/{booking_id}", tag = "bookings", params(("booking_id" = String, Path, description = "bookingGroupId (the holdGroupId of the confirmed hold)", format = Uuid)),
    responses(
        (status = 200, description = "The booking", body = BookingView),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 404, description = "No such event / seats / booking", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn get_booking(
    State(state): State<AppState>,
    caller: Caller,
    BookingPath(id): BookingPath,
) -> ApiResult<Json<BookingView>> {
    let booking = state.seatlock.fetch_booking(id).await?;
    authorize(&caller, Action::ReadBooking, Some(&booking.user_id))?;
    Ok(Json(booking.into()))
}

/// Cancels a confirmed booking (soft: it stays, cancelled); its seats are free at once.
#[utoipa::path(post, path = "/bookings/{booking_id}/cancel", tag = "bookings", request_body = CancelBody,
    params(("booking_id" = String, Path, description = "bookingGroupId (the holdGroupId of the confirmed hold)", format = Uuid), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry of this request return the first answer (1-255 visible ASCII characters)", max_length = 255)),
    responses(
        (status = 200, description = "Cancelled (also on repeat)", body = Cancelled),
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
pub(super) async fn cancel_booking(
    State(state): State<AppState>,
    caller: Caller,
    BookingPath(id): BookingPath,
    ApiJson(body): ApiJson<CancelBody>,
) -> ApiResult<Json<Cancelled>> {
    let user = UserIdInput::acting_user(&caller, body.user_id.as_ref())?;
    state.seatlock.cancel(&user, id).await?;
    Ok(Json(Cancelled { cancelled: true }))
}
