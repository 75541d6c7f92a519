//! Taking holds: all-or-nothing, refusals that list exactly the taken seats, bad input.

use axum::http::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::support::TestApp;

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn reserving_free_seats_returns_a_hold_with_its_expiry(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(5).await;
    let (status, body) = app.reserve(id, "u1", &["S2", "S1"]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hold = body["holdGroupId"].as_str().expect("holdGroupId");
    assert!(uuid::Uuid::parse_str(hold).is_ok(), "{hold}");
    assert_eq!(body["expiresIn"], 300);
    assert_eq!(body["seatCodes"], json!(["S2", "S1"]));
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(body["expiresAt"].as_str().expect("expiresAt"))
            .expect("rfc3339");
    let left = expires_at
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!((295..=300).contains(&left), "{left}");
    assert_eq!(app.counts(id).await, (0, 2, 3));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn second_hold_on_a_held_seat_is_refused_with_409_listing_exactly_the_taken_seats(
    pg: PgPool,
) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(6).await;
    app.hold(id, "u1", &["S1", "S2"]).await;
    let (status, body) = app.reserve(id, "u2", &["S3", "S2", "S4", "S1"]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "SEATS_UNAVAILABLE");
    assert_eq!(body["seats"], json!(["S2", "S1"]));
    // All or nothing: the free seats of the refused request were not held.
    let seats = app.seat_statuses(id).await;
    assert_eq!(seats["S3"], "AVAILABLE");
    assert_eq!(seats["S4"], "AVAILABLE");
    assert_eq!(app.counts(id).await, (0, 2, 4));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn booked_seats_are_refused_with_409(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(3).await;
    let hold = app.hold(id, "u1", &["S1"]).await;
    assert_eq!(app.confirm(id, "u1", &hold).await.0, StatusCode::OK);
    let (status, body) = app.reserve(id, "u2", &["S1", "S2"]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["seats"], json!(["S1"]));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn unknown_seat_codes_are_404_and_listed(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(3).await;
    let (status, body) = app.reserve(id, "u1", &["S1", "Z9", "S4"]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "SEATS_NOT_FOUND");
    assert_eq!(body["seats"], json!(["Z9", "S4"]));
    assert_eq!(app.seat_statuses(id).await["S1"], "AVAILABLE");
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn bad_hold_requests_are_400_and_hold_nothing(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(20).await;
    let path = format!("/events/{id}/seats/reserve");
    let eleven: Vec<String> = (1..=11).map(|i| format!("S{i}")).collect();
    let bodies = [
        json!({"seatCodes": ["S1"]}),
        json!({"userId": "", "seatCodes": ["S1"]}),
        json!({"userId": "u1"}),
        json!({"userId": "u1", "seatCodes": []}),
        json!({"userId": "u1", "seatCodes": ["S1", "S1"]}),
        json!({"userId": "u1", "seatCodes": eleven}),
        json!({"userId": "u1", "seatCodes": "S1"}),
        json!({"userId": "u1", "seatCodes": [1, 2]}),
        json!({"userId": ["u1"], "seatCodes": ["S1"]}),
        json!([1, 2, 3]),
    ];
    for body in bodies {
        let (status, resp) = app.post(&path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {resp}");
        assert!(
            resp["code"].is_string() && resp["error"].is_string(),
            "{resp}"
        );
    }
    for raw in ["{not json", "", "null"] {
        let (status, _, bytes) = app.call_raw("POST", &path, Some(raw.into()), &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{raw:?}");
        let body: serde_json::Value = serde_json::from_slice(&bytes).expect("json error");
        assert!(body["code"].is_string());
    }
    assert_eq!(app.counts(id).await, (0, 0, 20));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_numeric_user_id_is_accepted_as_text(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(2).await;
    let (status, body) = app
        .post(
            &format!("/events/{id}/seats/reserve"),
            json!({"userId": 42, "seatCodes": ["S1"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hold = body["holdGroupId"].as_str().expect("id").to_string();
    let (status, body) = app.confirm(id, "42", &hold).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn bodies_over_64_kib_are_refused_with_413(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(2).await;
    let big = format!(
        "{{\"userId\":\"u1\",\"seatCodes\":[\"S1\"],\"pad\":\"{}\"}}",
        "x".repeat(70 * 1024)
    );
    let (status, _, bytes) = app
        .call_raw(
            "POST",
            &format!("/events/{id}/seats/reserve"),
            Some(big),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(app.counts(id).await, (0, 0, 2));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn seats_of_one_event_do_not_block_another_event(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let a = app.create_event(2).await;
    let b = app.create_event(2).await;
    app.hold(a, "u1", &["S1"]).await;
    app.hold(b, "u2", &["S1"]).await;
    assert_eq!(app.counts(a).await.1, 1);
    assert_eq!(app.counts(b).await.1, 1);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn bodies_must_be_objects_and_user_ids_strings_or_whole_numbers(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(3).await;
    let path = format!("/events/{id}/seats/reserve");
    let (status, _, body) = app
        .call_raw("POST", &path, Some(r#"["u2",["S1"]]"#.into()), &[])
        .await;
    let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_JSON"))
    );
    assert_eq!(app.counts(id).await, (0, 0, 3), "nothing held");
    for bad in ["1.5", "1e3", "true"] {
        let raw = format!(r#"{{"userId":{bad},"seatCodes":["S1"]}}"#);
        let (status, _, body) = app.call_raw("POST", &path, Some(raw), &[]).await;
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        let message = body["error"].as_str().expect("error");
        assert!(
            message.contains("userId must be a string or a whole number"),
            "{message}"
        );
        assert!(
            !message.contains("UserIdInput"),
            "no internal names: {message}"
        );
    }
    let raw = r#"{"userId":12345678901234567890,"seatCodes":["S1"]}"#.to_string();
    assert_eq!(
        app.call_raw("POST", &path, Some(raw), &[]).await.0,
        StatusCode::OK
    );
}
