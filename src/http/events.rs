//! Events and seat maps: `POST /events`, `GET /events`, `GET /events/{id}`,
//! `GET /events/{id}/seats`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiJson, Segment, record_event};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::events::{EventId, RawSeat, cents_to_amount, validate_new_event};
use crate::service;
use crate::store::postgres::{self as pg, EventRow};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/events", get(list_events).post(create_event))
        .route("/events/{event_id}", get(get_event))
        .route("/events/{event_id}/seats", get(get_seat_map))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateEventBody {
    name: Option<String>,
    date: Option<String>,
    location: Option<String>,
    total_seats: Option<i64>,
    seats: Option<Vec<SeatInput>>,
}

#[derive(Debug, Deserialize)]
struct SeatInput {
    code: String,
    #[serde(rename = "type")]
    seat_type: Option<String>,
    price: Option<f64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventCreated {
    event_id: EventId,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventView {
    id: i64,
    name: String,
    date: String,
    location: String,
    total_seats: i32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventDetail {
    #[serde(flatten)]
    event: EventView,
    confirmed_seats: i64,
    held_seats: i64,
    available_seats: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SeatMap {
    event_id: EventId,
    seats: Vec<SeatView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SeatView {
    code: String,
    #[serde(rename = "type")]
    seat_type: String,
    price: f64,
    status: &'static str,
    seconds_remaining: Option<i64>,
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl From<EventRow> for EventView {
    fn from(e: EventRow) -> Self {
        EventView {
            id: e.event_id,
            name: e.name,
            date: rfc3339(e.starts_at),
            location: e.location,
            total_seats: e.total_seats,
        }
    }
}

/// Parses the `{event_id}` path segment; anything but a positive integer is an unknown event.
pub fn parse_event_id(raw: &str) -> Result<EventId> {
    let id = EventId::parse(raw).ok_or(Error::EventNotFound)?;
    record_event(id);
    Ok(id)
}

async fn create_event(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateEventBody>,
) -> Result<(StatusCode, Json<EventCreated>)> {
    let mut missing = Vec::new();
    for (field, present) in [
        ("name", body.name.is_some()),
        ("date", body.date.is_some()),
        ("location", body.location.is_some()),
    ] {
        if !present {
            missing.push(format!("{field} is required"));
        }
    }
    if !missing.is_empty() {
        return Err(Error::Validation(missing.join("; ")));
    }
    let seats = body.seats.map(|list| {
        list.into_iter()
            .map(|s| RawSeat {
                code: s.code,
                seat_type: s.seat_type,
                price: s.price,
            })
            .collect()
    });
    let new_event = validate_new_event(
        body.name.as_deref().unwrap_or_default(),
        body.date.as_deref().unwrap_or_default(),
        body.location.as_deref().unwrap_or_default(),
        body.total_seats,
        seats,
        state.settings.events.max_seats,
    )
    .map_err(|problems| Error::Validation(problems.join("; ")))?;
    let event_id = service::create_event(&state, &new_event).await?;
    record_event(event_id);
    Ok((StatusCode::CREATED, Json(EventCreated { event_id })))
}

/// `?limit=` (1..=1000, default 100) and `?offset=` (default 0); newest first.
async fn list_events(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<EventView>>> {
    let number = |key: &str, default: i64, min: i64, max: i64| -> Result<i64> {
        match params.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    Error::Validation(format!("{key} must be an integer from {min} to {max}"))
                }),
        }
    };
    let limit = number("limit", 100, 1, 1000)?;
    let offset = number("offset", 0, 0, i64::from(i32::MAX))?;
    let rows = pg::fetch_events(&state.pg, limit, offset).await?;
    Ok(Json(rows.into_iter().map(EventView::from).collect()))
}

async fn get_event(
    State(state): State<AppState>,
    Segment(raw): Segment,
) -> Result<Json<EventDetail>> {
    let id = parse_event_id(raw.as_deref().unwrap_or_default())?;
    let summary = service::event_summary(&state, id).await?;
    let total = i64::from(summary.event.total_seats);
    Ok(Json(EventDetail {
        available_seats: (total - summary.confirmed_seats - summary.held_seats).max(0),
        confirmed_seats: summary.confirmed_seats,
        held_seats: summary.held_seats,
        event: summary.event.into(),
    }))
}

async fn get_seat_map(
    State(state): State<AppState>,
    Segment(raw): Segment,
) -> Result<Json<SeatMap>> {
    let id = parse_event_id(raw.as_deref().unwrap_or_default())?;
    let seats = service::seat_map(&state, id)
        .await?
        .into_iter()
        .map(|s| {
            let (status, seconds_remaining) = match (s.seat.booked, s.held_ms) {
                (true, _) => ("BOOKED", None),
                (false, Some(ms)) => ("HELD", Some((ms + 999) / 1000)),
                (false, None) => ("AVAILABLE", None),
            };
            SeatView {
                code: s.seat.seat_code,
                seat_type: s.seat.seat_type,
                price: cents_to_amount(s.seat.price_cents),
                status,
                seconds_remaining,
            }
        })
        .collect();
    Ok(Json(SeatMap {
        event_id: id,
        seats,
    }))
}
