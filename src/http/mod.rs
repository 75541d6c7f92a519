//! The HTTP adapter: one router per resource, assembled here with the cross-cutting layers
//! (request id + span + metrics, deadline, body limit, panic guard, JSON 404/405). Handlers turn
//! wire types into domain values, call the service, and turn its results into wire types. The
//! hold route runs the same layers as plain calls in one handler (`reserve_lane`).
//!
//! - [`state`]: `AppState`; [`error`]: the one error -> status + JSON mapping;
//!   [`extract`]: path ids, JSON bodies, `userId`.
//! - `events`, `holds`, `bookings`, `health`: the resources; `idempotency`: the
//!   `Idempotency-Key` layer of the mutating routes; `auth`: the gate of the API routes
//!   (authentication, rate limits); `stream`: the live seat map (server-sent events); `web`:
//!   the buyer page (static files embedded in the binary).

mod auth;
mod blocks;
mod bookings;
pub mod error;
mod error_body;
mod event_inputs;
mod event_views;
mod events;
pub mod extract;
mod health;
mod history;
mod holds;
mod idempotency;
pub mod openapi;
mod policy;
mod reserve;
pub mod serve;
pub mod state;
mod stream;
pub mod web;
mod webhook_views;
mod webhooks;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, SecondsFormat, Utc};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

pub use self::error::ApiError;
pub use self::state::AppState;
use crate::error::Error;
use crate::telemetry;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// W3C Trace Context: read from the request, and naming the request's span on the response.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// W3C Trace Context's vendor state, continued with the caller's `traceparent` (export on).
const TRACESTATE: &str = "tracestate";

/// The whole HTTP API; the server and the tests call this same function.
pub fn router(state: AppState) -> Router {
    let max_body = state.settings.server.max_body_bytes;
    let api = Router::new()
        .merge(events::router())
        .merge(holds::router(state.clone()))
        .merge(bookings::router(state.clone()))
        .merge(stream::router())
        .merge(
            history::router()
                .merge(webhooks::router())
                .route_layer(middleware::from_fn_with_state(state.clone(), history_on)),
        )
        .merge(blocks::router())
        .merge(policy::router())
        .layer(middleware::from_fn_with_state(state.clone(), auth::gate));
    let rest = Router::new()
        .merge(api)
        .merge(health::router())
        .merge(web::router())
        .merge(openapi::router(&state.settings))
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state.clone(), observe));
    let routes = Router::new()
        .route(
            "/events/{event_id}/seats/reserve",
            post(reserve_lane).fallback(reserve_lane_not_allowed),
        )
        .merge(rest)
        .with_state(state);
    // Around the whole router rather than each route: `Router::layer` would box them into every
    // route, and every request would clone those boxes.
    Router::new().fallback_service(
        ServiceBuilder::new()
            .layer(CatchPanicLayer::custom(|_| {
                Error::Internal("handler panicked".into()).into_response()
            }))
            .layer(DefaultBodyLimit::max(max_body))
            .service(routes),
    )
}

/// The hold route (`POST /events/{id}/seats/reserve`), the request an on-sale makes most. Its
/// stack is every API route's (observe, the auth gate, the idempotency layer, in that order) as
/// plain calls in one handler instead of three `from_fn` layers, each of which clones the boxed
/// service below it (and every box beneath that) and boxes its future, on every request: about
/// 20 allocations a hold (bench/README.md, "Kept: fewer allocations on the hold path").
async fn reserve_lane(State(state): State<AppState>, req: Request) -> Response {
    observed(&state, req, |req| {
        auth::gated(&state, req, |req| {
            idempotency::recorded(&state, req, |req| {
                reserve::reserve_seats.call(req, state.clone())
            })
        })
    })
    .await
}

/// Another method on the hold route: 405 `METHOD_NOT_ALLOWED` with a request id, as on every
/// other route (before the auth gate, as there).
async fn reserve_lane_not_allowed(State(state): State<AppState>, req: Request) -> Response {
    observed(&state, req, |_| async {
        ApiError::MethodNotAllowed.into_response()
    })
    .await
}

/// The history and webhook routes answer 404 `HISTORY_DISABLED` on a deployment that records no
/// history (`history.enabled = false`), after the auth gate.
async fn history_on(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.settings.history.enabled {
        next.run(req).await
    } else {
        Error::HistoryDisabled.into_response()
    }
}

/// Gives every request an id (the client's `x-request-id` if sane, else a new UUID), a span that
/// every log line of the request carries (continuing the caller's `traceparent`, named by the
/// response's), a deadline, a closing log line and its HTTP metrics.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    observed(&state, req, |req| next.run(req)).await
}

/// [`observe`] around any inner call: the middleware's, or the hold lane's.
async fn observed<F, Fut>(state: &AppState, req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    // The matched path is shared (an Arc), not copied.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = req.method().clone();
    // Field names of the OpenTelemetry HTTP semantic conventions; `otel.*` name the exported span.
    let span = tracing::info_span!(
        "request",
        otel.name = format_args!("{method} {route}"),
        otel.kind = "server",
        request_id = %request_id,
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        event.id = tracing::field::Empty,
        hold.id = tracing::field::Empty,
        booking.id = tracing::field::Empty,
    );
    let traceparent = telemetry::continue_trace(
        &span,
        req.headers()
            .get(&TRACEPARENT)
            .and_then(|v| v.to_str().ok()),
        || req.headers().get(TRACESTATE).and_then(|v| v.to_str().ok()),
    );
    let deadline = state.settings.server.request_timeout();
    let (log_request_id, log_traceparent) = (request_id.as_str(), traceparent.as_str());
    let mut response = async move {
        // The bare future when the log lines get the ids from the request's span (its level
        // is logged), else one that carries them (boxed: the common path's future stays small).
        let answered = if telemetry::log_ids_needed() {
            let with_ids = telemetry::with_log_ids(log_request_id, log_traceparent, next(req));
            tokio::time::timeout(deadline, with_ids).await
        } else {
            tokio::time::timeout(deadline, next(req)).await
        };
        let response = match answered {
            Ok(response) => response,
            Err(_) => ApiError::Timeout.into_response(),
        };
        let status = response.status().as_u16();
        // An integer attribute (tracing-opentelemetry exports unsigned integers as text).
        tracing::Span::current().record("http.response.status_code", i64::from(status));
        let took = started.elapsed();
        if route != "/metrics" {
            tracing::info!(
                status,
                latency_ms = took.as_secs_f64() * 1000.0,
                "request finished"
            );
        }
        telemetry::record_http(route, method.as_str(), status, took);
        response
    }
    .instrument(span)
    .await;
    // From the strings themselves (not copies of them).
    if let Ok(v) = HeaderValue::try_from(request_id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    if let Ok(v) = HeaderValue::try_from(traceparent) {
        response.headers_mut().insert(TRACEPARENT, v);
    }
    response
}

/// A timestamp as the API writes it: RFC 3339 in UTC, `Z`, seconds unless finer is needed.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// An instant in ms since the epoch, as [`rfc3339`] writes it.
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).map_or_else(String::new, rfc3339)
}
