//! `Idempotency-Key` (IETF draft "The Idempotency-Key HTTP Header Field") on reserve, confirm,
//! release and cancel. The first response (status and body) is stored in Postgres under
//! (event, userId, route, key) with a fingerprint of the body; a replay returns it unchanged;
//! the same key with another body is 422; while the first request runs, 409 with Retry-After.
//! A 5xx is not stored, so a retry runs again. A request whose body has no valid `userId` runs
//! unkeyed (it is a 400 anyway).

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::error::Error;
use crate::events::EventId;
use crate::holds::{HoldGroupId, validate_user_id};
use crate::store::postgres::{self as pg, IdempotencyScope, KeyClaim};

pub const HEADER: &str = "idempotency-key";
const MAX_KEY_LEN: usize = 255;

/// The request's key and the time this use of it was claimed, for handlers that derive ids from
/// it (reserve): a retry of the same use derives the same id, a reuse after expiry a new one.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub String);

pub async fn replay_or_record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(raw) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match raw.to_str() {
        Ok(k)
            if !k.is_empty()
                && k.len() <= MAX_KEY_LEN
                && k.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            k.to_string()
        }
        _ => {
            return Error::Validation(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
            ))
            .into_response();
        }
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let event = event_of(req.uri().path());
    let limit = state.settings.server.max_body_bytes;
    let (mut parts, body) = req.into_parts();
    let bytes = match to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return Error::PayloadTooLarge { limit }.into_response(),
    };
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    let user = parsed.as_ref().and_then(|v| match &v["userId"] {
        Value::String(s) => validate_user_id(Some(s)).ok(),
        Value::Number(n) => validate_user_id(Some(&n.to_string())).ok(),
        _ => None,
    });
    let (Some(parsed), Some(user)) = (parsed, user) else {
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    };
    // serde_json orders object keys, so the fingerprint ignores key order and whitespace.
    let fingerprint = format!("{:x}", Sha256::digest(parsed.to_string().as_bytes()));
    let scope = IdempotencyScope {
        event,
        user_id: &user,
        route: &route,
        key: &key,
    };
    let lease = Duration::from_secs(state.settings.idempotency.lease_seconds);
    let ttl = Duration::from_secs(state.settings.idempotency.ttl_hours * 3600);
    match claim(&state, &scope, fingerprint, lease, ttl).await {
        Err(e) => e.into_response(),
        Ok(KeyClaim::Mismatch) => Error::IdempotencyMismatch.into_response(),
        Ok(KeyClaim::InFlight) => Error::IdempotencyInFlight.into_response(),
        Ok(KeyClaim::Replay { status, body }) => replayed(status, body),
        Ok(KeyClaim::Owner { claimed_at }) => {
            parts
                .extensions
                .insert(IdempotencyKey(format!("{claimed_at}/{key}")));
            let mut guard = ReleaseOnDrop::new(&state, &scope);
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            let response = record(&state, &scope, response).await;
            guard.armed = false;
            response
        }
    }
}

/// Claims the key on a task of its own: if this request is dropped while the claim is under way,
/// the task releases what it claimed instead of leaving the key blocked for the lease.
async fn claim(
    state: &AppState,
    scope: &IdempotencyScope<'_>,
    fingerprint: String,
    lease: Duration,
    ttl: Duration,
) -> crate::error::Result<KeyClaim> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let pg = state.pg.clone();
    let (event, user_id, route, key) = (
        scope.event,
        scope.user_id.to_string(),
        scope.route.to_string(),
        scope.key.to_string(),
    );
    tokio::spawn(async move {
        let scope = IdempotencyScope {
            event,
            user_id: &user_id,
            route: &route,
            key: &key,
        };
        let claimed = pg::claim_idempotency_key(&pg, &scope, &fingerprint, lease, ttl).await;
        let owned = matches!(claimed, Ok(KeyClaim::Owner { .. }));
        if tx.send(claimed).is_err() && owned {
            let _ = pg::release_idempotency_key(&pg, &scope).await;
        }
    });
    rx.await
        .map_err(|_| Error::Internal("the idempotency claim task ended without an answer".into()))?
}

/// Releases a claimed key if the request is dropped before its response is stored (the client
/// went away, or the request deadline passed), so a retry runs at once instead of waiting out
/// the lease. Only a key with no stored response is released.
struct ReleaseOnDrop {
    armed: bool,
    pg: sqlx::PgPool,
    scope: (EventId, String, String, String),
}

impl ReleaseOnDrop {
    fn new(state: &AppState, scope: &IdempotencyScope<'_>) -> Self {
        ReleaseOnDrop {
            armed: true,
            pg: state.pg.clone(),
            scope: (
                scope.event,
                scope.user_id.to_string(),
                scope.route.to_string(),
                scope.key.to_string(),
            ),
        }
    }
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let pg = self.pg.clone();
        let (event, user_id, route, key) = std::mem::take(&mut self.scope);
        tokio::spawn(async move {
            let scope = IdempotencyScope {
                event,
                user_id: &user_id,
                route: &route,
                key: &key,
            };
            if let Err(e) = pg::release_idempotency_key(&pg, &scope).await {
                tracing::warn!(error = %e, "could not release the idempotency key of a dropped request");
            }
        });
    }
}

/// Stores a final response (anything but a 5xx) and returns it unchanged.
async fn record(state: &AppState, scope: &IdempotencyScope<'_>, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return Error::Internal(format!("reading the response body: {e}")).into_response();
        }
    };
    let stored = if parts.status.is_server_error() {
        pg::release_idempotency_key(&state.pg, scope).await
    } else {
        pg::complete_idempotency_key(&state.pg, scope, parts.status.as_u16(), &bytes).await
    };
    if let Err(e) = stored {
        // The response itself stands; a retry with this key will wait out the lease and re-run.
        tracing::warn!(error = %e, "could not store the idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replayed(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// The event a keyed path belongs to: `/events/{id}/...`, or the event carried by the
/// booking id of `/bookings/{id}/cancel`; 0 when neither parses.
fn event_of(path: &str) -> EventId {
    let mut segments = path.trim_start_matches('/').split('/');
    match (segments.next(), segments.next()) {
        (Some("events"), Some(id)) => EventId::parse(id),
        (Some("bookings"), Some(id)) => HoldGroupId::parse(id).and_then(|h| h.event()),
        _ => None,
    }
    .unwrap_or(EventId(0))
}
