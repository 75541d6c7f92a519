//! The one mapping from errors to HTTP: status, machine code and JSON body
//! `{"error": "<sentence>", "code": "<CODE>", ...}`. Service errors come from
//! [`crate::error::Error`]; the errors only the transport can have (bad JSON, unknown route,
//! body too large, deadline, Idempotency-Key conflicts) are added here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::rfc3339_ms;
use crate::error::{Error, HoldCap, UserLimitKind};

/// The IETF `RateLimit-Policy` and `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers).
pub const RATELIMIT_POLICY: header::HeaderName =
    header::HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: header::HeaderName = header::HeaderName::from_static("ratelimit");

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Service(#[from] Error),
    #[error("{0}")]
    InvalidJson(String),
    #[error("no route for this path")]
    RouteNotFound,
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    #[error("request body too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("the request took too long")]
    Timeout,
    #[error("this Idempotency-Key was used with a different request body")]
    IdempotencyMismatch,
    #[error("a request with this Idempotency-Key is still in progress")]
    IdempotencyInFlight,
    #[error("a valid bearer token is required")]
    Unauthenticated { token_sent: bool },
}

pub type ApiResult<T> = Result<T, ApiError>;

pub use super::error_body::{ErrorBody, ErrorCode};

impl ApiError {
    /// A 400 `VALIDATION_FAILED` with this sentence.
    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::Service(Error::Validation(message.into()))
    }

    /// Machine-readable code of the error, stable across releases.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Service(e) => service_code(e),
            ApiError::InvalidJson(_) => "INVALID_JSON",
            ApiError::RouteNotFound => "NOT_FOUND",
            ApiError::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ApiError::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            ApiError::Timeout => "REQUEST_TIMEOUT",
            ApiError::IdempotencyMismatch => "IDEMPOTENCY_KEY_MISMATCH",
            ApiError::IdempotencyInFlight => "IDEMPOTENCY_KEY_IN_FLIGHT",
            ApiError::Unauthenticated { .. } => "UNAUTHENTICATED",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Service(e) => service_status(e),
            ApiError::InvalidJson(_) => StatusCode::BAD_REQUEST,
            ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::IdempotencyInFlight => StatusCode::CONFLICT,
            ApiError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
        }
    }

    fn body(&self) -> Value {
        let status = self.status();
        let message = match self {
            _ if status == StatusCode::INTERNAL_SERVER_ERROR => "internal error".to_string(),
            ApiError::Service(e) if e.is_redis_outage() => "redis is unavailable".to_string(),
            ApiError::Service(Error::Postgres(_)) => "postgres is unavailable".to_string(),
            other => other.to_string(),
        };
        let mut body = json!({ "error": message, "code": self.code() });
        match self {
            ApiError::Service(
                Error::SeatsNotFound { seats }
                | Error::SeatsAlreadyBooked { seats }
                | Error::HoldSeatsLost { seats },
            ) => body["seats"] = json!(seats),
            ApiError::Service(Error::SeatsUnavailable { seats, tiers }) => {
                body["seats"] = json!(seats);
                if let Some(tiers) = tiers {
                    body["tiers"] = tiers
                        .iter()
                        .map(|t| {
                            json!({
                                "code": t.code,
                                "requested": t.requested,
                                "available": t.available,
                            })
                        })
                        .collect();
                }
            }
            ApiError::Service(Error::TiersNotFound { tiers }) => body["tiers"] = json!(tiers),
            ApiError::Service(Error::NoAdjacentSeats { available }) => {
                body["available"] = json!(available)
            }
            ApiError::Service(Error::HoldLimit { cap, limit }) => {
                body["limit"] = json!(limit);
                body["cap"] = json!(match cap {
                    HoldCap::Renewals => "max_renewals",
                    HoldCap::Lifetime => "max_lifetime_seconds",
                });
            }
            ApiError::PayloadTooLarge { limit } => body["limitBytes"] = json!(limit),
            ApiError::Service(Error::UserLimit {
                limit,
                max,
                current,
            }) => {
                body["limit"] = json!(max);
                body["current"] = json!(current);
                body["cap"] = json!(match limit {
                    UserLimitKind::Seats => "max_seats_per_user",
                    UserLimitKind::LiveHolds => "max_live_holds_per_user",
                    UserLimitKind::AdmissionLiveHolds => "max_live_holds_per_admission",
                });
            }
            ApiError::Service(Error::RateLimited { retry_after_s, .. }) => {
                body["retryAfterSeconds"] = json!(retry_after_s)
            }
            ApiError::Service(Error::SalesNotOpen { opens_at_ms: t }) => {
                body["opensAt"] = json!(rfc3339_ms(*t))
            }
            ApiError::Service(Error::SalesClosed { closed_at_ms: t }) => {
                body["closedAt"] = json!(rfc3339_ms(*t))
            }
            _ => {}
        }
        body
    }

    /// Whether the client should retry later (503, a key still in flight): `Retry-After: 1`.
    fn retry_after(&self) -> bool {
        self.status() == StatusCode::SERVICE_UNAVAILABLE
            || matches!(self, ApiError::IdempotencyInFlight)
    }
}

pub(super) fn service_code(e: &Error) -> &'static str {
    match e {
        Error::Validation(_) => "VALIDATION_FAILED",
        Error::HoldEventMismatch => "HOLD_EVENT_MISMATCH",
        Error::EventNotFound => "EVENT_NOT_FOUND",
        Error::SeatsNotFound { .. } => "SEATS_NOT_FOUND",
        Error::TiersNotFound { .. } => "TIERS_NOT_FOUND",
        Error::NoAdjacentSeats { .. } => "NO_ADJACENT_SEATS",
        Error::HoldLimit { .. } => "HOLD_LIMIT_REACHED",
        Error::HoldSeatsLost { .. } => "HOLD_EXPIRED",
        Error::BookingNotFound => "BOOKING_NOT_FOUND",
        Error::WebhookNotFound => "WEBHOOK_NOT_FOUND",
        Error::HistoryDisabled => "HISTORY_DISABLED",
        Error::WebhookUrlForbidden(_) => "WEBHOOK_URL_FORBIDDEN",
        Error::NotHoldOwner => "NOT_HOLD_OWNER",
        Error::Forbidden => "FORBIDDEN",
        Error::UserMismatch => "USER_MISMATCH",
        Error::UserLimit { .. } => "USER_LIMIT_REACHED",
        Error::SalesNotOpen { .. } => "SALES_NOT_OPEN",
        Error::SalesClosed { .. } => "SALES_CLOSED",
        Error::AdmissionRequired => "ADMISSION_REQUIRED",
        Error::RateLimited { .. } => "RATE_LIMITED",
        Error::NotBookingOwner => "NOT_BOOKING_OWNER",
        Error::SeatsUnavailable { .. } => "SEATS_UNAVAILABLE",
        Error::SeatsAlreadyBooked { .. } => "SEATS_ALREADY_BOOKED",
        Error::HoldAlreadyConfirmed => "HOLD_ALREADY_CONFIRMED",
        Error::HoldGone => "HOLD_EXPIRED",
        Error::Unavailable { .. } | Error::Redis(_) | Error::RedisPool(_) => "SERVICE_UNAVAILABLE",
        e if e.is_postgres_outage() => "SERVICE_UNAVAILABLE",
        Error::Postgres(_) | Error::Internal(_) => "INTERNAL",
    }
}

pub(super) fn service_status(e: &Error) -> StatusCode {
    match e {
        Error::Validation(_) | Error::HoldEventMismatch | Error::WebhookUrlForbidden(_) => {
            StatusCode::BAD_REQUEST
        }
        Error::EventNotFound
        | Error::WebhookNotFound
        | Error::HistoryDisabled
        | Error::SeatsNotFound { .. }
        | Error::TiersNotFound { .. }
        | Error::BookingNotFound => StatusCode::NOT_FOUND,
        Error::NotHoldOwner | Error::NotBookingOwner | Error::Forbidden => StatusCode::FORBIDDEN,
        Error::UserMismatch | Error::AdmissionRequired => StatusCode::FORBIDDEN,
        Error::SeatsUnavailable { .. }
        | Error::NoAdjacentSeats { .. }
        | Error::HoldLimit { .. }
        | Error::UserLimit { .. }
        | Error::SalesNotOpen { .. }
        | Error::SalesClosed { .. }
        | Error::SeatsAlreadyBooked { .. }
        | Error::HoldAlreadyConfirmed => StatusCode::CONFLICT,
        Error::HoldGone | Error::HoldSeatsLost { .. } => StatusCode::GONE,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Unavailable { .. } | Error::Redis(_) | Error::RedisPool(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        e if e.is_postgres_outage() => StatusCode::SERVICE_UNAVAILABLE,
        Error::Postgres(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `body()` of `SEATS_UNAVAILABLE` without tiers, its keys in the same (sorted) order.
#[derive(serde::Serialize)]
struct SeatsRefusal<'a> {
    code: &'a str,
    error: &'a str,
    seats: &'a [String],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The cause is logged here, once; the client gets a sentence without it.
            tracing::error!(error = ?self, code = self.code(), "request failed");
        }
        let mut response = match &self {
            // The hot seat's refusal, the answer most requests of an on-sale get: serialized
            // straight from the error, the same bytes as `body()` without building its tree.
            ApiError::Service(Error::SeatsUnavailable { seats, tiers: None }) => {
                let body = SeatsRefusal {
                    code: self.code(),
                    error: &self.to_string(),
                    seats,
                };
                (status, axum::Json(body)).into_response()
            }
            _ => (status, axum::Json(self.body())).into_response(),
        };
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthenticated { token_sent } => {
                let challenge = if *token_sent {
                    HeaderValue::from_static("Bearer error=\"invalid_token\"")
                } else {
                    HeaderValue::from_static("Bearer")
                };
                headers.insert(header::WWW_AUTHENTICATE, challenge);
            }
            ApiError::Service(Error::RateLimited {
                retry_after_s,
                policy,
                state,
            }) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
                for (name, value) in [(RATELIMIT_POLICY, policy), (RATELIMIT, state)] {
                    if let Ok(v) = HeaderValue::from_str(value) {
                        headers.insert(name, v);
                    }
                }
            }
            _ if self.retry_after() => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        ApiError::Service(self).into_response()
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
