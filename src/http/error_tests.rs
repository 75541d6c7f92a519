//! Unit tests of the error mapping (its status, code and body per error).

use super::*;

#[test]
fn every_error_has_its_status_and_code() {
    let seats = || vec!["S1".to_string()];
    let cases: Vec<(ApiError, u16, &str)> = vec![
        (ApiError::InvalidJson("x".into()), 400, "INVALID_JSON"),
        (ApiError::validation("x"), 400, "VALIDATION_FAILED"),
        (Error::HoldEventMismatch.into(), 400, "HOLD_EVENT_MISMATCH"),
        (Error::NotHoldOwner.into(), 403, "NOT_HOLD_OWNER"),
        (Error::NotBookingOwner.into(), 403, "NOT_BOOKING_OWNER"),
        (Error::EventNotFound.into(), 404, "EVENT_NOT_FOUND"),
        (
            Error::SeatsNotFound { seats: seats() }.into(),
            404,
            "SEATS_NOT_FOUND",
        ),
        (Error::BookingNotFound.into(), 404, "BOOKING_NOT_FOUND"),
        (ApiError::RouteNotFound, 404, "NOT_FOUND"),
        (Error::HistoryDisabled.into(), 404, "HISTORY_DISABLED"),
        (ApiError::MethodNotAllowed, 405, "METHOD_NOT_ALLOWED"),
        (
            Error::SeatsUnavailable {
                seats: seats(),
                tiers: None,
            }
            .into(),
            409,
            "SEATS_UNAVAILABLE",
        ),
        (
            Error::TiersNotFound {
                tiers: vec!["GA".into()],
            }
            .into(),
            404,
            "TIERS_NOT_FOUND",
        ),
        (
            Error::SeatsAlreadyBooked { seats: seats() }.into(),
            409,
            "SEATS_ALREADY_BOOKED",
        ),
        (
            Error::HoldAlreadyConfirmed.into(),
            409,
            "HOLD_ALREADY_CONFIRMED",
        ),
        (
            ApiError::IdempotencyInFlight,
            409,
            "IDEMPOTENCY_KEY_IN_FLIGHT",
        ),
        (Error::HoldGone.into(), 410, "HOLD_EXPIRED"),
        (
            ApiError::PayloadTooLarge { limit: 1 },
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            ApiError::IdempotencyMismatch,
            422,
            "IDEMPOTENCY_KEY_MISMATCH",
        ),
        (Error::Internal("x".into()).into(), 500, "INTERNAL"),
        (
            Error::Postgres(sqlx::Error::RowNotFound).into(),
            500,
            "INTERNAL",
        ),
        (
            Error::Postgres(sqlx::Error::PoolTimedOut).into(),
            503,
            "SERVICE_UNAVAILABLE",
        ),
        (
            Error::Unavailable { what: "redis" }.into(),
            503,
            "SERVICE_UNAVAILABLE",
        ),
        (ApiError::Timeout, 503, "REQUEST_TIMEOUT"),
        (
            ApiError::Unauthenticated { token_sent: true },
            401,
            "UNAUTHENTICATED",
        ),
        (Error::Forbidden.into(), 403, "FORBIDDEN"),
        (Error::UserMismatch.into(), 403, "USER_MISMATCH"),
        (
            Error::UserLimit {
                limit: UserLimitKind::Seats,
                max: 10,
                current: 9,
            }
            .into(),
            409,
            "USER_LIMIT_REACHED",
        ),
        (
            Error::RateLimited {
                retry_after_s: 1,
                policy: String::new(),
                state: String::new(),
            }
            .into(),
            429,
            "RATE_LIMITED",
        ),
    ];
    let settings = crate::config::Settings::from_env(Default::default()).expect("defaults");
    let documented = crate::http::openapi::document(&settings);
    let documented = documented["components"]["schemas"]["ErrorCode"]["enum"].clone();
    for (err, status, code) in cases {
        assert_eq!(
            (err.status().as_u16(), err.code()),
            (status, code),
            "{err:?}"
        );
        assert!(
            documented
                .as_array()
                .is_some_and(|codes| codes.contains(&json!(code))),
            "{code} is not in the document's ErrorCode: {documented}"
        );
    }
}

#[test]
fn server_errors_do_not_leak_their_cause() {
    let body = ApiError::from(Error::Internal("secret detail".into())).body();
    assert_eq!(body["error"], "internal error");
    let body = ApiError::from(Error::SeatsUnavailable {
        seats: vec!["S2".into()],
        tiers: None,
    })
    .body();
    assert_eq!(body["seats"], json!(["S2"]));
    assert!(body.get("tiers").is_none());
}

#[test]
fn unavailable_answers_say_when_to_retry() {
    assert!(ApiError::Timeout.retry_after());
    assert!(ApiError::IdempotencyInFlight.retry_after());
    assert!(!ApiError::from(Error::HoldGone).retry_after());
}

#[tokio::test]
async fn the_hot_refusal_answers_the_same_bytes_as_every_other_error() {
    let error = || {
        ApiError::from(Error::SeatsUnavailable {
            seats: vec!["S1".into(), "A-\"2\"".into()],
            tiers: None,
        })
    };
    let expected = serde_json::to_vec(&error().body()).expect("the body serializes");
    let response = error().into_response();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        HeaderValue::from_static("application/json")
    );
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the body is read");
    assert_eq!(bytes.as_ref(), expected.as_slice());
}
