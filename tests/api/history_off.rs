//! `history.enabled = false`: a deployment that needs neither the history nor webhooks records
//! nothing (no history stream in Redis, no history row in Postgres, in either hold backend) while
//! every operation still works, and the history and webhook routes say why they are not there.
//! And, with the history on, a best-available hold reaches the history at the next flush like
//! any other hold.

use std::time::Duration;

use axum::http::StatusCode;
use seatlock::domain::holds::HoldStore;
use serde_json::json;
use sqlx::PgPool;

use crate::best::{best, chosen};
use crate::history::replayed_exactly;
use crate::support::{TestApp, redis_url};
use crate::tiers::create_tier_event;

/// Rows A (8 seats) and B (4 seats) and a tier GA of 10: every kind of change can be made.
async fn house(app: &TestApp) -> i64 {
    create_tier_event(
        app,
        json!({"rows": [{"name": "A", "seats": 8, "price": 10}, {"name": "B", "seats": 4, "price": 10}],
               "tiers": [{"code": "GA", "price": 20, "capacity": 10}]}),
    )
    .await
}

/// Every kind of change: held, extended, booked (pinned), cancelled, released, held by
/// best-available, tier units held and booked, blocked and unblocked. Returns the best-available
/// hold's seats.
async fn every_change(app: &TestApp, id: i64) -> Vec<String> {
    let h1 = app.hold(id, "u1", &["A1"]).await;
    assert_eq!(app.confirm(id, "u1", &h1).await.0, StatusCode::OK);
    let (status, body) = app
        .post(&format!("/bookings/{h1}/cancel"), json!({"userId": "u1"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let h2 = app.hold(id, "u2", &["A2"]).await;
    let (status, body) = app
        .post(
            &format!("/events/{id}/seats/extend"),
            json!({"userId": "u2", "holdGroupId": h2}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.release(id, "u2", &h2).await.0, StatusCode::OK);
    let (status, body) = best(app, id, "u3", json!({"count": 2})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let chosen = chosen(&body);
    let (status, body) = app
        .post(
            &format!("/events/{id}/seats/reserve"),
            json!({"userId": "u4", "tiers": [{"code": "GA", "quantity": 3}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let h4 = body["holdGroupId"].as_str().expect("id").to_string();
    assert_eq!(app.confirm(id, "u4", &h4).await.0, StatusCode::OK);
    for (path, seats) in [("block", ["B4"]), ("unblock", ["B4"]), ("block", ["B3"])] {
        let (status, body) = app
            .post(
                &format!("/events/{id}/seats/{path}"),
                json!({"seatCodes": seats, "reason": "sound desk"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    chosen
}

/// Nothing of the event's history anywhere: no stream in Redis, no rows in Postgres.
async fn nothing_recorded(app: &TestApp, id: i64) {
    let mut conn = app.redis().await;
    let stream: i64 = redis::cmd("EXISTS")
        .arg(format!("{}:{{e:{id}}}:hist", app.prefix()))
        .query_async(&mut conn)
        .await
        .expect("exists");
    assert_eq!(stream, 0, "no history stream is written");
    for (table, sql) in [
        (
            "seat_changes",
            "SELECT count(*) FROM seat_changes WHERE event_id = $1",
        ),
        (
            "history_open_holds",
            "SELECT count(*) FROM history_open_holds WHERE event_id = $1",
        ),
    ] {
        let rows: i64 = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&app.pg)
            .await
            .expect("count");
        assert_eq!(rows, 0, "no rows in {table}");
    }
}

/// The history and webhook routes answer 404 HISTORY_DISABLED.
async fn routes_say_disabled(app: &TestApp, id: i64) {
    let some_id = uuid::Uuid::new_v4();
    let calls = [
        ("GET", format!("/events/{id}/changes"), None),
        ("GET", format!("/events/{id}/seats/A1/history"), None),
        ("GET", "/webhooks".to_string(), None),
        (
            "POST",
            "/webhooks".to_string(),
            Some(json!({"url": "https://example.com/hook"})),
        ),
        ("GET", format!("/webhooks/{some_id}"), None),
        (
            "POST",
            format!("/webhooks/{some_id}/replay"),
            Some(json!({})),
        ),
    ];
    for (method, path, body) in calls {
        let (status, answer) = app.call(method, &path, body).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("HISTORY_DISABLED")),
            "{method} {path}: {answer}"
        );
        assert!(
            answer["error"]
                .as_str()
                .is_some_and(|e| e.contains("history.enabled"))
        );
    }
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn with_the_history_off_nothing_is_recorded_and_everything_else_works(pg: PgPool) {
    for backend in [HoldStore::Redis, HoldStore::Postgres] {
        let app = TestApp::with(pg.clone(), &redis_url(), |s| {
            s.history.enabled = false;
            s.history.flush_ms = 200;
            s.holds.backend = backend;
        });
        let _workers = app.start_workers();
        let id = house(&app).await;
        let chosen = every_change(&app, id).await;
        // Several flush rounds pass.
        tokio::time::sleep(Duration::from_millis(500)).await;
        nothing_recorded(&app, id).await;
        routes_say_disabled(&app, id).await;
        // What the operations did is all there.
        let map = app.seat_statuses(id).await;
        for code in ["A1", "A2", "B4"] {
            assert_eq!(map[code], "AVAILABLE", "{backend:?} {code}");
        }
        for code in &chosen {
            assert_eq!(map[code], "HELD", "{backend:?} {code}");
        }
        assert_eq!(map["B3"], "BLOCKED", "{backend:?}");
        let ga = &app.event(id).await["tiers"][0];
        assert_eq!((&ga["confirmed"], &ga["held"]), (&json!(3), &json!(0)));
    }
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn with_the_history_on_a_best_available_hold_is_recorded_at_the_next_flush(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| s.history.flush_ms = 200);
    let _workers = app.start_workers();
    let id = house(&app).await;
    // A first hold, recorded: the flush has looked at the event and found it flushed.
    app.hold(id, "u1", &["A1"]).await;
    replayed_exactly(&app, id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = best(&app, id, "u2", json!({"count": 2})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let changes = replayed_exactly(&app, id).await;
    let held: Vec<&str> = changes
        .iter()
        .filter(|c| c["change"] == "HELD")
        .filter_map(|c| c["seatCode"].as_str())
        .collect();
    assert_eq!(held.len(), 3, "{changes:#?}");
}
