//! Releasing holds.

use axum::http::StatusCode;
use sqlx::PgPool;

use crate::support::TestApp;

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn releasing_a_hold_frees_its_seats_at_once(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(3).await;
    let hold = app.hold(id, "u1", &["S1", "S2"]).await;
    let (status, body) = app.release(id, "u1", &hold).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({"released": true}));
    assert_eq!(app.counts(id).await, (0, 0, 3));
    app.hold(id, "u2", &["S1", "S2"]).await;
    // A second release of the same hold: it is gone.
    let (status, body) = app.release(id, "u1", &hold).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["code"], "HOLD_EXPIRED");
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn releasing_another_users_hold_is_403_and_keeps_it(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(2).await;
    let hold = app.hold(id, "u1", &["S1"]).await;
    let (status, body) = app.release(id, "u2", &hold).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "NOT_HOLD_OWNER");
    assert_eq!(app.seat_statuses(id).await["S1"], "HELD");
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn releasing_a_confirmed_hold_is_409(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(2).await;
    let hold = app.hold(id, "u1", &["S1"]).await;
    assert_eq!(app.confirm(id, "u1", &hold).await.0, StatusCode::OK);
    let (status, body) = app.release(id, "u1", &hold).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "HOLD_ALREADY_CONFIRMED");
    assert_eq!(app.booked_in_postgres(id).await, vec!["S1"]);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn releasing_an_unknown_hold_is_410_and_bad_bodies_400(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(2).await;
    let (status, _) = app
        .release(id, "u1", &uuid::Uuid::new_v4().to_string())
        .await;
    assert_eq!(status, StatusCode::GONE);
    let (status, _) = app.release(id, "u1", "nope").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let other = app.create_event(1).await;
    let hold = app.hold(other, "u1", &["S1"]).await;
    assert_eq!(
        app.release(id, "u1", &hold).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_failed_confirm_unpins_only_its_own_pin(pg: PgPool) {
    use seatlock::domain::events::EventId;
    use seatlock::domain::holds::HoldGroupId;
    let app = TestApp::new(pg).await;
    let id = app.create_event(2).await;
    let hold = app.hold(id, "u1", &["S1"]).await;
    let (event, hold_id) = (EventId(id), HoldGroupId::parse(&hold).expect("uuid"));
    let seats = vec!["S1".to_string()];
    let grace = std::time::Duration::from_secs(30);
    let redis = app.state.seatlock.redis();
    // Two confirm attempts pin the hold; the first one fails and unpins.
    redis
        .pin_hold(event, hold_id, "u1", (&seats, &[]), grace, "attempt-a")
        .await
        .expect("pin a");
    redis
        .pin_hold(event, hold_id, "u1", (&seats, &[]), grace, "attempt-b")
        .await
        .expect("pin b");
    redis
        .unpin_hold(event, hold_id, "attempt-a")
        .await
        .expect("unpin a");
    // The second attempt is still in progress: a release is refused.
    assert_eq!(app.release(id, "u1", &hold).await.0, StatusCode::CONFLICT);
    redis
        .unpin_hold(event, hold_id, "attempt-b")
        .await
        .expect("unpin b");
    assert_eq!(app.release(id, "u1", &hold).await.0, StatusCode::OK);
}
