//! Reading and cancelling bookings.

use axum::http::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::support::TestApp;

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_booking_can_be_read_back(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(3).await;
    let hold = app.hold(id, "u1", &["S3", "S1"]).await;
    app.confirm(id, "u1", &hold).await;
    let (status, b) = app.get(&format!("/bookings/{hold}")).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["bookingGroupId"], hold.as_str());
    assert_eq!(b["eventId"], id);
    assert_eq!(b["userId"], "u1");
    assert_eq!(b["status"], "CONFIRMED");
    assert_eq!(
        b["seats"],
        json!([{"code": "S1", "type": "STANDARD", "price": 0.0}, {"code": "S3", "type": "STANDARD", "price": 0.0}])
    );
    assert_eq!(b["totalPrice"], 0.0);
    assert!(
        chrono::DateTime::parse_from_rfc3339(b["confirmedAt"].as_str().expect("confirmedAt"))
            .is_ok()
    );
    assert_eq!(b["cancelledAt"], json!(null));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn unknown_bookings_are_404(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(1).await;
    let unconfirmed = app.hold(id, "u1", &["S1"]).await;
    for b in [
        uuid::Uuid::new_v4().to_string(),
        "garbage".to_string(),
        unconfirmed,
    ] {
        let (status, body) = app.get(&format!("/bookings/{b}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{b}");
        assert_eq!(body["code"], "BOOKING_NOT_FOUND");
        let (status, _) = app
            .post(&format!("/bookings/{b}/cancel"), json!({"userId": "u1"}))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{b}");
    }
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn cancelling_is_soft_and_frees_the_seats_for_sale_at_once(pg: PgPool) {
    let app = TestApp::new(pg.clone()).await;
    let id = app.create_event(2).await;
    let hold = app.hold(id, "u1", &["S1"]).await;
    app.confirm(id, "u1", &hold).await;
    let path = format!("/bookings/{hold}/cancel");
    let (status, body) = app.post(&path, json!({"userId": "u1"})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"cancelled": true})));
    let (status, body) = app.post(&path, json!({"userId": "u1"})).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"cancelled": true})),
        "a repeated cancel is still 200"
    );
    let (_, b) = app.get(&format!("/bookings/{hold}")).await;
    assert_eq!(b["status"], "CANCELLED");
    assert!(b["cancelledAt"].is_string());
    let (status, cancelled_at): (String, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT status, cancelled_at FROM bookings WHERE event_id = $1")
            .bind(id)
            .fetch_one(&pg)
            .await
            .expect("row stays");
    assert_eq!(status, "CANCELLED");
    assert!(cancelled_at.is_some());
    assert_eq!(app.counts(id).await, (0, 0, 2));
    let again = app.hold(id, "u2", &["S1"]).await;
    assert_eq!(app.confirm(id, "u2", &again).await.0, StatusCode::OK);
    assert_eq!(app.booked_in_postgres(id).await, vec!["S1"]);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn only_the_owner_may_cancel_and_must_say_who_they_are(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(1).await;
    let hold = app.hold(id, "u1", &["S1"]).await;
    app.confirm(id, "u1", &hold).await;
    let path = format!("/bookings/{hold}/cancel");
    let (status, body) = app.post(&path, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app.post(&path, json!({"userId": "u2"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "NOT_BOOKING_OWNER");
    assert_eq!(
        app.get(&format!("/bookings/{hold}")).await.1["status"],
        "CONFIRMED"
    );
}
