//! Confirming holds into bookings: the guard, idempotent repeats, ownership, expiry.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::support::{TestApp, redis_url};

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn confirming_a_hold_books_its_seats_in_postgres(pg: PgPool) {
    let app = TestApp::new(pg.clone()).await;
    let (_, created) = app
        .post(
            "/events",
            json!({"name": "Gig", "date": "2030-01-10T18:00:00Z", "location": "Hall",
                   "seats": [{"code": "A1", "price": 10.25}, {"code": "A2", "price": 20}, {"code": "A3"}]}),
        )
        .await;
    let id = created["eventId"].as_i64().expect("id");
    let hold = app.hold(id, "u1", &["A2", "A1"]).await;
    let (status, body) = app.confirm(id, "u1", &hold).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["bookingGroupId"], hold.as_str());
    assert_eq!(body["eventId"], id);
    assert_eq!(body["seatCodes"], json!(["A1", "A2"]));
    assert_eq!(body["totalPrice"], 30.25);

    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT b.user_id, b.status, b.total_price_cents FROM bookings b WHERE event_id = $1",
    )
    .bind(id)
    .fetch_all(&pg)
    .await
    .expect("query");
    assert_eq!(
        rows,
        vec![("u1".to_string(), "CONFIRMED".to_string(), 3025)]
    );
    assert_eq!(app.booked_in_postgres(id).await, vec!["A1", "A2"]);
    assert_eq!(app.counts(id).await, (2, 0, 1));
    let seats = app.seat_statuses(id).await;
    assert_eq!(
        (
            seats["A1"].as_str(),
            seats["A2"].as_str(),
            seats["A3"].as_str()
        ),
        ("BOOKED", "BOOKED", "AVAILABLE")
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_repeated_confirm_returns_the_same_booking_and_writes_nothing_new(pg: PgPool) {
    let app = TestApp::new(pg.clone()).await;
    let id = app.create_event(3).await;
    let hold = app.hold(id, "u1", &["S1"]).await;
    let (s1, first) = app.confirm(id, "u1", &hold).await;
    let (s2, second) = app.confirm(id, "u1", &hold).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(first, second);
    let bookings: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(&pg)
        .await
        .expect("count");
    assert_eq!(bookings, 1);
    // Concurrent repeats of one confirm also converge on one booking.
    let hold2 = app.hold(id, "u1", &["S2"]).await;
    let results = futures::future::join_all((0..8).map(|_| app.confirm(id, "u1", &hold2))).await;
    assert!(
        results
            .iter()
            .all(|(s, b)| *s == StatusCode::OK && b["bookingGroupId"] == hold2.as_str()),
        "{results:?}"
    );
    let bookings: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(&pg)
        .await
        .expect("count");
    assert_eq!(bookings, 2);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn confirming_another_users_hold_is_403(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(2).await;
    let hold = app.hold(id, "u1", &["S1"]).await;
    let (status, body) = app.confirm(id, "intruder", &hold).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "NOT_HOLD_OWNER");
    // And after it is confirmed, a repeat by someone else is still 403, not the booking.
    assert_eq!(app.confirm(id, "u1", &hold).await.0, StatusCode::OK);
    assert_eq!(
        app.confirm(id, "intruder", &hold).await.0,
        StatusCode::FORBIDDEN
    );
    assert!(app.booked_in_postgres(id).await == vec!["S1"]);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn confirming_a_hold_of_another_event_is_400(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let a = app.create_event(2).await;
    let b = app.create_event(2).await;
    let hold = app.hold(a, "u1", &["S1"]).await;
    let (status, body) = app.confirm(b, "u1", &hold).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "HOLD_EVENT_MISMATCH");
    assert!(app.booked_in_postgres(b).await.is_empty());
    assert_eq!(app.confirm(a, "u1", &hold).await.0, StatusCode::OK);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn malformed_confirms_are_400(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(2).await;
    let path = format!("/events/{id}/seats/confirm");
    for body in [
        json!({"userId": "u1"}),
        json!({"userId": "u1", "holdGroupId": "not-a-uuid"}),
        json!({"holdGroupId": uuid::Uuid::new_v4()}),
    ] {
        let (status, resp) = app.post(&path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {resp}");
    }
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn unknown_or_released_holds_are_410(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(2).await;
    let (status, body) = app
        .confirm(id, "u1", &uuid::Uuid::new_v4().to_string())
        .await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["code"], "HOLD_EXPIRED");
    let hold = app.hold(id, "u1", &["S1"]).await;
    assert_eq!(app.release(id, "u1", &hold).await.0, StatusCode::OK);
    assert_eq!(app.confirm(id, "u1", &hold).await.0, StatusCode::GONE);
    assert!(app.booked_in_postgres(id).await.is_empty());
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_confirm_after_expiry_is_410_and_the_seat_is_free_again(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| s.holds.ttl_seconds = 2);
    let id = app.create_event(3).await;
    let hold = app.hold(id, "u1", &["S1", "S2"]).await;
    assert_eq!(app.counts(id).await, (0, 2, 1));
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(
        app.counts(id).await,
        (0, 0, 3),
        "held count must drop when holds expire"
    );
    assert_eq!(app.seat_statuses(id).await["S1"], "AVAILABLE");
    let (status, body) = app.confirm(id, "u1", &hold).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert!(app.booked_in_postgres(id).await.is_empty());
    let again = app.hold(id, "u2", &["S1"]).await;
    assert_eq!(app.counts(id).await, (0, 1, 2));
    assert_eq!(app.confirm(id, "u2", &again).await.0, StatusCode::OK);
    assert_eq!(app.counts(id).await, (1, 0, 2));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_confirm_cut_off_by_its_deadline_commits_whole_or_not_at_all(pg: PgPool) {
    let app = TestApp::new(pg.clone()).await;
    let prefix = app.prefix().to_string();
    // Same Redis key space and database, but a 1 ms request deadline: the handler future is
    // dropped part-way through most confirms.
    let hasty = TestApp::with(pg.clone(), &redis_url(), |s| {
        s.redis.key_prefix = prefix.clone();
        s.server.request_timeout_ms = 1;
    });
    let id = app.create_event(40).await;
    let mut holds = Vec::new();
    for i in 1..=40 {
        let seats = [format!("S{i}")];
        let hold = app.hold(id, "u1", &[seats[0].as_str()]).await;
        let (status, body) = hasty.confirm(id, "u1", &hold).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status} {body}"
        );
        holds.push(hold);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let half: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bookings b WHERE NOT EXISTS \
           (SELECT 1 FROM booking_seats s WHERE s.event_id = b.event_id AND s.booking_group_id = b.booking_group_id)",
    )
    .fetch_one(&pg)
    .await
    .expect("query");
    assert_eq!(half, 0, "a booking without its seats was committed");
    // Every cut-off confirm can be completed (or is answered as the repeat it is).
    for hold in &holds {
        let (status, body) = app.confirm(id, "u1", hold).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(app.booked_in_postgres(id).await.len(), 40);
}
