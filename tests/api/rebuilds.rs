//! Cold caches under a crowd: when an event's Redis cache is gone (FLUSHALL, a Redis restart),
//! the requests that find it missing share one rebuild, inside an instance (single flight) and
//! across instances (a short Redis lock): Postgres reads the event's inventory once.

use std::sync::Arc;

use axum::http::StatusCode;
use sqlx::PgPool;

use crate::support::{RedisServer, TestApp};

/// A counter or histogram count of this process's metrics (shared by every app in it).
async fn metric(app: &TestApp, line_start: &str) -> f64 {
    let (status, _, body) = app.call_raw("GET", "/metrics", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    String::from_utf8_lossy(&body)
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

const INVENTORY_READS: &str =
    "seatlock_postgres_query_duration_seconds_count{op=\"fetch_inventory\"}";

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_cold_cache_is_read_from_postgres_once_for_a_crowd_on_two_instances(pg: PgPool) {
    let server = RedisServer::start();
    let prefix = format!("rebuild:{}", uuid::Uuid::new_v4().simple());
    let instances: Vec<Arc<TestApp>> = (0..2)
        .map(|_| {
            let prefix = prefix.clone();
            Arc::new(TestApp::with(pg.clone(), &server.url(), move |s| {
                s.redis.key_prefix = prefix;
            }))
        })
        .collect();
    let id = instances[0].create_event(20_000).await;
    // One sale, so the rebuilt cache has something to remember.
    let sold = instances[0].hold(id, "buyer", &["S1"]).await;
    assert_eq!(
        instances[0].confirm(id, "buyer", &sold).await.0,
        StatusCode::OK
    );
    for round in 0..3 {
        let mut conn = instances[0].redis().await;
        let _: () = redis::cmd("FLUSHALL")
            .query_async(&mut conn)
            .await
            .expect("flushall");
        let reads = metric(&instances[0], INVENTORY_READS).await;
        let rebuilds = metric(&instances[0], "seatlock_cache_rebuilds_total ").await;
        let crowd: Vec<_> = (0..64usize)
            .map(|i| {
                let app = instances[i % 2].clone();
                tokio::spawn(async move {
                    let seat = format!("S{}", 2 + round * 64 + i);
                    app.reserve(id, &format!("u{round}-{i}"), &[seat.as_str()])
                        .await
                })
            })
            .collect();
        for task in crowd {
            let (status, body) = task.await.expect("join");
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        assert_eq!(
            metric(&instances[0], INVENTORY_READS).await - reads,
            1.0,
            "round {round}: the inventory is read from Postgres once for 64 requests on two instances"
        );
        assert_eq!(
            metric(&instances[0], "seatlock_cache_rebuilds_total ").await - rebuilds,
            1.0,
            "round {round}: one rebuild"
        );
        // The sale survived the rebuild.
        let (status, body) = instances[1].reserve(id, "late", &["S1"]).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
    }
}

/// A numbered event (`totalSeats`) is rebuilt without reading its seat codes: the cache holds
/// exactly S1..Sn. One created before `seats_numbered` existed (the column false) is read as
/// before, with the same result.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_numbered_event_is_rebuilt_with_exactly_its_seats_read_or_not(pg: PgPool) {
    let app = TestApp::new(pg.clone()).await;
    for made_here in [true, false] {
        let id = app.create_event(5).await;
        let numbered: bool =
            sqlx::query_scalar("SELECT seats_numbered FROM events WHERE event_id = $1")
                .bind(id)
                .fetch_one(&pg)
                .await
                .expect("event");
        assert!(numbered, "created with totalSeats");
        if !made_here {
            sqlx::query("UPDATE events SET seats_numbered = false WHERE event_id = $1")
                .bind(id)
                .execute(&pg)
                .await
                .expect("as before the column");
        }
        app.drop_cache(id).await;
        let (status, body) = app.reserve(id, "u1", &["S6"]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["seats"], serde_json::json!(["S6"]));
        app.hold(id, "u1", &["S1", "S5"]).await;
        let mut conn = app.redis().await;
        let mut cached: Vec<String> = redis::cmd("SMEMBERS")
            .arg(format!("{}:{{e:{id}}}:seats", app.prefix()))
            .query_async(&mut conn)
            .await
            .expect("seats");
        cached.sort();
        assert_eq!(
            cached,
            ["", "S1", "S2", "S3", "S4", "S5"],
            "made here: {made_here}"
        );
    }
}
