//! Hold extension (`POST /events/{id}/seats/extend`): the contract, its limits, both stores, a
//! race with expiry, and what it extends (seats and tier units together).

use std::time::Duration;

use axum::http::StatusCode;
use seatlock::domain::holds::HoldStore;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::{TestApp, redis_url};
use crate::tiers::{create_tier_event, reserve_units, tier_counts};

async fn extend(app: &TestApp, event: i64, user: &str, hold: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/events/{event}/seats/extend"),
        json!({"userId": user, "holdGroupId": hold}),
    )
    .await
}

fn millis(rfc3339: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339.as_str().expect("date"))
        .expect("rfc3339")
        .timestamp_millis()
}

/// The extension contract against whichever store the app holds in.
async fn contract(app: &TestApp) {
    let id = app.create_event(6).await;
    let (status, held) = app.reserve(id, "u1", &["S1", "S2"]).await;
    assert_eq!(status, StatusCode::OK);
    let hold = held["holdGroupId"].as_str().expect("id").to_string();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = extend(app, id, "u1", &hold).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["holdGroupId"], held["holdGroupId"]);
    assert_eq!(body["renewalsLeft"], 2);
    assert!(
        millis(&body["expiresAt"]) > millis(&held["expiresAt"]) + 500,
        "{body} {held}"
    );
    assert!(
        (9..=10).contains(&body["expiresIn"].as_i64().expect("in")),
        "{body}"
    );
    // Another buyer's hold: 403; an unknown one: 410.
    assert_eq!(extend(app, id, "u2", &hold).await.0, StatusCode::FORBIDDEN);
    let stranger = app.hold(id, "u9", &["S6"]).await;
    assert_eq!(app.release(id, "u9", &stranger).await.0, StatusCode::OK);
    let (status, body) = extend(app, id, "u9", &stranger).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::GONE, json!("HOLD_EXPIRED"))
    );
    // An id this service never issued: 410 to extend, confirm and release, in either store.
    let never = uuid::Uuid::new_v4().to_string();
    assert_eq!(extend(app, id, "u1", &never).await.0, StatusCode::GONE);
    assert_eq!(app.confirm(id, "u1", &never).await.0, StatusCode::GONE);
    assert_eq!(app.release(id, "u1", &never).await.0, StatusCode::GONE);
    // At most max_renewals (3) times.
    assert_eq!(extend(app, id, "u1", &hold).await.1["renewalsLeft"], 1);
    assert_eq!(extend(app, id, "u1", &hold).await.1["renewalsLeft"], 0);
    let (status, body) = extend(app, id, "u1", &hold).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        (
            body["code"].clone(),
            body["cap"].clone(),
            body["limit"].clone()
        ),
        (json!("HOLD_LIMIT_REACHED"), json!("max_renewals"), json!(3))
    );
    // A confirm after extensions works; then the hold is confirmed: 409.
    assert_eq!(app.confirm(id, "u1", &hold).await.0, StatusCode::OK);
    let (status, body) = extend(app, id, "u1", &hold).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::CONFLICT, json!("HOLD_ALREADY_CONFIRMED"))
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_hold_is_extended_up_to_its_limits_in_redis(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| s.holds.ttl_seconds = 10);
    contract(&app).await;
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_hold_is_extended_up_to_its_limits_in_postgres(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        s.holds.ttl_seconds = 10;
        s.holds.backend = HoldStore::Postgres;
    });
    contract(&app).await;
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn an_expired_hold_is_gone_to_its_buyer_and_to_anyone_else_in_both_stores(pg: PgPool) {
    for backend in [HoldStore::Redis, HoldStore::Postgres] {
        let app = TestApp::with(pg.clone(), &redis_url(), |s| {
            s.holds.ttl_seconds = 1;
            s.holds.backend = backend;
        });
        let id = app.create_event(2).await;
        let hold = app.hold(id, "u1", &["S1"]).await;
        tokio::time::sleep(Duration::from_millis(1300)).await;
        for user in ["u2", "u1"] {
            let (status, body) = extend(&app, id, user, &hold).await;
            assert_eq!(
                (status, body["code"].clone()),
                (StatusCode::GONE, json!("HOLD_EXPIRED")),
                "{backend:?} {user}"
            );
        }
    }
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn an_extension_never_passes_the_hold_lifetime(pg: PgPool) {
    for backend in [HoldStore::Redis, HoldStore::Postgres] {
        let app = TestApp::with(pg.clone(), &redis_url(), |s| {
            s.holds.ttl_seconds = 4;
            s.holds.max_lifetime_seconds = 5;
            s.holds.backend = backend;
        });
        let id = app.create_event(2).await;
        let (_, held) = app.reserve(id, "u1", &["S1"]).await;
        let hold = held["holdGroupId"].as_str().expect("id").to_string();
        // Half the TTL, so the extension comes well before the hold's end on a slow machine.
        tokio::time::sleep(Duration::from_millis(2000)).await;
        let (status, body) = extend(&app, id, "u1", &hold).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        // Capped at 5 s from the hold's start, not 4 s from now.
        let taken = millis(&held["expiresAt"]) - 4_000;
        let end = millis(&body["expiresAt"]);
        assert!(
            (end - (taken + 5_000)).abs() < 300,
            "{backend:?}: {body} {held}"
        );
        let (status, body) = extend(&app, id, "u1", &hold).await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend:?}: {body}");
        assert_eq!(
            (body["cap"].clone(), body["limit"].clone()),
            (json!("max_lifetime_seconds"), json!(5))
        );
    }
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_hold_that_lost_a_seat_in_redis_is_not_extended(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(3).await;
    let hold = app.hold(id, "u1", &["S1", "S2"]).await;
    let mut conn = app.redis().await;
    let key = format!("{}:{{e:{id}}}:seat:S2", app.prefix());
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("del");
    let (status, body) = extend(&app, id, "u1", &hold).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["seats"], json!(["S2"]));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn seats_and_tier_units_are_extended_together(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| s.holds.ttl_seconds = 3);
    let id = create_tier_event(
        &app,
        json!({"totalSeats": 2, "tiers": [{"code": "GA", "capacity": 5}]}),
    )
    .await;
    let (status, body) = reserve_units(&app, id, "u1", &["S1"], &[("GA", 2)]).await;
    assert_eq!(status, StatusCode::OK);
    let hold = body["holdGroupId"].as_str().expect("id").to_string();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(extend(&app, id, "u1", &hold).await.0, StatusCode::OK);
    // Past the first TTL (3 s from the hold), about 1 s before the extended one: still held,
    // seat and units.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(app.seat_statuses(id).await["S1"], "HELD");
    assert_eq!(tier_counts(&app, id, "GA").await, (0, 2, 3));
    assert_eq!(app.reserve(id, "u2", &["S1"]).await.0, StatusCode::CONFLICT);
    assert_eq!(app.confirm(id, "u1", &hold).await.0, StatusCode::OK);
    assert_eq!(tier_counts(&app, id, "GA").await, (2, 0, 3));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn an_extension_racing_expiry_never_leaves_a_seat_with_two_holds(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| s.holds.ttl_seconds = 1);
    let id = app.create_event(20).await;
    let mut extended_first = 0;
    let mut neither = 0;
    for round in 0..12 {
        let seat = format!("S{}", round + 1);
        let hold = app.hold(id, "owner", &[seat.as_str()]).await;
        // Both at about the moment the hold ends.
        tokio::time::sleep(Duration::from_millis(990 + (round % 4) * 5)).await;
        let wanted = [seat.as_str()];
        let (ext, other) = tokio::join!(
            extend(&app, id, "owner", &hold),
            app.reserve(id, "rival", &wanted)
        );
        match (ext.0, other.0) {
            (StatusCode::OK, StatusCode::CONFLICT) => extended_first += 1,
            (StatusCode::GONE, StatusCode::OK) => {}
            // The rival asked just before the end, the extension came just after it.
            (StatusCode::GONE, StatusCode::CONFLICT) => neither += 1,
            other => panic!("round {round}: {seat} owned twice or oddly: {other:?} {ext:?}"),
        }
    }
    println!("of 12 races the extension won {extended_first}, neither got the seat {neither}");
}
