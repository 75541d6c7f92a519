//! Bookings: `GET /bookings/{id}` and `POST /bookings/{id}/cancel`.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiResult;
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CancelBody {
    user_id: Option<UserIdInput>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BookingView {
    booking_group_id: HoldGroupId,
    event_id: EventId,
    user_id: String,
    status: BookingStatus,
    seats: Vec<BookedSeatView>,
    total_price: f64,
    confirmed_at: String,
    cancelled_at: Option<String>,
}

#[derive(Serialize)]
struct BookedSeatView {
    code: String,
    #[serde(rename = "type")]
    seat_type: String,
    price: f64,
}

#[derive(Serialize)]
struct Cancelled {
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
            total_price: cents_to_amount(b.total_price_cents),
            confirmed_at: rfc3339(b.confirmed_at),
            cancelled_at: b.cancelled_at.map(rfc3339),
        }
    }
}

/// A buyer sees its own bookings only; another buyer's is answered like an unknown one.
async fn get_booking(
    State(state): State<AppState>,
    caller: Caller,
    BookingPath(id): BookingPath,
) -> ApiResult<Json<BookingView>> {
    let booking = state.seatlock.fetch_booking(id).await?;
    authorize(&caller, Action::ReadBooking, Some(&booking.user_id))?;
    Ok(Json(booking.into()))
}

async fn cancel_booking(
    State(state): State<AppState>,
    caller: Caller,
    BookingPath(id): BookingPath,
    ApiJson(body): ApiJson<CancelBody>,
) -> ApiResult<Json<Cancelled>> {
    let user = UserIdInput::acting_user(&caller, body.user_id.as_ref())?;
    state.seatlock.cancel(&user, id).await?;
    Ok(Json(Cancelled { cancelled: true }))
}
