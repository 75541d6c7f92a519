//! Bookings: `GET /bookings/{id}` and `POST /bookings/{id}/cancel`.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::events::rfc3339;
use super::holds::UserIdInput;
use super::idempotency;
use super::{ApiJson, Segment};
use crate::app::AppState;
use crate::bookings::{Booking, BookingStatus};
use crate::error::{Error, Result};
use crate::events::{EventId, cents_to_amount};
use crate::holds::HoldGroupId;
use crate::service;

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

/// Parses the `{booking_id}` segment; anything but a UUID is an unknown booking.
fn parse_booking_id(raw: &str) -> Result<HoldGroupId> {
    let id = HoldGroupId::parse(raw).ok_or(Error::BookingNotFound)?;
    tracing::Span::current().record("booking.id", tracing::field::display(id));
    Ok(id)
}

async fn get_booking(
    State(state): State<AppState>,
    Segment(raw): Segment,
) -> Result<Json<BookingView>> {
    let id = parse_booking_id(raw.as_deref().unwrap_or_default())?;
    Ok(Json(service::fetch_booking(&state, id).await?.into()))
}

async fn cancel_booking(
    State(state): State<AppState>,
    Segment(raw): Segment,
    ApiJson(body): ApiJson<CancelBody>,
) -> Result<Json<Cancelled>> {
    let user = UserIdInput::validate(body.user_id.as_ref())?;
    let id = parse_booking_id(raw.as_deref().unwrap_or_default())?;
    service::cancel(&state, &user, id).await?;
    Ok(Json(Cancelled { cancelled: true }))
}
