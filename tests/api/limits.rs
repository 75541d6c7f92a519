//! Per-buyer caps and rate limits: one buyer holds at most its cap of seats whatever it sends,
//! confirmed seats count, a cancel gives the quota back; a burst is refused with 429 and the
//! rate-limit headers, and two instances share one limit.

use std::sync::Arc;

use axum::http::StatusCode;
use seatlock::domain::access::KeyRole;
use serde_json::json;
use sqlx::PgPool;

use crate::support::{RedisServer, TestApp, jwt, redis_url, token_mode};

/// Fires `n` one-seat holds S1..Sn for `token` at once; returns how many were taken and the
/// bodies of the refusals.
async fn hold_all_at_once(
    app: &Arc<TestApp>,
    token: &str,
    event: i64,
    n: u32,
) -> (usize, Vec<serde_json::Value>) {
    let calls = (1..=n).map(|i| {
        let (app, token) = (app.clone(), token.to_string());
        tokio::spawn(async move {
            app.call_as(
                &token,
                "POST",
                &format!("/events/{event}/seats/reserve"),
                Some(json!({"seatCodes": [format!("S{i}")]})),
            )
            .await
        })
    });
    let mut held = 0;
    let mut refused = Vec::new();
    for call in futures::future::join_all(calls).await {
        let (status, _, body) = call.expect("task");
        match status {
            StatusCode::OK => held += 1,
            StatusCode::CONFLICT => refused.push(body),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    (held, refused)
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn thirty_concurrent_holds_by_one_buyer_take_exactly_the_cap(pg: PgPool) {
    // Live holds capped at 3 (the token-mode default); seats at 10 (live holds uncapped).
    for (live_holds, want) in [(None, 3), (Some(0), 10)] {
        let app = Arc::new(TestApp::with(pg.clone(), &redis_url(), |s| {
            token_mode(s);
            s.limits.max_live_holds_per_user = live_holds;
            s.limits.rate.user_per_second = Some(0);
        }));
        let admin = app.api_key(&format!("ops-{want}"), KeyRole::Admin).await;
        let event = app.create_event_as(&admin, 2000).await;
        let buyer = jwt("hoarder", json!({}));
        let (held, refused) = hold_all_at_once(&app, &buyer, event, 30).await;
        assert_eq!(held, want);
        assert_eq!(refused.len(), 30 - want);
        assert!(
            refused.iter().all(|b| b["code"] == "USER_LIMIT_REACHED"),
            "{refused:?}"
        );
        assert!(
            refused
                .iter()
                .all(|b| b["limit"] == json!(want) && b["current"] == json!(want))
        );
        let (_, held_now, _) = app.counts_as(&admin, event).await;
        assert_eq!(held_now, want as i64, "the seat map agrees");
    }
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn confirmed_seats_count_against_the_cap_and_a_cancel_gives_them_back(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        token_mode(s);
        s.limits.max_seats_per_user = Some(4);
        s.limits.rate.user_per_second = Some(0);
    });
    let admin = app.api_key("ops", KeyRole::Admin).await;
    let event = app.create_event_as(&admin, 20).await;
    let buyer = jwt("fan", json!({}));
    let reserve = |seats: &[&str]| json!({"seatCodes": seats});
    let path = format!("/events/{event}/seats/reserve");
    let (status, _, held) = app
        .call_as(&buyer, "POST", &path, Some(reserve(&["S1", "S2", "S3"])))
        .await;
    assert_eq!(status, StatusCode::OK);
    let hold = held["holdGroupId"].as_str().expect("id").to_string();
    let (status, _, _) = app
        .call_as(
            &buyer,
            "POST",
            &format!("/events/{event}/seats/confirm"),
            Some(json!({"holdGroupId": hold})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // 3 confirmed + 2 asked > 4.
    let (status, _, body) = app
        .call_as(&buyer, "POST", &path, Some(reserve(&["S4", "S5"])))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        (
            body["code"].as_str(),
            body["limit"].as_u64(),
            body["current"].as_u64()
        ),
        (Some("USER_LIMIT_REACHED"), Some(4), Some(3))
    );
    // Nothing was held by the refusal.
    assert_eq!(app.counts_as(&admin, event).await, (3, 0, 17));
    let (status, _, _) = app
        .call_as(&buyer, "POST", &path, Some(reserve(&["S4"])))
        .await;
    assert_eq!(status, StatusCode::OK, "exactly the cap fits");
    // A cancel gives the quota back at once.
    let (status, _, _) = app
        .call_as(
            &buyer,
            "POST",
            &format!("/bookings/{hold}/cancel"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = app
        .call_as(&buyer, "POST", &path, Some(reserve(&["S5", "S6", "S7"])))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Another buyer is not affected by this one's quota.
    let other = jwt("other-fan", json!({}));
    assert_eq!(
        app.call_as(
            &other,
            "POST",
            &path,
            Some(reserve(&["S8", "S9", "S10", "S11"]))
        )
        .await
        .0,
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn the_caps_hold_in_postgres_holds_too(pg: PgPool) {
    let app = Arc::new(TestApp::with(pg, &redis_url(), |s| {
        token_mode(s);
        s.holds.backend = seatlock::domain::holds::HoldStore::Postgres;
        s.limits.max_live_holds_per_user = Some(0);
        s.limits.rate.user_per_second = Some(0);
    }));
    let admin = app.api_key("ops", KeyRole::Admin).await;
    let event = app.create_event_as(&admin, 100).await;
    let buyer = jwt("pg-hoarder", json!({}));
    let (held, refused) = hold_all_at_once(&app, &buyer, event, 30).await;
    assert_eq!(held, 10);
    assert!(refused.iter().all(|b| b["code"] == "USER_LIMIT_REACHED"));
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM held_seats WHERE event_id = $1")
        .bind(event)
        .fetch_one(&app.pg)
        .await
        .expect("count");
    assert_eq!(live, 10);
}

/// A capped buyer asking for a taken seat is told the seat is taken, in either store: the caps
/// count only for a hold that could otherwise be taken.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_taken_seat_is_refused_as_taken_before_the_cap_in_both_stores(pg: PgPool) {
    for backend in [
        seatlock::domain::holds::HoldStore::Redis,
        seatlock::domain::holds::HoldStore::Postgres,
    ] {
        let app = TestApp::with(pg.clone(), &redis_url(), |s| {
            token_mode(s);
            s.holds.backend = backend;
            s.limits.max_seats_per_user = Some(1);
        });
        let admin = app
            .api_key(&format!("ops-{backend:?}"), KeyRole::Admin)
            .await;
        let event = app.create_event_as(&admin, 10).await;
        let (first, other) = (jwt("capped", json!({})), jwt("other", json!({})));
        let reserve = format!("/events/{event}/seats/reserve");
        for (token, seat) in [(&first, "S1"), (&other, "S2")] {
            let (status, _, body) = app
                .call_as(token, "POST", &reserve, Some(json!({"seatCodes": [seat]})))
                .await;
            assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        }
        let (status, _, body) = app
            .call_as(&first, "POST", &reserve, Some(json!({"seatCodes": ["S2"]})))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend:?}: {body}");
        assert_eq!(body["code"], "SEATS_UNAVAILABLE", "{backend:?}: {body}");
        let (status, _, body) = app
            .call_as(&first, "POST", &reserve, Some(json!({"seatCodes": ["S3"]})))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend:?}: {body}");
        assert_eq!(body["code"], "USER_LIMIT_REACHED", "{backend:?}: {body}");
    }
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_burst_is_refused_with_429_and_the_rate_limit_headers_and_instances_share_it(pg: PgPool) {
    let prefix = format!("test:{}", uuid::Uuid::new_v4().simple());
    let make = |pg: PgPool| {
        let prefix = prefix.clone();
        TestApp::with(pg, &redis_url(), move |s| {
            token_mode(s);
            s.redis.key_prefix = prefix;
            s.limits.rate.user_per_second = Some(1);
            s.limits.rate.user_burst = Some(5);
        })
    };
    let (a, b) = (make(pg.clone()), make(pg));
    let buyer = jwt("burster", json!({}));
    for i in 0..3 {
        let (status, headers, _) = a.call_as(&buyer, "GET", "/events", None).await;
        assert_eq!(status, StatusCode::OK, "request {i}");
        assert_eq!(headers["ratelimit-policy"], "\"user\";q=5;w=5");
        assert_eq!(
            headers["ratelimit"]
                .to_str()
                .expect("ascii")
                .split(';')
                .nth(1),
            Some(format!("r={}", 4 - i).as_str())
        );
    }
    // The other instance sees the same bucket.
    for _ in 0..2 {
        assert_eq!(
            b.call_as(&buyer, "GET", "/events", None).await.0,
            StatusCode::OK
        );
    }
    let (status, headers, body) = b.call_as(&buyer, "GET", "/events", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "RATE_LIMITED");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["ratelimit-policy"], "\"user\";q=5;w=5");
    assert!(
        headers["ratelimit"]
            .to_str()
            .expect("ascii")
            .starts_with("\"user\";r=0;t=")
    );
    // Another buyer has a bucket of its own; health is never limited.
    assert_eq!(
        a.call_as(&jwt("calm", json!({})), "GET", "/events", None)
            .await
            .0,
        StatusCode::OK
    );
    for _ in 0..10 {
        assert_eq!(a.get("/healthz").await.0, StatusCode::OK);
    }
    // A second later one more request fits.
    tokio::time::sleep(std::time::Duration::from_millis(1050)).await;
    assert_eq!(
        a.call_as(&buyer, "GET", "/events", None).await.0,
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn while_redis_is_down_each_instance_limits_on_its_own(pg: PgPool) {
    let mut server = RedisServer::start();
    let app = TestApp::with(pg, &server.url(), |s| {
        token_mode(s);
        s.limits.rate.key_per_second = Some(3);
        s.breaker.failure_threshold = 1;
        s.breaker.open_seconds = 30;
    });
    let key = app.api_key("backend", KeyRole::Service).await;
    server.kill();
    // Each call finds Redis down (the first opens the breaker) and is counted by the local
    // limiter. The six come at once, so that the limiter (3 a second) cannot refill between
    // them on a slow machine.
    let statuses = futures::future::join_all(
        (0..6).map(|_| async { app.call_as(&key, "GET", "/events", None).await.0 }),
    )
    .await;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((ok, limited), (3, 3), "{statuses:?}");
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn none_mode_limits_nothing_unless_set(pg: PgPool) {
    let app = TestApp::new(pg.clone()).await;
    let event = app.create_event(30).await;
    for i in 1..=15 {
        assert_eq!(
            app.reserve(event, "same-user", &[&format!("S{i}")]).await.0,
            StatusCode::OK
        );
    }
    let capped = TestApp::with(pg, &redis_url(), |s| s.limits.max_seats_per_user = Some(2));
    let event = capped.create_event(5).await;
    assert_eq!(
        capped.reserve(event, "u", &["S1", "S2"]).await.0,
        StatusCode::OK
    );
    let (status, body) = capped.reserve(event, "u", &["S3"]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("USER_LIMIT_REACHED"))
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn the_confirm_transaction_counts_the_cap_in_postgres_whatever_redis_knows(pg: PgPool) {
    // Two instances whose Redis key spaces differ: neither Redis knows the other's holds or
    // sales, so only Postgres can refuse the second confirm.
    let make = |pg: PgPool| {
        TestApp::with(pg, &redis_url(), |s| {
            token_mode(s);
            s.limits.max_seats_per_user = Some(4);
            s.limits.rate.user_per_second = Some(0);
        })
    };
    let (a, b) = (make(pg.clone()), make(pg));
    let admin = a.api_key("ops", KeyRole::Admin).await;
    let event = a.create_event_as(&admin, 10).await;
    let buyer = jwt("split-brain", json!({}));
    let first = hold_as(&a, &buyer, event, &["S1", "S2", "S3"]).await;
    let second = hold_as(&b, &buyer, event, &["S4", "S5", "S6"]).await;
    let confirm = async |app: &TestApp, id: String| {
        app.call_as(
            &buyer,
            "POST",
            &format!("/events/{event}/seats/confirm"),
            Some(json!({"holdGroupId": id})),
        )
        .await
    };
    assert_eq!(confirm(&a, first).await.0, StatusCode::OK);
    let (status, _, body) = confirm(&b, second.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        (
            body["code"].as_str(),
            body["limit"].as_u64(),
            body["current"].as_u64()
        ),
        (Some("USER_LIMIT_REACHED"), Some(4), Some(3))
    );
    assert_eq!(a.booked_in_postgres(event).await, vec!["S1", "S2", "S3"]);
    // The refused hold is kept, unpinned: its owner can still release it.
    let (status, _, _) = b
        .call_as(
            &buyer,
            "POST",
            &format!("/events/{event}/seats/release"),
            Some(json!({"holdGroupId": second})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

async fn hold_as(app: &TestApp, token: &str, event: i64, seats: &[&str]) -> String {
    let (status, _, body) = app
        .call_as(
            token,
            "POST",
            &format!("/events/{event}/seats/reserve"),
            Some(json!({"seatCodes": seats})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["holdGroupId"].as_str().expect("id").to_string()
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn holds_are_counted_once_each_by_the_hold_script_in_the_same_bucket(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        token_mode(s);
        s.limits.rate.user_per_second = Some(1);
        s.limits.rate.user_burst = Some(4);
    });
    let admin = app.api_key("ops", KeyRole::Admin).await;
    let event = app.create_event_as(&admin, 10).await;
    let buyer = jwt("counted", json!({}));
    let path = format!("/events/{event}/seats/reserve");
    let mut remaining = Vec::new();
    for (i, seats) in [json!(["S1"]), json!(["S1"]), json!(["NOPE"])]
        .into_iter()
        .enumerate()
    {
        let (status, headers, body) = app
            .call_as(&buyer, "POST", &path, Some(json!({"seatCodes": seats})))
            .await;
        assert_eq!(
            status,
            [StatusCode::OK, StatusCode::CONFLICT, StatusCode::NOT_FOUND][i],
            "{body}"
        );
        remaining.push(headers["ratelimit"].to_str().expect("ascii").to_string());
    }
    // A hold, a refused hold and an unknown seat each took one request of the burst.
    assert!(remaining[0].contains(";r=3;"), "{remaining:?}");
    assert!(remaining[1].contains(";r=2;"), "{remaining:?}");
    assert!(remaining[2].contains(";r=1;"), "{remaining:?}");
    // A request refused before the hold (a bad body) is counted too, after the fact.
    let (status, headers, _) = app
        .call_as(&buyer, "POST", &path, Some(json!({"seatCodes": []})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        headers["ratelimit"]
            .to_str()
            .expect("ascii")
            .contains(";r=0;")
    );
    // The bucket is empty for holds and reads alike.
    let (status, headers, body) = app
        .call_as(&buyer, "POST", &path, Some(json!({"seatCodes": ["S2"]})))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("RATE_LIMITED"))
    );
    assert!(headers.contains_key("retry-after") && headers.contains_key("ratelimit-policy"));
    assert_eq!(
        app.call_as(&buyer, "GET", "/events", None).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Nothing was held by the refused request.
    assert_eq!(app.counts_as(&admin, event).await.1, 1);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_rate_limited_keyed_request_is_not_stored_and_its_retry_runs(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        token_mode(s);
        s.limits.rate.user_per_second = Some(1);
        s.limits.rate.user_burst = Some(1);
    });
    let admin = app.api_key("ops", KeyRole::Admin).await;
    let event = app.create_event_as(&admin, 5).await;
    let buyer = jwt("keyed", json!({}));
    assert_eq!(
        app.call_as(&buyer, "GET", "/events", None).await.0,
        StatusCode::OK
    );
    let path = format!("/events/{event}/seats/reserve");
    let auth = format!("Bearer {buyer}");
    let keyed = async || {
        app.call_raw(
            "POST",
            &path,
            Some(json!({"seatCodes": ["S1"]}).to_string()),
            &[("authorization", &auth), ("idempotency-key", "order-1")],
        )
        .await
    };
    let (status, headers, _) = keyed().await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key("retry-after"));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, headers, body) = keyed().await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert!(
        !headers.contains_key("idempotent-replayed"),
        "the retry ran"
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn unknown_api_keys_are_limited_per_address_missing_tokens_never(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        token_mode(s);
        s.limits.rate.user_per_second = Some(1);
        s.limits.rate.user_burst = Some(3);
    });
    let guess = |i: usize| format!("sl_{i:0>43}");
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(app.call_as(&guess(i), "GET", "/events", None).await.0);
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 429, 429].map(|s| StatusCode::from_u16(s).expect("status"))
    );
    // Missing tokens and invalid JWTs cost no store work: always 401, never 429.
    for _ in 0..30 {
        assert_eq!(
            app.call("GET", "/events", None).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.call_as("not.a.jwt", "GET", "/events", None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // A valid token is not held back by the failures.
    assert_eq!(
        app.call_as(&jwt("honest", json!({})), "GET", "/events", None)
            .await
            .0,
        StatusCode::OK
    );
}
