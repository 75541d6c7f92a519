//! Blocked seats: held back from sale by an administrator. Never held (named or chosen by
//! best-available, in Redis and in Postgres, after a cache rebuild), shown as BLOCKED with the
//! reason for admins and service keys only, refused while held or sold, recorded in the history,
//! and never both blocked and held under concurrency.

use std::sync::Arc;

use axum::http::StatusCode;
use futures::future::join_all;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::best::best;
use crate::history::replayed_exactly;
use crate::support::{TestApp, jwt, redis_url, token_mode};
use crate::tiers::create_tier_event;

async fn block(app: &TestApp, event: i64, seats: &[&str], reason: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/events/{event}/seats/block"),
        json!({"seatCodes": seats, "reason": reason}),
    )
    .await
}

async fn unblock(app: &TestApp, event: i64, seats: &[&str]) -> (StatusCode, Value) {
    app.post(
        &format!("/events/{event}/seats/unblock"),
        json!({"seatCodes": seats}),
    )
    .await
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_blocked_seat_is_never_held_until_it_is_unblocked(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| s.history.flush_ms = 200);
    let _workers = app.start_workers();
    let id = app.create_event(6).await;
    let (status, body) = block(&app, id, &["S2", "S3", "S2"], "wheelchair place").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"blocked": ["S2", "S3"]}));
    let (_, map) = app.get(&format!("/events/{id}/seats")).await;
    let s2 = &map["seats"][1];
    assert_eq!(
        (s2["status"].as_str(), s2["reason"].as_str()),
        (Some("BLOCKED"), Some("wheelchair place"))
    );
    assert!(
        map["seats"][0].get("reason").is_none(),
        "no reason on a seat that is not blocked"
    );
    let detail = app.event(id).await;
    assert_eq!(detail["blockedSeats"], 2);
    assert_eq!(detail["availableSeats"], 4);
    // Named in a hold: 409 listing it, nothing held.
    let (status, body) = app.reserve(id, "u1", &["S1", "S2"]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        (body["code"].as_str(), body["seats"].clone()),
        (Some("SEATS_UNAVAILABLE"), json!(["S2"]))
    );
    assert_eq!(app.seat_statuses(id).await["S1"], "AVAILABLE");
    // Blocking again is a no-op; blocking a held or a sold seat is refused, naming it.
    assert_eq!(block(&app, id, &["S2"], "again").await.0, StatusCode::OK);
    let hold = app.hold(id, "u1", &["S4"]).await;
    let (status, body) = block(&app, id, &["S1", "S4"], "x").await;
    assert_eq!(
        (status, body["seats"].clone()),
        (StatusCode::CONFLICT, json!(["S4"]))
    );
    assert_eq!(
        app.seat_statuses(id).await["S1"],
        "AVAILABLE",
        "all or nothing"
    );
    assert_eq!(app.confirm(id, "u1", &hold).await.0, StatusCode::OK);
    let (status, body) = block(&app, id, &["S4"], "x").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("SEATS_UNAVAILABLE"))
    );
    let (status, body) = block(&app, id, &["S1", "NOPE"], "x").await;
    assert_eq!(
        (status, body["code"].as_str(), body["seats"].clone()),
        (
            StatusCode::NOT_FOUND,
            Some("SEATS_NOT_FOUND"),
            json!(["NOPE"])
        )
    );
    // Unblocking puts it on sale at once; unblocking a free seat is a no-op.
    let (status, body) = unblock(&app, id, &["S2", "S5"]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"unblocked": ["S2", "S5"]}));
    app.hold(id, "u2", &["S2"]).await;
    // The history tells it, and replays to the seat map (BLOCKED included).
    let changes = replayed_exactly(&app, id).await;
    let s2: Vec<&str> = changes
        .iter()
        .filter(|c| c["seatCode"] == "S2")
        .map(|c| c["change"].as_str().expect("change"))
        .collect();
    assert_eq!(s2, ["BLOCKED", "UNBLOCKED", "HELD"]);
    let blocked = changes
        .iter()
        .find(|c| c["change"] == "BLOCKED")
        .expect("blocked");
    assert_eq!(
        (blocked["status"].as_str(), blocked["holdGroupId"].clone()),
        (Some("BLOCKED"), Value::Null)
    );
    assert_eq!(app.seat_statuses(id).await["S3"], "BLOCKED");
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn blocks_are_checked_and_for_admins_only(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), token_mode);
    let admin = jwt("boss", json!({"role": "admin"}));
    let id = app.create_event_as(&admin, 3).await;
    for bad in [
        json!({"seatCodes": ["S1"]}),
        json!({"seatCodes": ["S1"], "reason": ""}),
        json!({"seatCodes": ["S1"], "reason": "x".repeat(201)}),
        json!({"seatCodes": [], "reason": "x"}),
        json!({"reason": "x"}),
        json!({"seatCodes": (0..1001).map(|i| format!("S{i}")).collect::<Vec<_>>(), "reason": "x"}),
    ] {
        let (status, _, body) = app
            .call_as(
                &admin,
                "POST",
                &format!("/events/{id}/seats/block"),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("VALIDATION_FAILED")),
            "{bad}"
        );
    }
    let key = app
        .api_key("checkout", seatlock::domain::access::KeyRole::Service)
        .await;
    let buyer = jwt("u1", json!({}));
    for token in [&key, &buyer] {
        for path in ["block", "unblock"] {
            let (status, _, _) = app
                .call_as(
                    token,
                    "POST",
                    &format!("/events/{id}/seats/{path}"),
                    Some(json!({"seatCodes": ["S1"], "reason": "x"})),
                )
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        }
    }
    // A repeat counts once against the 1,000 codes.
    let repeated = vec!["S1"; 1001];
    let (status, _, body) = app
        .call_as(
            &admin,
            "POST",
            &format!("/events/{id}/seats/block"),
            Some(json!({"seatCodes": repeated, "reason": "production"})),
        )
        .await;
    assert_eq!(
        (status, body["blocked"].clone()),
        (StatusCode::OK, json!(["S1"]))
    );
    let (status, _, _) = app
        .call_as(
            &admin,
            "POST",
            "/events/99999/seats/block",
            Some(json!({"seatCodes": ["S1"], "reason": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The reason: to admins and service keys, not buyers.
    for (token, sees) in [(&admin, true), (&key, true), (&buyer, false)] {
        let (_, _, map) = app
            .call_as(token, "GET", &format!("/events/{id}/seats"), None)
            .await;
        assert_eq!(map["seats"][0]["status"], "BLOCKED");
        assert_eq!(map["seats"][0].get("reason").is_some(), sees, "{map}");
    }
    let (status, _, body) = app
        .call_as(
            &buyer,
            "POST",
            &format!("/events/{id}/seats/reserve"),
            Some(json!({"seatCodes": ["S1"]})),
        )
        .await;
    assert_eq!(
        (status, body["seats"].clone()),
        (StatusCode::CONFLICT, json!(["S1"]))
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn best_available_passes_blocked_seats_by_and_a_rebuild_keeps_them(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = create_tier_event(
        &app,
        json!({"rows": [{"name": "A", "seats": 4}, {"name": "B", "seats": 2}]}),
    )
    .await;
    let (status, body) = block(&app, id, &["A2", "A3"], "camera").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = best(&app, id, "u1", json!({"count": 2})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let chosen: Vec<&str> = body["seatCodes"]
        .as_array()
        .expect("seats")
        .iter()
        .map(|s| s.as_str().expect("code"))
        .collect();
    assert!(
        chosen.iter().all(|s| s.starts_with('B')),
        "row A has no two together left: {chosen:?}"
    );
    // After the cache is dropped, the rebuild keeps the blocks.
    app.drop_cache(id).await;
    assert_eq!(app.reserve(id, "u2", &["A2"]).await.0, StatusCode::CONFLICT);
    let (status, body) = best(&app, id, "u3", json!({"count": 2})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "NO_ADJACENT_SEATS");
    assert_eq!(unblock(&app, id, &["A3"]).await.0, StatusCode::OK);
    let (status, body) = best(&app, id, "u3", json!({"count": 2})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["seatCodes"], json!(["A3", "A4"]));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn the_postgres_only_mode_refuses_blocked_seats_too(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        s.holds.backend = seatlock::domain::holds::HoldStore::Postgres;
    });
    let id = app.create_event(3).await;
    assert_eq!(block(&app, id, &["S1"], "x").await.0, StatusCode::OK);
    let (status, body) = app.reserve(id, "u1", &["S1", "S2"]).await;
    assert_eq!(
        (status, body["seats"].clone()),
        (StatusCode::CONFLICT, json!(["S1"]))
    );
    app.hold(id, "u1", &["S2"]).await;
    assert_eq!(block(&app, id, &["S2"], "x").await.0, StatusCode::CONFLICT);
    assert_eq!(unblock(&app, id, &["S1"]).await.0, StatusCode::OK);
    app.hold(id, "u2", &["S1"]).await;
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_block_racing_holds_never_leaves_a_seat_both_blocked_and_held(pg: PgPool) {
    let app = Arc::new(TestApp::new(pg).await);
    let id = app.create_event(40).await;
    for round in 0..8 {
        let seats: Vec<String> = (1..=5).map(|i| format!("S{}", round * 5 + i)).collect();
        let holds = (0..10).map(|n| {
            let (app, seat) = (app.clone(), seats[n % 5].clone());
            tokio::spawn(async move { app.reserve(id, &format!("u{n}"), &[&seat]).await.0 })
        });
        let blocking = {
            let (app, seats) = (app.clone(), seats.clone());
            tokio::spawn(async move {
                let refs: Vec<&str> = seats.iter().map(String::as_str).collect();
                block(&app, id, &refs, "race").await.0
            })
        };
        let held: Vec<StatusCode> = join_all(holds)
            .await
            .into_iter()
            .map(|r| r.expect("join"))
            .collect();
        let blocked = blocking.await.expect("join");
        let map = app.seat_statuses(id).await;
        let statuses: Vec<&str> = seats.iter().map(|s| map[s].as_str()).collect();
        if blocked == StatusCode::OK {
            assert!(
                statuses.iter().all(|s| *s == "BLOCKED"),
                "round {round}: {statuses:?}"
            );
            assert!(
                held.iter().all(|s| *s == StatusCode::CONFLICT),
                "round {round}: a hold and the block both won: {held:?}"
            );
        } else {
            assert_eq!(blocked, StatusCode::CONFLICT);
            assert!(
                statuses.iter().all(|s| *s != "BLOCKED"),
                "round {round}: {statuses:?}"
            );
            assert!(held.contains(&StatusCode::OK));
        }
    }
}
