//! Idempotency-Key on reserve, confirm, release and cancel.

use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::TestApp;

async fn keyed(
    app: &TestApp,
    path: &str,
    key: &str,
    body: Value,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let (status, headers, bytes) = app
        .call_raw(
            "POST",
            path,
            Some(body.to_string()),
            &[("idempotency-key", key)],
        )
        .await;
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_replayed_reserve_returns_the_first_response_and_takes_no_second_hold(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(5).await;
    let path = format!("/events/{id}/seats/reserve");
    let body = json!({"userId": "u1", "seatCodes": ["S1", "S2"]});
    let (s1, h1, first) = keyed(&app, &path, "k-1", body.clone()).await;
    assert_eq!(s1, StatusCode::OK, "{first}");
    assert!(h1.get("idempotent-replayed").is_none());
    // Same body with its keys in another order: same fingerprint.
    let (s2, h2, second) = keyed(
        &app,
        &path,
        "k-1",
        json!({"seatCodes": ["S1", "S2"], "userId": "u1"}),
    )
    .await;
    assert_eq!(s2, StatusCode::OK);
    assert_eq!(first, second);
    assert_eq!(
        h2.get("idempotent-replayed").and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(app.redis_hold_count().await, 1);
    assert_eq!(app.counts(id).await, (0, 2, 3));
    // A refusal is stored and replayed too.
    let (s3, _, refused) = keyed(
        &app,
        &path,
        "k-2",
        json!({"userId": "u2", "seatCodes": ["S1"]}),
    )
    .await;
    assert_eq!(s3, StatusCode::CONFLICT);
    app.release(id, "u1", first["holdGroupId"].as_str().expect("id"))
        .await;
    let (s4, _, replayed) = keyed(
        &app,
        &path,
        "k-2",
        json!({"userId": "u2", "seatCodes": ["S1"]}),
    )
    .await;
    assert_eq!((s4, replayed), (StatusCode::CONFLICT, refused));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn the_same_key_with_another_body_is_422_and_bad_keys_are_400(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(5).await;
    let path = format!("/events/{id}/seats/reserve");
    assert_eq!(
        keyed(
            &app,
            &path,
            "k",
            json!({"userId": "u1", "seatCodes": ["S1"]})
        )
        .await
        .0,
        StatusCode::OK
    );
    let (status, _, body) = keyed(
        &app,
        &path,
        "k",
        json!({"userId": "u1", "seatCodes": ["S2"]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "IDEMPOTENCY_KEY_MISMATCH");
    assert_eq!(app.seat_statuses(id).await["S2"], "AVAILABLE");
    // Keys are per user: another user's identical key is a different request.
    assert_eq!(
        keyed(
            &app,
            &path,
            "k",
            json!({"userId": "u2", "seatCodes": ["S3"]})
        )
        .await
        .0,
        StatusCode::OK
    );
    let long = "x".repeat(256);
    let (status, _, body) = keyed(
        &app,
        &path,
        &long,
        json!({"userId": "u1", "seatCodes": ["S4"]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let max = "y".repeat(255);
    assert_eq!(
        keyed(
            &app,
            &path,
            &max,
            json!({"userId": "u1", "seatCodes": ["S4"]})
        )
        .await
        .0,
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_request_still_in_flight_with_the_key_gets_409_with_retry_after(pg: PgPool) {
    let app = TestApp::new(pg.clone()).await;
    let id = app.create_event(5).await;
    let path = format!("/events/{id}/seats/reserve");
    let body = json!({"userId": "u1", "seatCodes": ["S1"]});
    let fingerprint = {
        use sha2::Digest;
        sha2::Sha256::digest(body.to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    // The first request has claimed the key and is still running (its lease has 30 s left).
    sqlx::query(
        "INSERT INTO idempotency_keys (event_id, user_id, route, idempotency_key, fingerprint, locked_until) \
         VALUES ($1, 'u1', '/events/{event_id}/seats/reserve', 'k', $2, now() + interval '30 seconds')",
    )
    .bind(id)
    .bind(&fingerprint)
    .execute(&pg)
    .await
    .expect("insert");
    let (status, headers, resp) = keyed(&app, &path, "k", body.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{resp}");
    assert_eq!(resp["code"], "IDEMPOTENCY_KEY_IN_FLIGHT");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(app.seat_statuses(id).await["S1"], "AVAILABLE");
    // The first request died (lease over, nothing stored): a retry takes over and runs once.
    sqlx::query("UPDATE idempotency_keys SET locked_until = now() - interval '1 second'")
        .execute(&pg)
        .await
        .expect("update");
    let (status, _, first) = keyed(&app, &path, "k", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    // Dying again after taking the hold but before storing: the re-run acknowledges the same hold.
    sqlx::query("UPDATE idempotency_keys SET status_code = NULL, response_body = NULL, locked_until = now() - interval '1 second'")
        .execute(&pg)
        .await
        .expect("update");
    let (status, _, again) = keyed(&app, &path, "k", body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["holdGroupId"], first["holdGroupId"]);
    assert_eq!(app.redis_hold_count().await, 1);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn keyed_confirm_release_and_cancel_replay_without_second_effects(pg: PgPool) {
    let app = TestApp::new(pg.clone()).await;
    let id = app.create_event(5).await;
    let hold = app.hold(id, "u1", &["S1"]).await;
    let confirm = format!("/events/{id}/seats/confirm");
    let body = json!({"userId": "u1", "holdGroupId": hold});
    let (s1, _, b1) = keyed(&app, &confirm, "c-1", body.clone()).await;
    let (s2, h2, b2) = keyed(&app, &confirm, "c-1", body.clone()).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(b1, b2);
    assert!(h2.contains_key("idempotent-replayed"));
    let bookings: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(&pg)
        .await
        .expect("count");
    assert_eq!(bookings, 1);

    let cancel = format!("/bookings/{hold}/cancel");
    let (s, _, b) = keyed(&app, &cancel, "x-1", json!({"userId": "u1"})).await;
    assert_eq!((s, b), (StatusCode::OK, json!({"cancelled": true})));
    let (s, h, _) = keyed(&app, &cancel, "x-1", json!({"userId": "u1"})).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h.contains_key("idempotent-replayed"));

    let second = app.hold(id, "u2", &["S2"]).await;
    let release = format!("/events/{id}/seats/release");
    let rbody = json!({"userId": "u2", "holdGroupId": second});
    assert_eq!(
        keyed(&app, &release, "r-1", rbody.clone()).await.0,
        StatusCode::OK
    );
    // Without the key a second release is 410; with it, the stored 200 is replayed.
    assert_eq!(app.release(id, "u2", &second).await.0, StatusCode::GONE);
    assert_eq!(keyed(&app, &release, "r-1", rbody).await.0, StatusCode::OK);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_key_reused_after_its_response_expired_is_a_new_request_with_a_new_hold(pg: PgPool) {
    let app = TestApp::new(pg.clone()).await;
    let id = app.create_event(8).await;
    let path = format!("/events/{id}/seats/reserve");
    let (_, _, first) = keyed(
        &app,
        &path,
        "order-1",
        json!({"userId": "u1", "seatCodes": ["S1"]}),
    )
    .await;
    let hold = first["holdGroupId"].as_str().expect("id").to_string();
    assert_eq!(app.confirm(id, "u1", &hold).await.0, StatusCode::OK);
    let (status, _) = app
        .post(&format!("/bookings/{hold}/cancel"), json!({"userId": "u1"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    // 25 hours later the stored response is gone; the same key now means a new order.
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&pg)
        .await
        .expect("age");
    let (status, _, second) = keyed(
        &app,
        &path,
        "order-1",
        json!({"userId": "u1", "seatCodes": ["S7", "S8"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let hold2 = second["holdGroupId"].as_str().expect("id").to_string();
    assert_ne!(hold2, hold, "a new use of the key takes a new hold");
    let (status, body) = app.confirm(id, "u1", &hold2).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["seatCodes"], json!(["S7", "S8"]));
    assert_eq!(app.booked_in_postgres(id).await, vec!["S7", "S8"]);
    // The cancelled first booking is not confirmed again by a repeat.
    assert_eq!(app.confirm(id, "u1", &hold).await.0, StatusCode::GONE);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_keyed_request_cut_off_by_its_deadline_frees_its_key_for_the_retry(pg: PgPool) {
    let app = TestApp::new(pg.clone()).await;
    let prefix = app.prefix().to_string();
    let hasty = TestApp::with(pg.clone(), &crate::support::redis_url(), |s| {
        s.redis.key_prefix = prefix.clone();
        s.server.request_timeout_ms = 1;
    });
    let id = app.create_event(40).await;
    let path = format!("/events/{id}/seats/reserve");
    let mut cut = 0;
    for i in 1..=20 {
        let body = json!({"userId": "u1", "seatCodes": [format!("S{i}")]});
        let key = format!("k-{i}");
        if keyed(&hasty, &path, &key, body.clone()).await.0 == StatusCode::SERVICE_UNAVAILABLE {
            cut += 1;
        }
        // The cut-off request frees its key from a task of its own, soon but not at once: a
        // retry may find it in flight for a moment (409), never for the 30 s lease.
        let started = std::time::Instant::now();
        let (status, resp) = loop {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let (status, _, resp) = keyed(&app, &path, &key, body.clone()).await;
            if status != StatusCode::CONFLICT
                || started.elapsed() > std::time::Duration::from_secs(3)
            {
                break (status, resp);
            }
        };
        assert_eq!(
            status,
            StatusCode::OK,
            "retry after a cut-off request must run, not wait: {resp}"
        );
    }
    assert!(cut > 0, "the 1 ms deadline cut at least one request");
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn control_characters_are_400_never_500(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let (status, body) = app
        .post("/events", json!({"name": "Gig\u{0}", "date": "2030-01-10T18:00:00Z", "location": "Hall", "totalSeats": 1}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app
        .post("/events", json!({"name": "Gig", "date": "2030-01-10T18:00:00Z", "location": "Hall", "seats": [{"code": "A", "type": "V\u{0}IP"}]}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let id = app.create_event(2).await;
    let (status, _, body) = keyed(
        &app,
        &format!("/events/{id}/seats/reserve"),
        "k",
        json!({"userId": "u\u{0}1", "seatCodes": ["S1"]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    for path in ["/events/%FF", "/events/%FF/seats", "/bookings/%FF"] {
        let (status, _, bytes) = app.call_raw("GET", path, None, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        let body: Value = serde_json::from_slice(&bytes).expect("JSON error body");
        assert!(body["code"].is_string(), "{path}: {body}");
    }
    let (status, _, bytes) = app
        .call_raw(
            "POST",
            "/events/%FF/seats/reserve",
            Some(r#"{"userId":"u","seatCodes":["S1"]}"#.into()),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(serde_json::from_slice::<Value>(&bytes).is_ok());
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn one_key_on_two_bookings_cancels_both(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(4).await;
    let first = app.hold(id, "u1", &["S1"]).await;
    let second = app.hold(id, "u1", &["S2"]).await;
    for hold in [&first, &second] {
        assert_eq!(app.confirm(id, "u1", hold).await.0, StatusCode::OK);
    }
    for hold in [&first, &second] {
        let (status, headers, _) = app
            .call_raw(
                "POST",
                &format!("/bookings/{hold}/cancel"),
                Some(r#"{"userId":"u1"}"#.into()),
                &[("idempotency-key", "same-key")],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(!headers.contains_key("idempotent-replayed"), "{hold}");
    }
    assert!(
        app.booked_in_postgres(id).await.is_empty(),
        "both cancelled"
    );
}
