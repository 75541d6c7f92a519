//! Events and seat maps: `POST /events`, `GET /events`, `GET /events/{id}`,
//! `GET /events/{id}/seats`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::event_inputs::ChannelInput;
use super::event_inputs::{RowInput, SeatInput, TierInput};
use super::event_views::{EventDetail, EventView, event_detail};
use super::extract::{ApiJson, EventPath};
use super::state::AppState;
use crate::domain::access::{Action, Caller, Role, authorize};
use crate::domain::events::{
    EventId, EventLimits, RawEvent, RawRow, RawSeat, cents_to_amount, validate_new_event,
};
use crate::domain::tiers::RawTier;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/events", get(list_events).post(create_event))
        .route(
            "/events/{event_id}",
            get(get_event).patch(super::policy::patch_event),
        )
        .route("/events/{event_id}/seats", get(get_seat_map))
}

/// A new event: `totalSeats` (seats S1..Sn) or `seats`, and/or general-admission `tiers` (at
/// least one seat or one tier).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateEventBody {
    #[schema(value_type = String, required = true, example = "Coldplay", min_length = 1, max_length = 200)]
    name: Option<String>,
    /// RFC 3339, years 1-9999 in UTC.
    #[schema(value_type = String, required = true, format = DateTime, example = "2030-01-10T18:00:00Z")]
    date: Option<String>,
    #[schema(value_type = String, required = true, example = "Mumbai", max_length = 200)]
    location: Option<String>,
    #[schema(minimum = 1, maximum = 100000)]
    total_seats: Option<i64>,
    #[schema(max_items = 100000)]
    seats: Option<Vec<SeatInput>>,
    /// Whole rows, first row nearest the stage: seats `{name}1..{name}{seats}`.
    #[schema(max_items = 100000)]
    rows: Option<Vec<RowInput>>,
    /// General-admission tiers, sold by quantity (at most `events.max_tiers`, default 50).
    #[schema(max_items = 50)]
    tiers: Option<Vec<TierInput>>,
    /// RFC 3339: holds are refused with `SALES_NOT_OPEN` before it (admins excepted).
    #[schema(format = DateTime, example = "2030-01-01T10:00:00Z")]
    sales_start: Option<String>,
    /// RFC 3339, after `salesStart`: holds are refused with `SALES_CLOSED` from it.
    #[schema(format = DateTime)]
    sales_end: Option<String>,
    /// Sales channels, each with the seats only its callers may hold (see PUT
    /// /events/{id}/channels).
    #[schema(max_items = 20)]
    channels: Option<Vec<ChannelInput>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct EventCreated {
    #[schema(value_type = i64)]
    event_id: EventId,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct SeatMap {
    #[schema(value_type = i64)]
    event_id: EventId,
    seats: Vec<SeatView>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct SeatView {
    code: String,
    #[serde(rename = "type")]
    seat_type: String,
    price: f64,
    /// AVAILABLE, HELD, BOOKED or BLOCKED.
    #[schema(value_type = String, example = "AVAILABLE")]
    status: &'static str,
    /// Seconds left on the hold, rounded up; null unless HELD.
    seconds_remaining: Option<i64>,
    /// Row label and number in the row given at creation; null when not given.
    row: Option<String>,
    number: Option<i32>,
    /// Why a BLOCKED seat is blocked; only to admins and service keys (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The sales channel the seat is allocated to; only to admins and service keys, and only
    /// for seats of a channel (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<String>,
}

/// Creates an event (admins only in token mode).
#[utoipa::path(post, path = "/events", tag = "events", request_body = CreateEventBody,
    responses(
        (status = 201, description = "Created", body = EventCreated),
        (status = 400, description = "Invalid JSON or a field out of range", body = ErrorBody),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "The token may not do this", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn create_event(
    State(state): State<AppState>,
    caller: Caller,
    body: ApiResult<ApiJson<CreateEventBody>>,
) -> ApiResult<(StatusCode, Json<EventCreated>)> {
    // Who may comes before what was sent: a buyer's bad body is 403, not 400.
    authorize(&caller, Action::CreateEvent, None)?;
    let ApiJson(body) = body?;
    let missing: Vec<String> = [
        ("name", body.name.is_some()),
        ("date", body.date.is_some()),
        ("location", body.location.is_some()),
    ]
    .into_iter()
    .filter(|(_, present)| !present)
    .map(|(field, _)| format!("{field} is required"))
    .collect();
    if !missing.is_empty() {
        return Err(ApiError::validation(missing.join("; ")));
    }
    let seats = body.seats.map(|list| {
        list.into_iter()
            .map(|s| RawSeat {
                code: s.code,
                seat_type: s.seat_type,
                price: s.price,
                row: s.row,
                number: s.number,
            })
            .collect()
    });
    let tiers = body.tiers.map(|list| {
        list.into_iter()
            .map(|t| RawTier {
                code: t.code,
                name: t.name,
                price: t.price,
                capacity: t.capacity,
            })
            .collect()
    });
    let raw = RawEvent {
        name: body.name.unwrap_or_default(),
        date: body.date.unwrap_or_default(),
        location: body.location.unwrap_or_default(),
        total_seats: body.total_seats,
        seats,
        rows: body.rows.map(|list| {
            list.into_iter()
                .map(|r| RawRow {
                    name: r.name,
                    seats: r.seats,
                    seat_type: r.seat_type,
                    price: r.price,
                })
                .collect()
        }),
        tiers,
        sales_start: body.sales_start,
        sales_end: body.sales_end,
        channels: body
            .channels
            .map(|list| list.into_iter().map(Into::into).collect()),
    };
    let settings = &state.settings.events;
    let limits = EventLimits {
        max_seats: settings.max_seats,
        max_tiers: settings.max_tiers,
        max_tier_capacity: settings.max_tier_capacity,
    };
    let new_event = validate_new_event(raw, limits)
        .map_err(|problems| ApiError::validation(problems.join("; ")))?;
    let event_id = state.seatlock.create_event(new_event).await?;
    tracing::Span::current().record("event.id", event_id.0);
    Ok((StatusCode::CREATED, Json(EventCreated { event_id })))
}

/// Events, newest first: `?limit=` (1..=1000, default 100) and `?offset=` (default 0).
#[utoipa::path(get, path = "/events", tag = "events",
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("offset" = Option<i64>, Query, minimum = 0, maximum = 2147483647),
    ),
    responses(
        (status = 200, description = "Events", body = Vec<EventView>),
        (status = 400, description = "Invalid JSON or a field out of range", body = ErrorBody),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn list_events(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<EventView>>> {
    let number = |key: &str, default: i64, min: i64, max: i64| -> ApiResult<i64> {
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
    };
    let limit = number("limit", 100, 1, 1000)?;
    let offset = number("offset", 0, 0, i64::from(i32::MAX))?;
    let events = state.seatlock.list_events(limit, offset).await?;
    Ok(Json(events.into_iter().map(EventView::from).collect()))
}

/// An event with its live counts.
#[utoipa::path(get, path = "/events/{event_id}", tag = "events", params(("event_id" = i64, Path, description = "Event id", minimum = 1, example = 1)),
    responses(
        (status = 200, description = "The event", body = EventDetail),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 404, description = "No such event / seats / booking", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn get_event(
    State(state): State<AppState>,
    caller: Caller,
    EventPath(id): EventPath,
) -> ApiResult<Json<EventDetail>> {
    event_detail(&state, &caller, id).await
}

/// Every seat with its status now.
#[utoipa::path(get, path = "/events/{event_id}/seats", tag = "events", params(("event_id" = i64, Path, description = "Event id", minimum = 1, example = 1)),
    responses(
        (status = 200, description = "The seat map", body = SeatMap),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 404, description = "No such event / seats / booking", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn get_seat_map(
    State(state): State<AppState>,
    caller: Caller,
    EventPath(id): EventPath,
) -> ApiResult<Json<SeatMap>> {
    let privileged = caller.role != Role::Buyer;
    let seats = state
        .seatlock
        .seat_map(id)
        .await?
        .into_iter()
        .map(|s| SeatView {
            channel: s.channel.filter(|_| privileged),
            code: s.code,
            seat_type: s.seat_type,
            price: cents_to_amount(s.price_cents),
            status: s.status.as_str(),
            seconds_remaining: s.status.seconds_remaining(),
            row: s.row,
            number: s.number,
            reason: s.blocked_reason.filter(|_| privileged),
        })
        .collect();
    Ok(Json(SeatMap {
        event_id: id,
        seats,
    }))
}
