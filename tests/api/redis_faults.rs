//! Redis losing data, scripts or its process: each test runs its own `redis-server`.

use axum::http::StatusCode;
use sqlx::PgPool;

use crate::support::{RedisServer, TestApp};

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn after_flushall_booked_seats_stay_refused_free_seats_holdable_and_counts_right(pg: PgPool) {
    let server = RedisServer::start();
    let app = TestApp::with(pg, &server.url(), |_| {});
    let id = app.create_event(5).await;
    let sold = app.hold(id, "u1", &["S1", "S2"]).await;
    assert_eq!(app.confirm(id, "u1", &sold).await.0, StatusCode::OK);
    let lost = app.hold(id, "u2", &["S3"]).await;
    assert_eq!(app.counts(id).await, (2, 1, 2));

    let mut conn = app.redis().await;
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut conn)
        .await
        .expect("flushall");

    // The hold lived only in Redis: it is gone, and says so.
    assert_eq!(app.counts(id).await, (2, 0, 3));
    assert_eq!(app.confirm(id, "u2", &lost).await.0, StatusCode::GONE);
    // Booked seats are still refused (the cache is rebuilt from Postgres) ...
    let (status, body) = app.reserve(id, "u3", &["S2", "S4"]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["seats"], serde_json::json!(["S2"]));
    // ... free seats are holdable, and counts follow.
    let fresh = app.hold(id, "u3", &["S3", "S4"]).await;
    assert_eq!(app.counts(id).await, (2, 2, 1));
    assert_eq!(app.confirm(id, "u3", &fresh).await.0, StatusCode::OK);
    assert_eq!(app.counts(id).await, (4, 0, 1));
    assert_eq!(
        app.booked_in_postgres(id).await,
        vec!["S1", "S2", "S3", "S4"]
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn script_flush_is_harmless(pg: PgPool) {
    let server = RedisServer::start();
    let app = TestApp::with(pg, &server.url(), |_| {});
    let id = app.create_event(4).await;
    let first = app.hold(id, "u1", &["S1"]).await;
    let mut conn = app.redis().await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .expect("script flush");
    let second = app.hold(id, "u2", &["S2"]).await;
    assert_eq!(app.reserve(id, "u3", &["S1"]).await.0, StatusCode::CONFLICT);
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .expect("script flush");
    assert_eq!(app.confirm(id, "u1", &first).await.0, StatusCode::OK);
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .expect("script flush");
    assert_eq!(app.release(id, "u2", &second).await.0, StatusCode::OK);
    assert_eq!(app.counts(id).await, (1, 0, 3));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn with_redis_down_and_fallback_reject_holds_fail_fast_with_503_and_recover(pg: PgPool) {
    let mut server = RedisServer::start();
    let app = TestApp::with(pg, &server.url(), |s| {
        s.holds.fallback = seatlock::config::HoldFallback::Reject;
        s.breaker.open_seconds = 1;
    });
    let id = app.create_event(3).await;
    app.hold(id, "u1", &["S1"]).await;
    server.kill();

    let started = std::time::Instant::now();
    let (status, headers, bytes) = app
        .call_raw(
            "POST",
            &format!("/events/{id}/seats/reserve"),
            Some(r#"{"userId":"u2","seatCodes":["S2"]}"#.into()),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "must not hang: {:?}",
        started.elapsed()
    );
    assert!(headers.contains_key("retry-after"));
    let body: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        (body["redis"].as_str(), body["postgres"].as_str()),
        (Some("down"), Some("up"))
    );

    server.restart();
    // The pool reconnects by itself once the breaker probes again; the restarted Redis is empty
    // and the cache is rebuilt.
    let mut ok = false;
    for _ in 0..40 {
        if app.reserve(id, "u2", &["S2"]).await.0 == StatusCode::OK {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ok, "holds work again after Redis restarts");
    assert_eq!(app.get("/readyz").await.0, StatusCode::OK);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_rebuild_from_a_snapshot_older_than_a_cancel_is_refused(pg: PgPool) {
    use seatlock::domain::events::EventId;
    use seatlock::store::redis::Rebuild;
    let app = TestApp::new(pg.clone()).await;
    let id = app.create_event(3).await;
    let hold = app.hold(id, "u1", &["S1"]).await;
    assert_eq!(app.confirm(id, "u1", &hold).await.0, StatusCode::OK);
    // The cache goes missing (eviction, FLUSHALL) and a rebuild starts: generation, snapshot ...
    app.drop_cache(id).await;
    let event = EventId(id);
    let generation = app
        .state
        .seatlock
        .redis()
        .inventory_generation(event)
        .await
        .expect("generation");
    let inventory = app
        .state
        .seatlock
        .postgres()
        .fetch_inventory(event)
        .await
        .expect("snapshot")
        .expect("event");
    assert_eq!(inventory.booked, vec!["S1"]);
    // ... then the booking is cancelled before the rebuild writes its (now stale) snapshot.
    let (status, _) = app
        .post(
            &format!("/bookings/{hold}/cancel"),
            serde_json::json!({"userId": "u1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let outcome = app
        .state
        .seatlock
        .redis()
        .rebuild_inventory(event, &generation, &inventory)
        .await
        .expect("rebuild");
    assert_eq!(outcome, Rebuild::Stale);
    // The next hold rebuilds from a fresh snapshot: the cancelled seat is free.
    app.hold(id, "u2", &["S1"]).await;
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_rebuild_from_a_snapshot_older_than_a_booking_is_refused(pg: PgPool) {
    use seatlock::domain::events::EventId;
    use seatlock::store::redis::Rebuild;
    let app = TestApp::new(pg.clone()).await;
    let id = app.create_event(3).await;
    let hold = app.hold(id, "u1", &["S1"]).await;
    // The cache goes missing and a rebuild takes its snapshot before the confirm commits ...
    app.drop_cache(id).await;
    let event = EventId(id);
    let store = app.state.seatlock.redis();
    let generation = store.inventory_generation(event).await.expect("generation");
    let postgres = app.state.seatlock.postgres();
    let stale = postgres
        .fetch_inventory(event)
        .await
        .expect("snapshot")
        .expect("event");
    assert!(stale.booked.is_empty());
    // ... then the confirm commits and settles the hold while no cache exists ...
    assert_eq!(app.confirm(id, "u1", &hold).await.0, StatusCode::OK);
    // ... so writing the older snapshot is refused, and the next hold rebuilds a fresh one.
    let outcome = store
        .rebuild_inventory(event, &generation, &stale)
        .await
        .expect("rebuild");
    assert_eq!(outcome, Rebuild::Stale);
    let (status, body) = app.reserve(id, "u2", &["S1"]).await;
    assert_eq!(status, StatusCode::CONFLICT, "S1 is sold: {body}");
}

/// The instance probes both stores every 5 s (`seatlock_store_up`), so an alert sees Redis gone
/// on an instance that takes no request.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn the_store_probe_says_when_redis_stops_answering_and_brings_holds_back(pg: PgPool) {
    let mut server = RedisServer::start();
    let app = TestApp::with(pg, &server.url(), |s| {
        s.breaker.failure_threshold = 1;
        s.breaker.open_seconds = 1;
    });
    let _workers = app.start_workers();
    let up = |text: &str, store: &str| -> Option<f64> {
        let start = format!("seatlock_store_up{{store=\"{store}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&start))
            .and_then(|v| v.trim().parse().ok())
    };
    let scrape = || async {
        let (status, _, body) = app.call_raw("GET", "/metrics", None, &[]).await;
        assert_eq!(status, StatusCode::OK);
        String::from_utf8(body.to_vec()).expect("utf8")
    };
    let wait_for = |redis: f64| async move {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let text = scrape().await;
            if up(&text, "redis") == Some(redis) {
                assert_eq!(up(&text, "postgres"), Some(1.0), "{text}");
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis never {redis}: {:?}",
                up(&text, "redis")
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    wait_for(1.0).await;
    let id = app.create_event(2).await;
    server.kill();
    wait_for(0.0).await;
    // A hold opens the breaker (it goes to Postgres); once Redis is back, the probe closes it
    // and holds return to Redis without a hold having to probe.
    assert_eq!(app.reserve(id, "u1", &["S1"]).await.0, StatusCode::OK);
    assert_eq!(app.get("/readyz").await.1["breaker"], "open");
    server.restart();
    wait_for(1.0).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, body) = app.get("/readyz").await;
        if body["breaker"] == "closed" && body["holds"] == "redis" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
