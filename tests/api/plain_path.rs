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
