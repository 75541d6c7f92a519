//! The live seat map: `GET /events/{id}/stream`, server-sent events. First a `snapshot` (the body
//! of `GET /events/{id}/seats`, plus `tiers` where the event has tiers), then `update` events
//! with only what changed, at most one per `stream.coalesce_ms`. Every event has an `id` (the
//! hub's version); a reconnect (with or without `Last-Event-ID`) starts with a fresh snapshot.
//! A comment heartbeat when nothing was sent for `stream.heartbeat_seconds`. The stream ends at
//! shutdown. The body is written by hand (not axum's `Sse`) so that the snapshot, rendered once
//! per state version and second, is shared by every connection instead of copied into each.
//!
//! [`event_schemas`] describes each event this file writes for the API document; a new `event:`
//! written here without a schema there fails `tests/api/openapi.rs`.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;
use utoipa::ToSchema;

use super::error::{ApiResult, ErrorBody};
use super::extract::EventPath;
use super::state::AppState;
use crate::domain::access::{Caller, Role};
use crate::domain::events::{EventId, cents_to_amount};
use crate::domain::live::{Delta, LiveStatus};
use crate::service::{Audience, LiveTier, Snapshot, Subscription};
use crate::telemetry;

/// How long a client waits before reconnecting after the stream drops (`retry:`).
const RETRY: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new().route("/events/{event_id}/stream", get(stream_seat_map))
}

/// The `snapshot` event's data.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct SnapshotData {
    #[schema(value_type = i64)]
    event_id: EventId,
    seats: Vec<SnapshotSeat>,
    /// Present when the event has tiers.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    tiers: Option<Vec<SnapshotTier>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct SnapshotSeat {
    code: String,
    #[serde(rename = "type")]
    seat_type: String,
    price: f64,
    /// AVAILABLE, HELD, BOOKED or BLOCKED.
    #[schema(value_type = String, example = "HELD")]
    status: &'static str,
    seconds_remaining: Option<i64>,
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

#[derive(Serialize, ToSchema)]
pub(super) struct SnapshotTier {
    code: String,
    name: String,
    price: f64,
    capacity: u32,
    available: u32,
}

/// The `update` event's data: only what changed since the previous event of this stream.
#[derive(Serialize, ToSchema)]
pub(super) struct UpdateData {
    seats: Vec<UpdateSeat>,
    tiers: Vec<UpdateTier>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct UpdateSeat {
    code: String,
    /// AVAILABLE, HELD, BOOKED or BLOCKED (a reason or a channel comes with the next snapshot
    /// and the seat map).
    #[schema(value_type = String, example = "BOOKED")]
    status: &'static str,
    /// Seconds left on the hold, rounded up; null unless HELD.
    seconds_remaining: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct UpdateTier {
    code: String,
    available: u32,
}

/// The stream's events as the API document describes them (schema name, schema), one per
/// `event:` name this file writes. Each is an event of the server-sent events model (`event`,
/// `id`, `retry`, `data`; a comment is not an event), its `data` one line of JSON whose schema
/// is `contentSchema`. OpenAPI 3.1 has no keyword for one item of a stream: the media type's
/// `schema` describes one event, as schemathesis and the SDK generators read `text/event-stream`
/// in 3.1 documents (OpenAPI 3.2 names the same schema `itemSchema`). Written as JSON because
/// utoipa has no `contentSchema`; `openapi::document` adds them to the components.
pub(super) fn event_schemas() -> [(&'static str, Value); 3] {
    let id = json!({
        "type": "string",
        "pattern": "^[0-9]+$",
        "description": "The event's state version on this instance (`Last-Event-ID` is accepted, but a reconnect always starts with a snapshot)",
        "example": "12"
    });
    let data = |schema: &str| {
        json!({
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": format!("#/components/schemas/{schema}")},
            "description": format!("One line of JSON: {schema}")
        })
    };
    [
        (
            "SeatMapEvent",
            json!({
                "description": "One event of `GET /events/{event_id}/stream`, by its `event` name. Between events the stream sends a `: heartbeat` comment (no event, no data) when nothing was sent for `stream.heartbeat_seconds`. The stream ends only at shutdown.",
                "oneOf": [
                    {"$ref": "#/components/schemas/SnapshotEvent"},
                    {"$ref": "#/components/schemas/UpdateEvent"}
                ],
                "discriminator": {
                    "propertyName": "event",
                    "mapping": {
                        "snapshot": "#/components/schemas/SnapshotEvent",
                        "update": "#/components/schemas/UpdateEvent"
                    }
                }
            }),
        ),
        (
            "SnapshotEvent",
            json!({
                "description": "The whole seat map: first on every connection, and again (replacing everything shown) to a stream that fell more than `stream.buffer` updates behind.",
                "type": "object",
                "required": ["event", "id", "retry", "data"],
                "properties": {
                    "event": {"type": "string", "const": "snapshot"},
                    "id": id,
                    "retry": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Milliseconds a client waits before reconnecting",
                        "example": RETRY.as_millis()
                    },
                    "data": data("SnapshotData")
                }
            }),
        ),
        (
            "UpdateEvent",
            json!({
                "description": "What changed since the previous event of this stream, at most one per `stream.coalesce_ms`; apply in order over the snapshot.",
                "type": "object",
                "required": ["event", "id", "data"],
                "properties": {
                    "event": {"type": "string", "const": "update"},
                    "id": id,
                    "data": data("UpdateData")
                }
            }),
        ),
    ]
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn seat_status(status: LiveStatus, now: i64) -> (&'static str, Option<i64>) {
    let status = status.at(now);
    (status.as_str(), status.seconds_remaining())
}

/// The `snapshot` event of `snapshot` as it stands at `now` (ms since the epoch), whole, as
/// `audience` sees it (sellers see blocked seats' reasons and seats' channels, buyers do not).
fn render_snapshot(event: EventId, snapshot: &Snapshot, now: i64, audience: Audience) -> Vec<u8> {
    let sellers = audience == Audience::Sellers;
    let seats = snapshot
        .seats
        .iter()
        .map(|s| {
            let (status, seconds_remaining) = seat_status(s.status, now);
            SnapshotSeat {
                code: s.code.clone(),
                seat_type: s.seat_type.clone(),
                price: cents_to_amount(s.price_cents),
                status,
                seconds_remaining,
                row: s.row.clone(),
                number: s.number,
                reason: s.reason.clone().filter(|_| sellers),
                channel: s.channel.clone().filter(|_| sellers),
            }
        })
        .collect();
    let tiers = (!snapshot.tiers.is_empty()).then(|| {
        snapshot
            .tiers
            .iter()
            .map(|t: &LiveTier| SnapshotTier {
                code: t.code.clone(),
                name: t.name.clone(),
                price: cents_to_amount(t.price_cents),
                capacity: t.capacity,
                available: t.available,
            })
            .collect()
    });
    let data = SnapshotData {
        event_id: event,
        seats,
        tiers,
    };
    let json = serde_json::to_string(&data).unwrap_or_else(|_| "{}".into());
    let mut out = String::with_capacity(json.len() + 64);
    let _ = write!(
        out,
        "event: snapshot\nid: {}\nretry: {}\ndata: {json}\n\n",
        snapshot.version,
        RETRY.as_millis()
    );
    out.into_bytes()
}

/// An `update` event (the data is one line of JSON: serde_json never writes a raw newline).
fn update_event(delta: Delta) -> Bytes {
    let now = now_ms();
    telemetry::record_stream_update(delta.changed_at_ms.map(|at| now - at));
    let data = UpdateData {
        seats: delta
            .seats
            .into_iter()
            .map(|s| {
                let (status, seconds_remaining) = seat_status(s.status, now);
                UpdateSeat {
                    code: s.code,
                    status,
                    seconds_remaining,
                }
            })
            .collect(),
        tiers: delta
            .tiers
            .into_iter()
            .map(|t| UpdateTier {
                code: t.code,
                available: t.available,
            })
            .collect(),
    };
    let json = serde_json::to_string(&data).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!(
        "event: update\nid: {}\ndata: {json}\n\n",
        delta.version
    ))
}

/// One connection's side of the stream: the snapshot first, then the hub's deltas folded into
/// one update per coalescing window; a fresh snapshot when it fell behind the buffer; a comment
/// when nothing was sent for a heartbeat interval.
struct Connection {
    event: EventId,
    audience: Audience,
    subscription: Subscription,
    started: bool,
    coalesce: Duration,
    heartbeat: Duration,
    last_sent: Instant,
}

impl Connection {
    fn snapshot(&mut self, fresh: bool) -> Bytes {
        telemetry::record_stream_snapshot();
        let (event, now, audience) = (self.event, now_ms(), self.audience);
        let render = |snapshot: &Snapshot| render_snapshot(event, snapshot, now, audience);
        // One rendering per state version, second and audience, shared by every connection.
        let bytes = if fresh {
            self.subscription.resnapshot(now / 1000, audience, render)
        } else {
            self.subscription.snapshot(now / 1000, audience, render)
        };
        self.last_sent = Instant::now();
        Bytes::from_owner(SharedBytes(bytes))
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        if !self.started {
            self.started = true;
            return Some(self.snapshot(false));
        }
        let mut closing = self.subscription.closing.clone();
        let received = tokio::select! {
            received = self.subscription.updates.recv() => received,
            () = async { let _ = closing.wait_for(|c| *c).await; } => return None,
            () = tokio::time::sleep_until(self.last_sent + self.heartbeat) => {
                self.last_sent = Instant::now();
                return Some(Bytes::from_static(b": heartbeat\n\n"));
            }
        };
        let mut pending = match received {
            Ok(delta) => (*delta).clone(),
            Err(RecvError::Lagged(_)) => return Some(self.snapshot(true)),
            Err(RecvError::Closed) => return None,
        };
        tokio::time::sleep_until(self.last_sent + self.coalesce).await;
        loop {
            match self.subscription.updates.try_recv() {
                Ok(delta) => pending.merge(&delta),
                Err(TryRecvError::Lagged(_)) => return Some(self.snapshot(true)),
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        self.last_sent = Instant::now();
        Some(update_event(pending))
    }
}

/// A rendered snapshot shared by the connections that send it (no copy per connection).
struct SharedBytes(std::sync::Arc<[u8]>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The live seat map of an event as server-sent events (see the module documentation). In token
/// mode the token may come as `?access_token=` instead of `Authorization` (for EventSource).
#[utoipa::path(get, path = "/events/{event_id}/stream", tag = "events",
    params(
        ("event_id" = i64, Path, description = "Event id", minimum = 1, example = 1),
        ("access_token" = Option<String>, Query, description = "Token mode: the bearer token, for clients that cannot set headers (EventSource)"),
        ("Last-Event-ID" = Option<String>, Header, description = "Accepted; a reconnect always starts with a fresh snapshot"),
    ),
    responses(
        (status = 200, description = "Server-sent events, each a SeatMapEvent: a `snapshot` (SnapshotData) first, then `update` events (UpdateData), a fresh `snapshot` after falling behind; `: heartbeat` comments between events when idle", content_type = "text/event-stream", body = ref("#/components/schemas/SeatMapEvent")),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "stream.max_connections reached, shutting down, or a store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn stream_seat_map(
    State(state): State<AppState>,
    caller: Caller,
    EventPath(event): EventPath,
) -> ApiResult<Response> {
    let subscription = state.seatlock.subscribe(event).await?;
    let settings = &state.settings.stream;
    let connection = Connection {
        event,
        audience: match caller.role {
            Role::Buyer => Audience::Buyers,
            _ => Audience::Sellers,
        },
        subscription,
        started: false,
        coalesce: Duration::from_millis(settings.coalesce_ms),
        heartbeat: Duration::from_secs(settings.heartbeat_seconds),
        last_sent: Instant::now(),
    };
    let chunks = futures_util::stream::unfold(connection, |mut connection| async move {
        let chunk = connection.next_chunk().await?;
        Some((Ok::<_, Infallible>(chunk), connection))
    });
    let mut response = Body::from_stream(chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies (nginx) must pass events on at once rather than buffer them.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
