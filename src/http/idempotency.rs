//! `Idempotency-Key` on reserve, confirm, release and cancel. The first response (status and
//! body) is stored under (event, userId, route, key) with a fingerprint of the body; a replay
//! returns it unchanged with `Idempotent-Replayed: true`; the same key with another body is 422;
//! while the first request runs, 409 with Retry-After. A 5xx or a 429 is not stored, so a retry
//! runs again. A request whose body has no valid `userId` runs unkeyed (it is a 400 anyway).

use axum::body::{Body, to_bytes};
use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::ApiError;
use super::extract::{ActedOnEvent, user_id_of};
use super::state::AppState;
use crate::domain::access::{Caller, acting_user};
use crate::domain::events::EventId;
use crate::domain::idempotency::{IdempotencyScope, KeyClaim, KeyUse, fingerprint, validate_key};
use crate::domain::limits::DeferredCount;
use crate::error::{Error, Result};
use crate::service::Seatlock;

pub const HEADER: &str = "idempotency-key";

pub async fn replay_or_record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    recorded(&state, req, |req| next.run(req)).await
}

/// [`replay_or_record`] around any inner call: the middleware's, or the hold lane's.
pub async fn recorded<F, Fut>(state: &AppState, req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let Some(raw) = req.headers().get(HEADER) else {
        return next(req).await;
    };
    // A header that is not visible ASCII is refused like an empty one.
    let key = match validate_key(raw.to_str().unwrap_or_default()) {
        Ok(k) => k.to_string(),
        Err(why) => return ApiError::validation(why).into_response(),
    };
    // The scope names the resource: the event is in it already; a booking's route is kept with
    // its booking id, so the same key sent to cancel another booking is another request.
    let route = match req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
    {
        Some(template) if template.contains("{booking_id}") => req.uri().path().to_string(),
        Some(template) => template.to_string(),
        None => String::new(),
    };
    let limit = state.settings.server.max_body_bytes;
    let (mut parts, body) = req.into_parts();
    let Ok(ActedOnEvent(event)) = ActedOnEvent::from_request_parts(&mut parts, state).await;
    let Ok(bytes) = to_bytes(body, limit).await else {
        return ApiError::PayloadTooLarge { limit }.into_response();
    };
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    // The buyer the request acts for, as the handler will decide it.
    let user = parts.extensions.get::<Caller>().and_then(|caller| {
        let given = parsed.as_ref().and_then(user_id_of);
        acting_user(caller, given).ok()
    });
    let (Some(parsed), Some(user_id)) = (parsed, user) else {
        return next(Request::from_parts(parts, Body::from(bytes))).await;
    };
    // A claim costs Postgres work: a request whose rate count was left to the hold script is
    // counted here first (the script then does not count it again).
    if let Some(deferred) = parts.extensions.get::<Arc<DeferredCount>>()
        && deferred.counted().is_none()
        && let Some(check) = state.seatlock.check_rate(&deferred.caller).await
    {
        deferred.record(check);
        if !check.verdict.allowed {
            return check.refusal().into_response();
        }
    }
    let scope = IdempotencyScope {
        event: event.unwrap_or(EventId(0)),
        user_id,
        route,
        key,
    };
    match claim(&state.seatlock, &scope, fingerprint(&parsed)).await {
        Err(e) => e.into_response(),
        Ok(KeyClaim::Mismatch) => ApiError::IdempotencyMismatch.into_response(),
        Ok(KeyClaim::InFlight) => ApiError::IdempotencyInFlight.into_response(),
        Ok(KeyClaim::Replay { status, body }) => replayed(status, body),
        Ok(KeyClaim::Owner { claimed_at }) => {
            parts.extensions.insert(KeyUse {
                key: scope.key.clone(),
                claimed_at,
            });
            let mut guard = ReleaseOnDrop {
                armed: true,
                seatlock: state.seatlock.clone(),
                scope: scope.clone(),
            };
            let response = next(Request::from_parts(parts, Body::from(bytes))).await;
            let response = record(&state.seatlock, &scope, response).await;
            guard.armed = false;
            response
        }
    }
}

/// Claims the key on a task of its own: if this request is dropped while the claim is under way,
/// the task releases what it claimed instead of leaving the key blocked for the lease.
async fn claim(seatlock: &Seatlock, scope: &IdempotencyScope, fp: String) -> Result<KeyClaim> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (seatlock, scope) = (seatlock.clone(), scope.clone());
    tokio::spawn(async move {
        let claimed = seatlock.claim_idempotency_key(&scope, &fp).await;
        let owned = matches!(claimed, Ok(KeyClaim::Owner { .. }));
        if tx.send(claimed).is_err() && owned {
            let _ = seatlock.release_idempotency_key(&scope).await;
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
    seatlock: Seatlock,
    scope: IdempotencyScope,
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let seatlock = self.seatlock.clone();
        let scope = self.scope.clone();
        tokio::spawn(async move {
            if let Err(e) = seatlock.release_idempotency_key(&scope).await {
                tracing::warn!(error = %e, "could not release the idempotency key of a dropped request");
            }
        });
    }
}

/// Stores a final response and returns it unchanged. A 5xx or a 429 is not final (the same
/// request may succeed later): the key is handed straight to the retry instead.
async fn record(seatlock: &Seatlock, scope: &IdempotencyScope, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return Error::Internal(format!("reading the response body: {e}")).into_response();
        }
    };
    let retry_later =
        parts.status.is_server_error() || parts.status == StatusCode::TOO_MANY_REQUESTS;
    let stored = if retry_later {
        seatlock.release_idempotency_key(scope).await
    } else {
        let status = parts.status.as_u16();
        seatlock
            .complete_idempotency_key(scope, status, &bytes)
            .await
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
