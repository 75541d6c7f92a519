//! The plain path of a hold (`lua/hold_plain.lua`, issue 24): a hold of seats only on an event
//! without a sales policy or rows runs it instead of `hold.lua`, with `hold.lua`'s answers; an
//! event that gains a policy goes to `hold.lua` from its next hold on.

use axum::http::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::sales::{at, in_ms, patch};
use crate::support::{RedisServer, TestApp};

/// The SHA1 of a script as `redis::Script` sends it, built from the same files as scripts.rs.
fn sha(source: &str) -> String {
    redis::Script::new(source).get_hash().to_string()
}

fn full_hold() -> String {
    sha(concat!(
        include_str!("../../lua/gcra.lua"),
        include_str!("../../lua/rows.lua"),
        include_str!("../../lua/caps.lua"),
        include_str!("../../lua/policy.lua"),
        include_str!("../../lua/pools.lua"),
        include_str!("../../lua/pools_take.lua"),
        include_str!("../../lua/publish.lua"),
        include_str!("../../lua/hold.lua")
    ))
}

fn plain_hold() -> String {
    sha(concat!(
        include_str!("../../lua/gcra.lua"),
        include_str!("../../lua/caps.lua"),
        include_str!("../../lua/publish.lua"),
        include_str!("../../lua/hold_plain.lua")
    ))
}

/// Whether the test's Redis has loaded each of `shas`.
async fn loaded(app: &TestApp, shas: &[String]) -> Vec<bool> {
    let mut conn = app.redis().await;
    let flags: Vec<i64> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(shas)
        .query_async(&mut conn)
        .await
        .expect("SCRIPT EXISTS");
    flags.into_iter().map(|f| f == 1).collect()
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_plain_events_holds_take_the_plain_path_with_the_same_answers(pg: PgPool) {
    // A Redis of the test's own: which scripts it has loaded tells which ran.
    let redis = RedisServer::start();
    let app = TestApp::with(pg, &redis.url(), |s| s.limits.max_seats_per_user = Some(3));
    let id = app.create_event(8).await;
    let hold = app.hold(id, "u1", &["S1", "S2"]).await;
    // Held by another buyer: 409 naming the held seat only.
    let (status, body) = app.reserve(id, "u2", &["S2", "S3"]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        (body["code"].as_str(), body["seats"].clone()),
        (Some("SEATS_UNAVAILABLE"), json!(["S2"]))
    );
    // Unknown seats: 404 naming them.
    let (status, body) = app.reserve(id, "u2", &["S3", "S9", "X"]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        (body["code"].as_str(), body["seats"].clone()),
        (Some("SEATS_NOT_FOUND"), json!(["S9", "X"]))
    );
    // Blocked: refused like a sold seat.
    let (status, body) = app
        .post(
            &format!("/events/{id}/seats/block"),
            json!({"seatCodes": ["S4"], "reason": "camera"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.reserve(id, "u2", &["S3", "S4"]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["seats"], json!(["S4"]));
    // Booked: refused; the buyer's cap counts the booked seats (2 of 3).
    assert_eq!(app.confirm(id, "u1", &hold).await.0, StatusCode::OK);
    let (status, body) = app.reserve(id, "u2", &["S1"]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["seats"], json!(["S1"]));
    let (status, body) = app.reserve(id, "u1", &["S5", "S6"]).await;
    assert_eq!(
        (status, body["code"].as_str(), body["limit"].as_i64()),
        (StatusCode::CONFLICT, Some("USER_LIMIT_REACHED"), Some(3)),
        "{body}"
    );
    app.hold(id, "u1", &["S5"]).await;
    let statuses = app.seat_statuses(id).await;
    assert_eq!(statuses["S1"], "BOOKED");
    assert_eq!(statuses["S5"], "HELD");
    assert_eq!(statuses["S6"], "AVAILABLE");
    assert_eq!(app.booked_in_postgres(id).await, ["S1", "S2"]);
    assert_eq!(
        loaded(&app, &[plain_hold(), full_hold()]).await,
        [true, false],
        "every hold of the plain event ran hold_plain.lua"
    );

    // A sales window set now governs the very next hold: hold.lua takes over.
    let opens = in_ms(3_600_000);
    let (status, body) = patch(&app, id, json!({"salesStart": at(opens)})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.reserve(id, "u2", &["S6"]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("SALES_NOT_OPEN")),
        "{body}"
    );
    assert_eq!(loaded(&app, &[full_hold()]).await, [true]);
    let (status, body) = patch(&app, id, json!({"salesStart": null})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.hold(id, "u2", &["S6"]).await;
}

/// The theoretical arrival time (us) of the test's one rate bucket (none mode counts a caller
/// by its address, and every call of a test comes from one).
async fn rate_tat(app: &TestApp) -> i64 {
    let mut conn = app.redis().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:rate:*", app.prefix()))
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let tat: String = redis::cmd("GET")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .expect("GET");
    tat.parse().expect("a number")
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn seats_all_held_by_others_are_refused_at_once_and_the_refusal_is_counted(pg: PgPool) {
    let redis = RedisServer::start();
    let app = TestApp::with(pg, &redis.url(), |s| {
        s.limits.rate.user_per_second = Some(1);
        s.limits.rate.user_burst = Some(1_000);
    });
    let id = app.create_event(6).await;
    app.hold(id, "u1", &["S1", "S2"]).await;
    app.hold(id, "u3", &["S3"]).await;
    // Every seat asked is held by someone else (two holds): 409 naming them all, in order,
    // and counted against the caller's rate (one interval, 1 s, on its bucket).
    let before = rate_tat(&app).await;
    let (status, body) = app.reserve(id, "u2", &["S3", "S1", "S2"]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        (body["code"].as_str(), body["seats"].clone()),
        (Some("SEATS_UNAVAILABLE"), json!(["S3", "S1", "S2"]))
    );
    assert!(rate_tat(&app).await - before >= 1_000_000, "counted");
    // A free seat among them: the whole check, the held ones named.
    let (status, body) = app.reserve(id, "u2", &["S2", "S4"]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["seats"], json!(["S2"]));
    // A held seat and an unknown one: the unknown is what is wrong.
    let (status, body) = app.reserve(id, "u2", &["S2", "Z9"]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["seats"], json!(["Z9"]));
    // Nothing of u2 was written; u1 and u3 keep their seats.
    let statuses = app.seat_statuses(id).await;
    assert_eq!(
        ["S1", "S2", "S3", "S4"].map(|s| statuses[s].as_str()),
        ["HELD", "HELD", "HELD", "AVAILABLE"]
    );
    assert_eq!(app.redis_hold_count().await, 2);
    assert_eq!(
        loaded(&app, &[plain_hold(), full_hold()]).await,
        [true, false]
    );
}

/// The layout's `policy` field, as hold_plain.lua reads it.
async fn policy_flag(app: &TestApp, event: i64) -> Option<String> {
    let mut conn = app.redis().await;
    redis::cmd("HGET")
        .arg(format!("{}:{{e:{event}}}:layout", app.prefix()))
        .arg("policy")
        .query_async(&mut conn)
        .await
        .expect("HGET")
}

async fn refused_for_the_window(app: &TestApp, event: i64) {
    // S1 is held by u1, so a plain refusal would say SEATS_UNAVAILABLE.
    let (status, body) = app.reserve(event, "u2", &["S1"]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("SALES_NOT_OPEN")),
        "{body}"
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_policy_reaches_the_plain_check_warm_cold_or_from_an_older_cache(pg: PgPool) {
    // Instances that share one cache (the same Redis and key prefix), each asked once, so each
    // starts without the plain path's memory of events that need hold.lua.
    let redis = RedisServer::start();
    let prefix = format!("test:{}", uuid::Uuid::new_v4().simple());
    let fresh = || {
        let prefix = prefix.clone();
        TestApp::with(pg.clone(), &redis.url(), move |s| {
            s.redis.key_prefix = prefix
        })
    };
    let app = fresh();
    // (kept to the end: a TestApp dropped removes its prefix's keys)
    let others = [fresh(), fresh(), fresh(), fresh(), fresh()];
    let id = app.create_event(4).await;
    app.hold(id, "u1", &["S1"]).await;
    assert_eq!(policy_flag(&app, id).await.as_deref(), Some("0"));
    let later = json!({"salesStart": at(in_ms(3_600_000))});

    // Set on a warm cache: the flag says so, and a held seat is refused for the window.
    assert_eq!(patch(&app, id, later.clone()).await.0, StatusCode::OK);
    assert_eq!(policy_flag(&app, id).await.as_deref(), Some("1"));
    refused_for_the_window(&others[0], id).await;

    // A cache written before the flag existed: the policy key is looked at instead.
    let mut conn = app.redis().await;
    let _: () = redis::cmd("HDEL")
        .arg(format!("{}:{{e:{id}}}:layout", app.prefix()))
        .arg("policy")
        .query_async(&mut conn)
        .await
        .expect("HDEL");
    refused_for_the_window(&others[1], id).await;

    // Removed: plain again.
    let (status, body) = patch(&app, id, json!({"salesStart": null})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(policy_flag(&app, id).await.as_deref(), Some("0"));
    let (status, body) = others[2].reserve(id, "u2", &["S1"]).await;
    assert_eq!(body["code"], "SEATS_UNAVAILABLE", "{status} {body}");

    // Set while the cache is cold: the flag goes until the next rebuild, so the next hold
    // rebuilds the cache, policy included, rather than refusing the held seat as plain.
    app.drop_cache(id).await;
    assert_eq!(patch(&app, id, later).await.0, StatusCode::OK);
    assert_eq!(policy_flag(&app, id).await, None);
    refused_for_the_window(&others[3], id).await;
    assert_eq!(policy_flag(&app, id).await.as_deref(), Some("1"), "rebuilt");

    // The service drops a cache (after a Redis outage, in which a policy change could not be
    // written): the flag goes with it. Here the window is lifted, the cache dropped and a window
    // set in Postgres alone: the held seat is refused for the window, not as a plain event's.
    assert_eq!(
        patch(&app, id, json!({"salesStart": null})).await.0,
        StatusCode::OK
    );
    assert_eq!(policy_flag(&app, id).await.as_deref(), Some("0"));
    app.state
        .seatlock
        .redis()
        .drop_inventory(seatlock::domain::events::EventId(id))
        .await
        .expect("drop");
    assert_eq!(policy_flag(&app, id).await, None);
    sqlx::query(
        "UPDATE events SET sales_start = $2, policy_version = policy_version + 1 \
         WHERE event_id = $1",
    )
    .bind(id)
    .bind(in_ms(3_600_000))
    .execute(&app.pg)
    .await
    .expect("a window in Postgres alone");
    refused_for_the_window(&others[4], id).await;
    assert_eq!(policy_flag(&app, id).await.as_deref(), Some("1"), "rebuilt");
}
