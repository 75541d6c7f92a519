//! General admission under load and faults: concurrent holds never pass a tier's capacity, the
//! Postgres guard holds when Redis over-promises, FLUSHALL mid-sale, and holds in Postgres.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use futures::future::join_all;
use seatlock::domain::holds::HoldStore;
use serde_json::Value;
use sqlx::PgPool;

use crate::support::{RedisServer, TestApp, redis_url};
use crate::tiers::{ga_event, hold_units, reserve_units, sold_in_postgres, tier_counts};

/// `n` buyers at once, buyer i asking for 1 + i % 4 units of GA; (quantity, status, body) each.
async fn concurrent_ga_holds(
    app: &Arc<TestApp>,
    event: i64,
    n: usize,
) -> Vec<(i64, StatusCode, Value)> {
    let tasks = (0..n).map(|i| {
        let app = Arc::clone(app);
        tokio::spawn(async move {
            let quantity = 1 + (i % 4) as i64;
            let user = format!("buyer{i}");
            let (status, body) = reserve_units(&app, event, &user, &[], &[("GA", quantity)]).await;
            (quantity, status, body)
        })
    });
    join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect()
}

/// Confirms every hold at once; the units of the acknowledged confirms.
async fn confirm_all(
    app: &Arc<TestApp>,
    event: i64,
    holds: Vec<(String, String, i64)>,
) -> (i64, usize) {
    let tasks = holds.into_iter().map(|(user, hold, quantity)| {
        let app = Arc::clone(app);
        tokio::spawn(async move {
            let (status, body) = app.confirm(event, &user, &hold).await;
            assert!(
                status == StatusCode::OK || status == StatusCode::CONFLICT,
                "{status} {body}"
            );
            if status == StatusCode::CONFLICT {
                assert_eq!(body["code"], "SEATS_UNAVAILABLE", "{body}");
            }
            (status == StatusCode::OK).then_some(quantity)
        })
    });
    let acked: Vec<i64> = join_all(tasks)
        .await
        .into_iter()
        .filter_map(|r| r.expect("task"))
        .collect();
    (acked.iter().sum(), acked.len())
}

/// Waits (up to 2 s) until the Redis holds of tier `code` are `n` entries: the breaker closing
/// copies Postgres holds into Redis in the background.
pub async fn wait_for_tier_holds(app: &TestApp, event: i64, code: &str, n: i64) {
    let holds_key = format!("{}:{{e:{event}}}:tierholds:{code}", app.prefix());
    let mut conn = app.redis().await;
    for _ in 0..100 {
        let count: i64 = redis::cmd("ZCARD")
            .arg(&holds_key)
            .query_async(&mut conn)
            .await
            .expect("zcard");
        if count == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn held(
    results: &[(i64, StatusCode, Value)],
    user_of: impl Fn(usize) -> String,
) -> Vec<(String, String, i64)> {
    results
        .iter()
        .enumerate()
        .filter(|(_, (_, s, _))| *s == StatusCode::OK)
        .map(|(i, (q, _, b))| {
            (
                user_of(i),
                b["holdGroupId"].as_str().expect("id").to_string(),
                *q,
            )
        })
        .collect()
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn two_hundred_concurrent_holds_take_exactly_the_capacity_and_confirms_sell_it(pg: PgPool) {
    let app = Arc::new(TestApp::new(pg.clone()).await);
    let id = ga_event(&app, 37).await;
    let results = concurrent_ga_holds(&app, id, 200).await;
    let units: i64 = results
        .iter()
        .filter(|(_, s, _)| *s == StatusCode::OK)
        .map(|(q, _, _)| q)
        .sum();
    // Units only shrink during the sale, and every 1-unit request fits while one unit is left.
    assert_eq!(units, 37, "exactly the capacity is held");
    for (q, status, body) in &results {
        assert!(
            *status == StatusCode::OK || *status == StatusCode::CONFLICT,
            "{status} {body}"
        );
        if *status == StatusCode::CONFLICT {
            let short = &body["tiers"][0];
            assert_eq!(
                (short["code"].as_str(), short["requested"].as_i64()),
                (Some("GA"), Some(*q))
            );
            assert!(
                short["available"].as_i64().expect("available") < *q,
                "{body}"
            );
        }
    }
    assert_eq!(tier_counts(&app, id, "GA").await, (0, 37, 0));

    let holds = held(&results, |i| format!("buyer{i}"));
    let (sold, _) = confirm_all(&app, id, holds).await;
    assert_eq!(sold, 37);
    assert_eq!(sold_in_postgres(&pg, id, "GA").await, 37);
    assert_eq!(tier_counts(&app, id, "GA").await, (37, 0, 0));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn the_postgres_guard_refuses_an_oversell_when_redis_over_promised(pg: PgPool) {
    let app = Arc::new(TestApp::new(pg.clone()).await);
    let id = ga_event(&app, 20).await;
    let first = held(&concurrent_ga_holds(&app, id, 40).await, |i| {
        format!("buyer{i}")
    });
    // Half of the holds are confirmed now, the others stay open.
    let (now, later): (Vec<_>, Vec<_>) =
        first.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let strip = |v: Vec<(usize, (String, String, i64))>| v.into_iter().map(|(_, h)| h).collect();
    let (sold_first, _) = confirm_all(&app, id, strip(now)).await;
    assert!(sold_first > 0);
    // Redis forgets what was sold (as a replica that missed those writes would after a
    // failover): it now promises the sold units again.
    let mut conn = app.redis().await;
    let tier = format!("{}:{{e:{id}}}:tier:GA", app.prefix());
    let _: () = redis::cmd("HSET")
        .arg(&tier)
        .arg("sold")
        .arg(0)
        .query_async(&mut conn)
        .await
        .expect("hset");
    let again = held(&concurrent_ga_holds(&app, id, 40).await, |i| {
        format!("buyer{i}")
    });
    let promised: i64 = again.iter().map(|(_, _, q)| q).sum();
    assert_eq!(promised, sold_first, "Redis promised the sold units again");

    // The confirm storm: the open holds and the over-promised ones at once.
    let mut storm: Vec<(String, String, i64)> = strip(later);
    storm.extend(again);
    let tries = storm.len();
    let (sold_storm, acked) = confirm_all(&app, id, storm).await;
    let sold = sold_first + sold_storm;
    assert_eq!(
        sold_in_postgres(&pg, id, "GA").await,
        sold,
        "sold = acknowledged units"
    );
    assert!(sold <= 20, "never past capacity: {sold}");
    assert!(
        acked < tries,
        "the guard refused the over-promised confirms"
    );
    let booked: i64 = sqlx::query_scalar::<_, i64>(
        "SELECT COALESCE(sum(quantity), 0)::bigint FROM booking_tiers WHERE event_id = $1 AND active",
    )
    .bind(id)
    .fetch_one(&pg)
    .await
    .expect("sum");
    assert_eq!(booked, sold, "booking lines agree with the tier row");
    // The refusals made Redis rebuild its counts from Postgres: it promises no more than is left.
    let left = 20 - sold;
    let (status, body) = reserve_units(&app, id, "after", &[], &[("GA", left + 1)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["tiers"][0]["available"], left, "{body}");
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn flushall_mid_sale_rebuilds_the_tier_from_postgres(pg: PgPool) {
    let server = RedisServer::start();
    let app = TestApp::with(pg.clone(), &server.url(), |_| {});
    let id = ga_event(&app, 10).await;
    let sold = hold_units(&app, id, "u1", "GA", 4).await;
    assert_eq!(app.confirm(id, "u1", &sold).await.0, StatusCode::OK);
    let lost = hold_units(&app, id, "u2", "GA", 3).await;
    assert_eq!(tier_counts(&app, id, "GA").await, (4, 3, 3));

    let mut conn = app.redis().await;
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut conn)
        .await
        .expect("flushall");

    // The Redis hold is gone with Redis; what was sold is not.
    assert_eq!(tier_counts(&app, id, "GA").await, (4, 0, 6));
    assert_eq!(app.confirm(id, "u2", &lost).await.0, StatusCode::GONE);
    let (status, body) = reserve_units(&app, id, "u3", &[], &[("GA", 7)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["tiers"][0]["available"], 6,
        "the rebuilt cache knows the 4 sold"
    );
    let rest = hold_units(&app, id, "u3", "GA", 6).await;
    assert_eq!(app.confirm(id, "u3", &rest).await.0, StatusCode::OK);
    assert_eq!(sold_in_postgres(&pg, id, "GA").await, 10);
    assert_eq!(tier_counts(&app, id, "GA").await, (10, 0, 0));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn tier_holds_in_postgres_follow_the_same_rules(pg: PgPool) {
    let app = Arc::new(TestApp::with(pg.clone(), &redis_url(), |s| {
        s.holds.backend = HoldStore::Postgres
    }));
    let id = crate::tiers::create_tier_event(
        &app,
        serde_json::json!({"totalSeats": 2, "tiers": [{"code": "GA", "price": 5, "capacity": 10}]}),
    )
    .await;
    let results = concurrent_ga_holds(&app, id, 40).await;
    let units: i64 = results
        .iter()
        .filter(|(_, s, _)| *s == StatusCode::OK)
        .map(|(q, _, _)| q)
        .sum();
    assert_eq!(units, 10, "exactly the capacity is held in Postgres");
    assert_eq!(tier_counts(&app, id, "GA").await, (0, 10, 0));
    let (status, body) = reserve_units(&app, id, "late", &["S1"], &[("GA", 1)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["tiers"],
        serde_json::json!([{"code": "GA", "requested": 1, "available": 0}])
    );
    assert_eq!(
        app.seat_statuses(id).await["S1"],
        "AVAILABLE",
        "all or nothing"
    );
    let (status, body) = reserve_units(&app, id, "late", &[], &[("NOPE", 1)]).await;
    assert_eq!(
        (status, body["tiers"].clone()),
        (StatusCode::NOT_FOUND, serde_json::json!(["NOPE"]))
    );

    let holds = held(&results, |i| format!("buyer{i}"));
    let (user, first, q) = holds[0].clone();
    assert_eq!(app.release(id, &user, &first).await.0, StatusCode::OK);
    assert_eq!(tier_counts(&app, id, "GA").await, (0, 10 - q, q));
    let (sold, _) = confirm_all(&app, id, holds[1..].to_vec()).await;
    assert_eq!(sold, 10 - q);
    assert_eq!(sold_in_postgres(&pg, id, "GA").await, 10 - q);
    let (status, body) = reserve_units(&app, id, "late", &["S1"], &[("GA", q)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mixed = body["holdGroupId"].as_str().expect("id").to_string();
    let (status, body) = app.confirm(id, "late", &mixed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["totalPrice"], serde_json::json!(5.0 * q as f64));
    assert_eq!(tier_counts(&app, id, "GA").await, (10, 0, 0));
    let (status, _) = app
        .post(
            &format!("/bookings/{mixed}/cancel"),
            serde_json::json!({"userId": "late"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tier_counts(&app, id, "GA").await, (10 - q, 0, q));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn tier_holds_taken_in_postgres_during_an_outage_are_respected_after_it(pg: PgPool) {
    let mut server = RedisServer::start();
    let app = TestApp::with(pg.clone(), &server.url(), |s| {
        s.breaker.failure_threshold = 2;
        s.breaker.open_seconds = 1;
    });
    let id = ga_event(&app, 6).await;
    let before = hold_units(&app, id, "u1", "GA", 2).await;
    server.kill();
    // During the outage: held in Postgres (the Redis hold is invisible until Redis is back).
    let during = hold_units(&app, id, "u2", "GA", 3).await;
    assert_eq!(app.confirm(id, "u2", &during).await.0, StatusCode::OK);
    let open = hold_units(&app, id, "u3", "GA", 1).await;
    server.restart();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // Back on Redis: the first hold closes the breaker, which copies the live Postgres hold into
    // Redis; the Redis hold of 2 was lost with the restarted Redis.
    let probe = hold_units(&app, id, "u5", "GA", 1).await;
    wait_for_tier_holds(&app, id, "GA", 2).await;
    // Redis itself now counts the 3 sold, the probe's 1 and the copied 1.
    let (status, body) = reserve_units(&app, id, "u4", &[], &[("GA", 2)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["tiers"][0]["available"], 1, "{body}");
    assert_eq!(
        tier_counts(&app, id, "GA").await,
        (3, 2, 1),
        "the copy counts once"
    );
    assert_eq!(app.release(id, "u5", &probe).await.0, StatusCode::OK);
    assert_eq!(app.confirm(id, "u1", &before).await.0, StatusCode::GONE);
    assert_eq!(app.confirm(id, "u3", &open).await.0, StatusCode::OK);
    assert_eq!(sold_in_postgres(&pg, id, "GA").await, 4);
    assert_eq!(tier_counts(&app, id, "GA").await, (4, 0, 2));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn expired_tier_holds_are_trimmed_in_batches_and_never_counted(pg: PgPool) {
    const TTL: Duration = Duration::from_secs(4);
    let app = Arc::new(TestApp::with(pg, &redis_url(), |s| {
        s.holds.ttl_seconds = TTL.as_secs()
    }));
    let id = ga_event(&app, 1200).await;
    let started = Instant::now();
    let tasks = (0..1200).map(|i| {
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let user = format!("buyer{i}");
            reserve_units(&app, id, &user, &[], &[("GA", 1)]).await.0
        })
    });
    let taken = join_all(tasks)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().expect("task") == StatusCode::OK)
        .count() as i64;
    assert_eq!(taken, 1200, "the capacity holds every one");
    // Every hold must still be live at the end of the storm (else later holds trim earlier
    // ones and the counts below differ): a precondition of the test, not the code's contract.
    let storm = started.elapsed();
    assert!(storm < TTL, "the storm took {storm:?}, longer than the TTL");
    tokio::time::sleep(TTL + Duration::from_millis(300)).await;
    let holds_key = format!("{}:{{e:{id}}}:tierholds:GA", app.prefix());
    let mut conn = app.redis().await;
    let entries = |conn: &mut seatlock::store::redis::RedisConnection| {
        let key = holds_key.clone();
        let mut conn = conn.clone();
        async move {
            redis::cmd("ZCARD")
                .arg(key)
                .query_async::<i64>(&mut conn)
                .await
                .expect("zcard")
        }
    };
    assert!(
        entries(&mut conn).await >= 1100,
        "expired entries wait for a trim"
    );
    // The next hold trims one batch of 1000 (enough to answer exactly) ...
    hold_units(&app, id, "late", "GA", 10).await;
    assert_eq!(entries(&mut conn).await, 1200 - 1000 + 1);
    // ... and a read trims the rest; no expired unit is ever counted.
    assert_eq!(tier_counts(&app, id, "GA").await, (0, 10, 1190));
    assert_eq!(entries(&mut conn).await, 1);
}
