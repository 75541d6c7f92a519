//! The crate's one error type, and its single mapping to HTTP status + JSON body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidJson(String),
    #[error("{0}")]
    Validation(String),
    #[error("the hold belongs to another event")]
    HoldEventMismatch,
    #[error("event not found")]
    EventNotFound,
    #[error("some seats do not exist in this event")]
    SeatsNotFound { seats: Vec<String> },
    #[error("booking not found")]
    BookingNotFound,
    #[error("no route for this path")]
    RouteNotFound,
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    #[error("the hold belongs to another user")]
    NotHoldOwner,
    #[error("the booking belongs to another user")]
    NotBookingOwner,
    #[error("some seats are held or booked")]
    SeatsUnavailable { seats: Vec<String> },
    #[error("some seats were already booked")]
    SeatsAlreadyBooked { seats: Vec<String> },
    #[error("the hold was already confirmed")]
    HoldAlreadyConfirmed,
    #[error("the hold has expired, was released, or does not exist")]
    HoldGone,
    #[error("request body too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("{what} is unavailable")]
    Unavailable { what: &'static str },
    #[error("the request took too long")]
    Timeout,
    #[error("this Idempotency-Key was used with a different request body")]
    IdempotencyMismatch,
    #[error("a request with this Idempotency-Key is still in progress")]
    IdempotencyInFlight,
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis pool: {0}")]
    RedisPool(#[from] crate::store::redis_pool::PoolError),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Machine-readable code of the error, stable across releases.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidJson(_) => "INVALID_JSON",
            Error::Validation(_) => "VALIDATION_FAILED",
            Error::HoldEventMismatch => "HOLD_EVENT_MISMATCH",
            Error::EventNotFound => "EVENT_NOT_FOUND",
            Error::SeatsNotFound { .. } => "SEATS_NOT_FOUND",
            Error::BookingNotFound => "BOOKING_NOT_FOUND",
            Error::RouteNotFound => "NOT_FOUND",
            Error::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Error::NotHoldOwner => "NOT_HOLD_OWNER",
            Error::NotBookingOwner => "NOT_BOOKING_OWNER",
            Error::SeatsUnavailable { .. } => "SEATS_UNAVAILABLE",
            Error::SeatsAlreadyBooked { .. } => "SEATS_ALREADY_BOOKED",
            Error::HoldAlreadyConfirmed => "HOLD_ALREADY_CONFIRMED",
            Error::HoldGone => "HOLD_EXPIRED",
            Error::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            Error::Unavailable { .. } | Error::Redis(_) | Error::RedisPool(_) => {
                "SERVICE_UNAVAILABLE"
            }
            Error::Timeout => "REQUEST_TIMEOUT",
            Error::IdempotencyMismatch => "IDEMPOTENCY_KEY_MISMATCH",
            Error::IdempotencyInFlight => "IDEMPOTENCY_KEY_IN_FLIGHT",
            Error::Postgres(e) if is_unavailable(e) => "SERVICE_UNAVAILABLE",
            Error::Postgres(_) | Error::Internal(_) => "INTERNAL",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::InvalidJson(_) | Error::Validation(_) | Error::HoldEventMismatch => {
                StatusCode::BAD_REQUEST
            }
            Error::EventNotFound
            | Error::SeatsNotFound { .. }
            | Error::BookingNotFound
            | Error::RouteNotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::NotHoldOwner | Error::NotBookingOwner => StatusCode::FORBIDDEN,
            Error::SeatsUnavailable { .. }
            | Error::SeatsAlreadyBooked { .. }
            | Error::HoldAlreadyConfirmed
            | Error::IdempotencyInFlight => StatusCode::CONFLICT,
            Error::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            Error::HoldGone => StatusCode::GONE,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unavailable { .. } | Error::Redis(_) | Error::RedisPool(_) | Error::Timeout => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Postgres(e) if is_unavailable(e) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Postgres(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self) -> Value {
        let status = self.status();
        let message = match self {
            _ if status == StatusCode::INTERNAL_SERVER_ERROR => "internal error".to_string(),
            Error::Redis(_) | Error::RedisPool(_) => "redis is unavailable".to_string(),
            Error::Postgres(_) => "postgres is unavailable".to_string(),
            other => other.to_string(),
        };
        let mut body = json!({ "error": message, "code": self.code() });
        match self {
            Error::SeatsNotFound { seats }
            | Error::SeatsUnavailable { seats }
            | Error::SeatsAlreadyBooked { seats } => body["seats"] = json!(seats),
            Error::PayloadTooLarge { limit } => body["limitBytes"] = json!(limit),
            _ => {}
        }
        body
    }
}

/// Errors that mean "Postgres could not be reached in time", as opposed to a bug.
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        // 57014 query_canceled (statement_timeout), 57P01 admin_shutdown, 53300 too_many_connections
        sqlx::Error::Database(db) => {
            matches!(
                db.code().as_deref(),
                Some("57014" | "57P01" | "57P02" | "57P03" | "53300")
            )
        }
        _ => false,
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = ?self, code = self.code(), "request failed");
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE || matches!(self, Error::IdempotencyInFlight) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
