//! Redis outages: the Postgres fallback behind the circuit breaker, the Postgres-only mode, and
//! the confirm guard across holds taken in either store.

use std::time::Duration;

use axum::http::StatusCode;
use seatlock::domain::holds::HoldStore;
use sqlx::PgPool;

use crate::support::{RedisServer, TestApp, redis_url};

async fn pg_holds(pg: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM holds WHERE held_until > now()")
        .fetch_one(pg)
        .await
        .expect("count")
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn with_redis_killed_holds_and_confirms_go_through_postgres_and_return_to_redis(pg: PgPool) {
    let mut server = RedisServer::start();
    let app = TestApp::with(pg.clone(), &server.url(), |s| {
        s.breaker.failure_threshold = 2;
        s.breaker.open_seconds = 1;
    });
    let id = app.create_event(6).await;
    app.hold(id, "u1", &["S1"]).await;
    assert_eq!(app.redis_hold_count().await, 1);
    server.kill();

    // Every hold during the outage succeeds, in Postgres, from the very first failing call.
    let during = app.hold(id, "u2", &["S2"]).await;
    let other = app.hold(id, "u3", &["S3", "S4"]).await;
    assert_eq!(pg_holds(&pg).await, 2);
    let (status, ready) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "degraded but ready: {ready}");
    assert_eq!(
        (
            ready["status"].as_str(),
            ready["holds"].as_str(),
            ready["redis"].as_str()
        ),
        (Some("degraded"), Some("postgres"), Some("down"))
    );
    let (status, body) = app.reserve(id, "u9", &["S3"]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["seats"], serde_json::json!(["S3"]));
    let (status, body) = app.confirm(id, "u2", &during).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        app.confirm(id, "u2", &during).await.0,
        StatusCode::OK,
        "repeat confirm"
    );
    assert_eq!(app.booked_in_postgres(id).await, vec!["S2"]);
    assert_eq!(app.reserve(id, "u9", &["S2"]).await.0, StatusCode::CONFLICT);
    assert_eq!(app.release(id, "u3", &other).await.0, StatusCode::OK);
    let kept = app.hold(id, "u6", &["S6"]).await;
    // Reads keep working from Postgres.
    assert_eq!(app.counts(id).await, (1, 1, 4));

    server.restart();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let back = app.hold(id, "u4", &["S5"]).await;
    // Recovery copies the live Postgres hold into Redis: Redis now refuses its seat itself.
    for _ in 0..50 {
        if app.redis_hold_count().await == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.redis_hold_count().await,
        2,
        "the new Redis hold and the copy of the Postgres hold"
    );
    assert_eq!(app.reserve(id, "u9", &["S6"]).await.0, StatusCode::CONFLICT);
    assert_eq!(
        app.counts(id).await,
        (1, 2, 3),
        "a copied hold is counted once"
    );
    assert_eq!(app.confirm(id, "u6", &kept).await.0, StatusCode::OK);
    assert_eq!(app.confirm(id, "u4", &back).await.0, StatusCode::OK);
    // The booking made during the outage is known to the rebuilt cache.
    assert_eq!(app.reserve(id, "u9", &["S2"]).await.0, StatusCode::CONFLICT);
    assert_eq!(app.booked_in_postgres(id).await, vec!["S2", "S5", "S6"]);
    assert_eq!(
        app.redis_hold_count().await,
        0,
        "confirming the Postgres hold dropped its copy"
    );
    let metrics = app.call_raw("GET", "/metrics", None, &[]).await.2;
    let text = String::from_utf8(metrics).expect("utf8");
    assert!(
        text.contains("seatlock_hold_backend_active{backend=\"redis\"} 1"),
        "backend gauge back on redis"
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_seat_held_in_postgres_cannot_be_confirmed_by_a_redis_hold_and_vice_versa(pg: PgPool) {
    let pg_mode = TestApp::with(pg.clone(), &redis_url(), |s| {
        s.holds.backend = HoldStore::Postgres
    });
    let redis_mode = TestApp::new(pg.clone()).await;
    let id = redis_mode.create_event(4).await;
    // Postgres hold first; a Redis hold on the same seat (Redis cannot see it) is refused at confirm.
    let in_pg = pg_mode.hold(id, "alice", &["S1"]).await;
    let in_redis = redis_mode.hold(id, "bob", &["S1", "S2"]).await;
    let (status, body) = redis_mode.confirm(id, "bob", &in_redis).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["seats"], serde_json::json!(["S1"]));
    assert_eq!(pg_mode.confirm(id, "alice", &in_pg).await.0, StatusCode::OK);
    // Redis hold confirmed first; a Postgres hold on the sold seat is refused outright.
    let r2 = redis_mode.hold(id, "carol", &["S3"]).await;
    assert_eq!(redis_mode.confirm(id, "carol", &r2).await.0, StatusCode::OK);
    assert_eq!(
        pg_mode.reserve(id, "dave", &["S3"]).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(redis_mode.booked_in_postgres(id).await, vec!["S1", "S3"]);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn the_postgres_only_mode_keeps_the_same_contract(pg: PgPool) {
    let app = TestApp::with(pg.clone(), &redis_url(), |s| {
        s.holds.backend = HoldStore::Postgres;
        // Long enough for the contract checks below on a loaded machine.
        s.holds.ttl_seconds = 3;
    });
    let id = app.create_event(5).await;
    let (status, body) = app.reserve(id, "u1", &["S1", "S2"]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expiresIn"], 3);
    let hold = body["holdGroupId"].as_str().expect("id").to_string();
    assert_eq!(app.redis_hold_count().await, 0, "nothing in Redis");
    let (status, body) = app.reserve(id, "u2", &["S3", "S2"]).await;
    assert_eq!(
        (status, &body["seats"]),
        (StatusCode::CONFLICT, &serde_json::json!(["S2"]))
    );
    assert_eq!(
        app.reserve(id, "u2", &["S9"]).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.reserve(999, "u2", &["S1"]).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.seat_statuses(id).await["S1"], "HELD");
    assert_eq!(app.counts(id).await, (0, 2, 3));
    assert_eq!(app.confirm(id, "u2", &hold).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.release(id, "u2", &hold).await.0, StatusCode::FORBIDDEN);
    let (status, body) = app.confirm(id, "u1", &hold).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["seatCodes"], serde_json::json!(["S1", "S2"]));
    assert_eq!(
        app.confirm(id, "u1", &hold).await.1,
        body,
        "repeat confirm returns the same booking"
    );
    assert_eq!(app.release(id, "u1", &hold).await.0, StatusCode::CONFLICT);
    // Expiry by the Postgres clock: ignored at once, swept later.
    let late = app.hold(id, "u3", &["S3"]).await;
    let freed = app.hold(id, "u4", &["S4"]).await;
    assert_eq!(app.release(id, "u4", &freed).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(app.counts(id).await, (2, 0, 3));
    assert_eq!(app.confirm(id, "u3", &late).await.0, StatusCode::GONE);
    assert_eq!(app.release(id, "u3", &late).await.0, StatusCode::GONE);
    app.hold(id, "u5", &["S3"]).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let swept = app
        .state
        .seatlock
        .postgres()
        .sweep_expired_holds()
        .await
        .expect("sweep");
    assert!(swept >= 1);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM holds")
        .fetch_one(&pg)
        .await
        .expect("count");
    assert_eq!(left, 0);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn fifty_concurrent_postgres_holds_on_one_seat_give_exactly_one_winner(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| s.holds.backend = HoldStore::Postgres);
    let id = app.create_event(4).await;
    let results = futures::future::join_all((0..50).map(|i| {
        let app = &app;
        async move { app.reserve(id, &format!("u{i}"), &["S2", "S3"]).await.0 }
    }))
    .await;
    let ok = results.iter().filter(|s| **s == StatusCode::OK).count();
    let conflict = results
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((ok, conflict), (1, 49), "{results:?}");
    assert_eq!(app.counts(id).await, (0, 2, 2));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn readyz_names_the_redis_mode_and_the_state_of_a_cluster(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["redis"], "up", "{body}");
    if app.state.settings.redis.mode == seatlock::config::RedisMode::Cluster {
        // The cluster pass: every slot served.
        assert_eq!(body["redisMode"], "cluster", "{body}");
        assert_eq!(body["cluster"]["state"], "ok", "{body}");
        assert_eq!(body["cluster"]["slotsOk"], 16384, "{body}");
        assert_eq!(body["cluster"]["slotsFail"], 0, "{body}");
        assert_eq!(body["cluster"]["size"], 3, "{body}");
    } else {
        assert_eq!(body["redisMode"], "standalone", "{body}");
        assert!(body.get("cluster").is_none(), "{body}");
    }
}

/// An instance cut off from Redis holds in Postgres a seat that a live Redis hold already has
/// (Redis could not tell it). The Redis hold came first: the Postgres hold may not confirm that
/// seat while it lives, and its own confirm goes through.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_postgres_hold_from_an_outage_cannot_confirm_a_seat_a_live_redis_hold_has(pg: PgPool) {
    let app = TestApp::with(pg.clone(), &redis_url(), |s| s.holds.ttl_seconds = 60);
    let cut_off = TestApp::with(pg, "redis://127.0.0.1:1", |s| {
        s.breaker.failure_threshold = 1;
        s.holds.ttl_seconds = 60;
    });
    let id = app.create_event(4).await;
    let alice = app.hold(id, "alice", &["S1"]).await;
    let (status, body) = cut_off.reserve(id, "bob", &["S1", "S2"]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the fallback holds in Postgres: {body}"
    );
    let bob = body["holdGroupId"].as_str().expect("id").to_string();
    let (status, body) = app.confirm(id, "bob", &bob).await;
    assert_eq!(
        (status, body["code"].clone(), body["seats"].clone()),
        (
            StatusCode::CONFLICT,
            serde_json::json!("SEATS_UNAVAILABLE"),
            serde_json::json!(["S1"])
        ),
        "{body}"
    );
    let (status, body) = app.confirm(id, "alice", &alice).await;
    assert_eq!(status, StatusCode::OK, "the first hold wins: {body}");
    assert_eq!(app.booked_in_postgres(id).await, vec!["S1"]);
    // A Postgres hold whose seats no Redis hold has confirms as before.
    let (status, body) = cut_off.reserve(id, "carol", &["S3"]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let carol = body["holdGroupId"].as_str().expect("id").to_string();
    let (status, body) = app.confirm(id, "carol", &carol).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The other way round: the Postgres hold first, then a Redis hold of the same seat (Redis
    // could not tell). The first wins both ways.
    let (status, body) = cut_off.reserve(id, "erin", &["S4"]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let erin = body["holdGroupId"].as_str().expect("id").to_string();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let frank = app.hold(id, "frank", &["S4"]).await;
    let (status, body) = app.confirm(id, "frank", &frank).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = app.confirm(id, "erin", &erin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.booked_in_postgres(id).await, vec!["S1", "S3", "S4"]);
}
