//! An event's sales policy (admins): `PATCH /events/{id} {salesStart?, salesEnd?,
//! queueitEventId?}` (a field left out keeps its value, `null` removes it) and
//! `PUT /events/{id}/channels {channels: [...]}` (replaces the whole set).

use axum::extract::State;
use axum::routing::put;
use axum::{Json, Router};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::event_inputs::ChannelInput;
use super::event_views::{EventDetail, event_detail};
use super::extract::{ApiJson, EventPath};
use super::rfc3339;
use super::state::AppState;
use crate::domain::access::{Action, Caller, authorize};
use crate::domain::channels::{RawChannel, validate_channels};
use crate::domain::policy::{EventPolicyPatch, PolicySnapshot, parse_instant};

pub fn router() -> Router<AppState> {
    Router::new().route("/events/{event_id}/channels", put(put_channels))
}

/// A field that may be left out (keep), `null` (remove) or a value (set).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A change of the event's sales policy: each field left out keeps its value, `null` removes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PatchEventBody {
    /// RFC 3339: holds are refused with `SALES_NOT_OPEN` before it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime, example = "2030-01-10T10:00:00Z")]
    sales_start: Option<Option<String>>,
    /// RFC 3339, after `salesStart`: holds are refused with `SALES_CLOSED` from it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime, example = "2030-01-11T00:00:00Z")]
    sales_end: Option<Option<String>>,
    /// The Queue-it event id its admission tokens name (`e`), when not the event id.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 100, pattern = "^[A-Za-z0-9._-]+$")]
    queueit_event_id: Option<Option<String>>,
}

/// Changes the event's sales window and Queue-it event id (admins only in token mode).
#[utoipa::path(patch, path = "/events/{event_id}", tag = "events", request_body = PatchEventBody,
    params(("event_id" = i64, Path, description = "Event id", minimum = 1, example = 1)),
    responses(
        (status = 200, description = "The event, as GET /events/{id} shows it", body = EventDetail),
        (status = 400, description = "Invalid JSON, a bad timestamp, or salesEnd not after salesStart", body = ErrorBody),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "The token may not do this", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn patch_event(
    State(state): State<AppState>,
    caller: Caller,
    EventPath(event): EventPath,
    body: ApiResult<ApiJson<PatchEventBody>>,
) -> ApiResult<Json<EventDetail>> {
    // Who may comes before what was sent: a buyer's bad body is 403, not 400.
    authorize(&caller, Action::ManageSeats, None)?;
    let ApiJson(body) = body?;
    let mut problems = Vec::new();
    let mut instant = |field: &str, v: Option<Option<String>>| match v {
        Some(Some(text)) => match parse_instant(&text) {
            Some(t) => Some(Some(t)),
            None => {
                problems.push(format!(
                    "{field} must be an RFC 3339 timestamp, e.g. 2030-01-10T10:00:00Z"
                ));
                None
            }
        },
        Some(None) => Some(None),
        None => None,
    };
    let patch = EventPolicyPatch {
        sales_start: instant("salesStart", body.sales_start),
        sales_end: instant("salesEnd", body.sales_end),
        queueit_event_id: body.queueit_event_id,
    };
    if !problems.is_empty() {
        return Err(ApiError::validation(problems.join("; ")));
    }
    state.seatlock.patch_event_policy(event, patch).await?;
    event_detail(&state, &caller, event).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ChannelsBody {
    /// The whole set (at most 20 channels); `[]` removes every channel.
    #[schema(max_items = 20)]
    channels: Vec<ChannelInput>,
}

/// A channel as stored.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ChannelView {
    code: String,
    seat_codes: Vec<String>,
    /// Tier units allocated to the channel.
    tiers: Vec<ChannelTierView>,
    /// The channel's own bounds (null: the event's).
    #[schema(format = DateTime)]
    sales_start: Option<String>,
    #[schema(format = DateTime)]
    sales_end: Option<String>,
}

/// Units of one tier allocated to a channel.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ChannelTierView {
    code: String,
    quantity: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ChannelSet {
    channels: Vec<ChannelView>,
}

/// The channel set of a policy, each channel's seats in creation order.
pub(super) fn channel_set(snapshot: &PolicySnapshot) -> Vec<ChannelView> {
    snapshot
        .channels
        .iter()
        .map(|(code, w)| ChannelView {
            code: code.clone(),
            seat_codes: snapshot
                .seats
                .iter()
                .filter(|(_, c)| c == code)
                .map(|(s, _)| s.clone())
                .collect(),
            tiers: snapshot
                .tiers
                .iter()
                .filter(|(c, _, _)| c == code)
                .map(|(_, tier, quantity)| ChannelTierView {
                    code: tier.clone(),
                    quantity: *quantity,
                })
                .collect(),
            sales_start: w.start.map(rfc3339),
            sales_end: w.end.map(rfc3339),
        })
        .collect()
}

/// Replaces the event's sales channels (admins only in token mode). Moving a seat between
/// channels never touches a live hold or a booking.
#[utoipa::path(put, path = "/events/{event_id}/channels", tag = "events", request_body = ChannelsBody,
    params(("event_id" = i64, Path, description = "Event id", minimum = 1, example = 1)),
    responses(
        (status = 200, description = "The channel set now", body = ChannelSet),
        (status = 400, description = "Invalid JSON, a bad code or window, a seat in two channels, a tier's allocations over its capacity", body = ErrorBody),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "The token may not do this", body = ErrorBody),
        (status = 404, description = "No such event, or seats or tiers that are not in it", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn put_channels(
    State(state): State<AppState>,
    caller: Caller,
    EventPath(event): EventPath,
    body: ApiResult<ApiJson<ChannelsBody>>,
) -> ApiResult<Json<ChannelSet>> {
    // Who may comes before what was sent: a buyer's bad body is 403, not 400.
    authorize(&caller, Action::ManageSeats, None)?;
    let ApiJson(body) = body?;
    let mut problems = Vec::new();
    let raw = body.channels.into_iter().map(RawChannel::from).collect();
    let channels = validate_channels(raw, &mut problems);
    if !problems.is_empty() {
        return Err(ApiError::validation(problems.join("; ")));
    }
    let snapshot = state.seatlock.put_event_channels(event, channels).await?;
    Ok(Json(ChannelSet {
        channels: channel_set(&snapshot),
    }))
}
