//! Tier units allocated to a sales channel: `PUT /events/{id}/channels` (and `POST /events`)
//! take `tiers: [{code, quantity}]` per channel; units of a channel's allocation are held only by
//! a caller in it (the body's `channel` in none mode, a key's channels or a JWT's `channels`
//! claim in token mode, any unit for an admin), the public only the open ones, all or nothing;
//! release, expiry and cancel give units back to the pool they came from, a booking's units stay
//! counted against their channel; a channel's window sells its allocation; moving an allocation
//! leaves holds and bookings alone; a dropped cache rebuilds the channel counts from Postgres; a
//! storm of public and channel buyers never gives the public a channel's unit. In Redis and in
//! Postgres.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use futures::future::join_all;
use seatlock::domain::access::{KeyRole, NewApiKey};
use seatlock::domain::holds::HoldStore;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::sales::{at, in_ms, patch, put_channels};
use crate::support::{RedisServer, TestApp, jwt, redis_url, token_mode};
use crate::tier_sales::wait_for_tier_holds;
use crate::tiers::{create_tier_event, event_body, ga_event, tier_counts};

fn backends() -> [HoldStore; 2] {
    [HoldStore::Redis, HoldStore::Postgres]
}

fn parse(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a timestamp"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// A channel with `quantity` units of GA and no seats.
fn ga_channel(code: &str, quantity: i64) -> Value {
    json!({"code": code, "tiers": [{"code": "GA", "quantity": quantity}]})
}

/// Allocates `quantity` units of GA to `presale` (the whole channel set) and checks the echo.
async fn allocate_presale(app: &TestApp, event: i64, quantity: i64) {
    let (status, body) = put_channels(app, event, json!([ga_channel("presale", quantity)])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"channels": [{"code": "presale", "seatCodes": [], "tiers": [{"code": "GA", "quantity": quantity}],
            "salesStart": null, "salesEnd": null}]})
    );
}

/// A reserve of `quantity` GA units by `user`, in `channel` when given (none mode).
async fn reserve_ga(
    app: &TestApp,
    event: i64,
    user: &str,
    channel: Option<&str>,
    quantity: i64,
) -> (StatusCode, Value) {
    let mut body = json!({"userId": user, "tiers": [{"code": "GA", "quantity": quantity}]});
    if let Some(c) = channel {
        body["channel"] = json!(c);
    }
    app.post(&format!("/events/{event}/seats/reserve"), body)
        .await
}

/// Holds `quantity` GA units (asserting success); returns the holdGroupId.
async fn hold_ga(
    app: &TestApp,
    event: i64,
    user: &str,
    channel: Option<&str>,
    quantity: i64,
) -> String {
    let (status, body) = reserve_ga(app, event, user, channel, quantity).await;
    assert_eq!(status, StatusCode::OK, "{user} in {channel:?}: {body}");
    assert_eq!(body["tiers"], json!([{"code": "GA", "quantity": quantity}]));
    body["holdGroupId"]
        .as_str()
        .expect("holdGroupId")
        .to_string()
}

/// Asserts a 409 `SEATS_UNAVAILABLE` naming GA with what the caller may still hold.
fn assert_short((status, body): (StatusCode, Value), requested: i64, available: i64, why: &str) {
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("SEATS_UNAVAILABLE")),
        "{why}: {body}"
    );
    assert_eq!(
        body["tiers"],
        json!([{"code": "GA", "requested": requested, "available": available}]),
        "{why}: {body}"
    );
}

/// The GA line of `channel` in an event body (`GET /events/{id}` as a trusted caller).
fn channel_ga(event: &Value, channel: &str) -> Value {
    let ch = event["channels"]
        .as_array()
        .unwrap_or_else(|| panic!("channels in {event}"))
        .iter()
        .find(|c| c["code"] == channel)
        .unwrap_or_else(|| panic!("channel {channel} in {event}"));
    ch["tiers"]
        .as_array()
        .unwrap_or_else(|| panic!("tiers of {ch}"))
        .iter()
        .find(|t| t["code"] == "GA")
        .unwrap_or_else(|| panic!("GA in {ch}"))
        .clone()
}

/// The GA line of `channel` from `GET /events/{id}` (none mode: a service key's view).
async fn channel_tier(app: &TestApp, event: i64, channel: &str) -> Value {
    channel_ga(&app.event(event).await, channel)
}

/// The expected GA line of a channel.
fn line(quantity: i64, confirmed: i64, held: i64, available: i64) -> Value {
    json!({"code": "GA", "quantity": quantity, "confirmed": confirmed, "held": held, "available": available})
}

async fn cancel(app: &TestApp, user: &str, booking: &str) {
    let (status, body) = app
        .post(
            &format!("/bookings/{booking}/cancel"),
            json!({"userId": user}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Units allocated to a channel are held only by a caller in it: with GA 10 and presale 4 the
/// public holds the 6 open units and no more (409 with `available` 0), a presale caller gets its
/// 4 (asking 5 is a 409 naming 4), and the counts show the tier full and presale's line held.
/// A channel caller who comes first may also take open units, after its own: presale holding 6
/// of 10 leaves the public 4.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn tier_units_of_a_channel_are_held_only_by_it(pg: PgPool) {
    for backend in backends() {
        let app = TestApp::with(pg.clone(), &redis_url(), |s| s.holds.backend = backend);
        let id = ga_event(&app, 10).await;
        allocate_presale(&app, id, 4).await;
        assert_eq!(channel_tier(&app, id, "presale").await, line(4, 0, 0, 4));
        assert_eq!(tier_counts(&app, id, "GA").await, (0, 0, 10));

        hold_ga(&app, id, "public1", None, 6).await;
        assert_short(
            reserve_ga(&app, id, "public2", None, 1).await,
            1,
            0,
            &format!("{backend:?}: the public past the open units"),
        );
        assert_short(
            reserve_ga(&app, id, "fan1", Some("presale"), 5).await,
            5,
            4,
            &format!("{backend:?}: presale past its allocation"),
        );
        assert_eq!(
            tier_counts(&app, id, "GA").await,
            (0, 6, 4),
            "{backend:?}: refusals hold nothing"
        );
        hold_ga(&app, id, "fan1", Some("presale"), 4).await;
        assert_eq!(tier_counts(&app, id, "GA").await, (0, 10, 0), "{backend:?}");
        let e = app.event(id).await;
        assert_eq!(channel_ga(&e, "presale"), line(4, 0, 4, 0), "{backend:?}");
        assert_short(
            reserve_ga(&app, id, "fan2", Some("presale"), 1).await,
            1,
            0,
            &format!("{backend:?}: all gone"),
        );

        // A presale caller first: its 4, then 2 open units; the public keeps the other 4.
        let first = ga_event(&app, 10).await;
        allocate_presale(&app, first, 4).await;
        hold_ga(&app, first, "fan1", Some("presale"), 6).await;
        assert_eq!(
            channel_tier(&app, first, "presale").await,
            line(4, 0, 4, 0),
            "{backend:?}: its own units first"
        );
        assert_short(
            reserve_ga(&app, first, "public1", None, 5).await,
            5,
            4,
            &format!("{backend:?}: the open units left"),
        );
        hold_ga(&app, first, "public1", None, 4).await;
        assert_eq!(
            tier_counts(&app, first, "GA").await,
            (0, 10, 0),
            "{backend:?}"
        );
    }
}

/// Units go back to the pool they were taken from: a released presale hold gives presale its
/// units back (the public is still refused them), a hold of 4 presale + 2 open units gives 4 to
/// presale and 2 to the public; a confirmed presale hold is counted as presale's confirmed units
/// and cancelling the booking gives them back the same way; an expired hold too.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn units_go_back_to_their_pool(pg: PgPool) {
    for backend in backends() {
        let app = TestApp::with(pg.clone(), &redis_url(), |s| s.holds.backend = backend);
        let id = ga_event(&app, 10).await;
        allocate_presale(&app, id, 4).await;
        hold_ga(&app, id, "public1", None, 6).await;
        let h1 = hold_ga(&app, id, "fan1", Some("presale"), 3).await;
        assert_eq!(
            channel_tier(&app, id, "presale").await,
            line(4, 0, 3, 1),
            "{backend:?}"
        );
        assert_eq!(tier_counts(&app, id, "GA").await, (0, 9, 1), "{backend:?}");

        // Release: back to presale, not to the public.
        assert_eq!(app.release(id, "fan1", &h1).await.0, StatusCode::OK);
        assert_eq!(
            channel_tier(&app, id, "presale").await,
            line(4, 0, 0, 4),
            "{backend:?}"
        );
        assert_eq!(tier_counts(&app, id, "GA").await, (0, 6, 4), "{backend:?}");
        assert_short(
            reserve_ga(&app, id, "public2", None, 1).await,
            1,
            0,
            &format!("{backend:?}: released presale units stay presale's"),
        );

        // Confirm: presale's confirmed units; cancel gives them back to presale.
        let h2 = hold_ga(&app, id, "fan2", Some("presale"), 4).await;
        let (status, body) = app.confirm(id, "fan2", &h2).await;
        assert_eq!(status, StatusCode::OK, "{backend:?} {body}");
        assert_eq!(body["tiers"], json!([{"code": "GA", "quantity": 4}]));
        assert_eq!(
            channel_tier(&app, id, "presale").await,
            line(4, 4, 0, 0),
            "{backend:?}"
        );
        assert_eq!(tier_counts(&app, id, "GA").await, (4, 6, 0), "{backend:?}");
        assert_short(
            reserve_ga(&app, id, "fan3", Some("presale"), 1).await,
            1,
            0,
            &format!("{backend:?}: sold out"),
        );
        cancel(&app, "fan2", &h2).await;
        assert_eq!(
            channel_tier(&app, id, "presale").await,
            line(4, 0, 0, 4),
            "{backend:?}"
        );
        assert_eq!(tier_counts(&app, id, "GA").await, (0, 6, 4), "{backend:?}");
        assert_short(
            reserve_ga(&app, id, "public2", None, 1).await,
            1,
            0,
            &format!("{backend:?}: cancelled presale units stay presale's"),
        );
        hold_ga(&app, id, "fan3", Some("presale"), 4).await;

        // A hold of both pools (4 presale + 2 open) gives each pool its own back.
        let mixed = ga_event(&app, 10).await;
        allocate_presale(&app, mixed, 4).await;
        let m1 = hold_ga(&app, mixed, "fan1", Some("presale"), 6).await;
        assert_eq!(
            channel_tier(&app, mixed, "presale").await,
            line(4, 0, 4, 0),
            "{backend:?}"
        );
        assert_short(
            reserve_ga(&app, mixed, "public1", None, 5).await,
            5,
            4,
            &format!("{backend:?}: 2 open units taken by presale"),
        );
        assert_eq!(app.release(mixed, "fan1", &m1).await.0, StatusCode::OK);
        assert_eq!(
            channel_tier(&app, mixed, "presale").await,
            line(4, 0, 0, 4),
            "{backend:?}"
        );
        assert_eq!(
            tier_counts(&app, mixed, "GA").await,
            (0, 0, 10),
            "{backend:?}"
        );
        assert_short(
            reserve_ga(&app, mixed, "public1", None, 7).await,
            7,
            6,
            &format!("{backend:?}: the 2 open units are open again"),
        );
        let m2 = hold_ga(&app, mixed, "fan2", Some("presale"), 6).await;
        let (status, body) = app.confirm(mixed, "fan2", &m2).await;
        assert_eq!(status, StatusCode::OK, "{backend:?} {body}");
        assert_eq!(
            channel_tier(&app, mixed, "presale").await,
            line(4, 4, 0, 0),
            "{backend:?}"
        );
        assert_eq!(
            tier_counts(&app, mixed, "GA").await,
            (6, 0, 4),
            "{backend:?}"
        );
        assert_short(
            reserve_ga(&app, mixed, "public1", None, 5).await,
            5,
            4,
            &format!("{backend:?}: the booking keeps 2 open units"),
        );
        cancel(&app, "fan2", &m2).await;
        assert_eq!(
            channel_tier(&app, mixed, "presale").await,
            line(4, 0, 0, 4),
            "{backend:?}"
        );
        assert_eq!(
            tier_counts(&app, mixed, "GA").await,
            (0, 0, 10),
            "{backend:?}"
        );
        assert_short(
            reserve_ga(&app, mixed, "public1", None, 7).await,
            7,
            6,
            &format!("{backend:?}: cancelled: 4 to presale, 2 open"),
        );

        // Expiry: presale's units back to presale, the open ones open.
        let short = TestApp::with(pg.clone(), &redis_url(), |s| {
            s.holds.backend = backend;
            s.holds.ttl_seconds = 2;
        });
        let id = ga_event(&short, 10).await;
        allocate_presale(&short, id, 4).await;
        let gone = hold_ga(&short, id, "fan1", Some("presale"), 4).await;
        hold_ga(&short, id, "public1", None, 6).await;
        assert_eq!(
            channel_tier(&short, id, "presale").await,
            line(4, 0, 4, 0),
            "{backend:?}"
        );
        tokio::time::sleep(Duration::from_millis(2200)).await;
        assert_eq!(
            channel_tier(&short, id, "presale").await,
            line(4, 0, 0, 4),
            "{backend:?}"
        );
        assert_eq!(
            tier_counts(&short, id, "GA").await,
            (0, 0, 10),
            "{backend:?}"
        );
        assert_eq!(short.confirm(id, "fan1", &gone).await.0, StatusCode::GONE);
        assert_short(
            reserve_ga(&short, id, "public2", None, 7).await,
            7,
            6,
            &format!("{backend:?}: expired presale units stay presale's"),
        );
        hold_ga(&short, id, "public2", None, 6).await;
        hold_ga(&short, id, "fan2", Some("presale"), 4).await;
        assert_eq!(
            tier_counts(&short, id, "GA").await,
            (0, 10, 0),
            "{backend:?}"
        );
    }
}

/// An allocation is checked and a refusal changes nothing: an unknown tier is 404
/// `TIERS_NOT_FOUND` naming it (a 400 at `POST /events`, as unknown seats are there); a quantity
/// under 1 or not an integer, a tier twice in a channel, allocations over the tier's capacity
/// are 400 `VALIDATION_FAILED`. Allocations adding up to the capacity are fine, and an
/// allocation made at creation is in force at once.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_channel_tier_allocation_is_checked(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = create_tier_event(
        &app,
        json!({"tiers": [{"code": "GA", "capacity": 10}, {"code": "VIP", "capacity": 2}]}),
    )
    .await;
    let (status, body) = put_channels(
        &app,
        id,
        json!([{"code": "presale", "tiers": [
            {"code": "GA", "quantity": 2}, {"code": "NOPE", "quantity": 1}, {"code": "X", "quantity": 1}
        ]}]),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str(), body["tiers"].clone()),
        (
            StatusCode::NOT_FOUND,
            Some("TIERS_NOT_FOUND"),
            json!(["NOPE", "X"])
        ),
        "{body}"
    );
    let tiers = |lines: Value| json!([{"code": "presale", "tiers": lines}]);
    for (channels, why) in [
        (tiers(json!([{"code": "GA", "quantity": 0}])), "quantity 0"),
        (
            tiers(json!([{"code": "GA", "quantity": -1}])),
            "a negative quantity",
        ),
        (
            tiers(json!([{"code": "GA", "quantity": 1.5}])),
            "a fractional quantity",
        ),
        (tiers(json!([{"code": "GA"}])), "no quantity"),
        (
            tiers(json!([{"code": "GA", "quantity": 1}, {"code": "GA", "quantity": 2}])),
            "a tier twice in one channel",
        ),
        (
            tiers(json!([{"code": "VIP", "quantity": 3}])),
            "one channel over the capacity",
        ),
        (
            json!([ga_channel("presale", 6), ga_channel("partner", 5)]),
            "two channels over the capacity",
        ),
    ] {
        let (status, body) = put_channels(&app, id, channels.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("VALIDATION_FAILED")),
            "{why}: {channels} -> {body}"
        );
    }
    let (status, body) = put_channels(&app, 999_999, json!([ga_channel("presale", 1)])).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("EVENT_NOT_FOUND")),
        "{body}"
    );
    // Nothing changed by the refusals: no channels, every unit open.
    let e = app.event(id).await;
    assert!(e.get("channels").is_none(), "{e}");
    let all = hold_ga(&app, id, "public1", None, 10).await;
    assert_eq!(app.release(id, "public1", &all).await.0, StatusCode::OK);

    // Up to the capacity, over two channels: the public gets nothing.
    let (status, body) = put_channels(
        &app,
        id,
        json!([ga_channel("presale", 6), ga_channel("partner", 4)]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["channels"][1]["tiers"],
        json!([{"code": "GA", "quantity": 4}])
    );
    assert_short(
        reserve_ga(&app, id, "public1", None, 1).await,
        1,
        0,
        "every unit is a channel's",
    );
    // A refused set leaves the one in force.
    let (status, _) = put_channels(
        &app,
        id,
        json!([ga_channel("presale", 7), ga_channel("partner", 4)]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let e = app.event(id).await;
    assert_eq!(channel_ga(&e, "presale"), line(6, 0, 0, 6));
    assert_eq!(channel_ga(&e, "partner"), line(4, 0, 0, 4));
    // A tier the event does not have (a seats-only event).
    let seats_only = app.create_event(2).await;
    let (status, body) = put_channels(&app, seats_only, json!([ga_channel("presale", 1)])).await;
    assert_eq!(
        (status, body["code"].as_str(), body["tiers"].clone()),
        (
            StatusCode::NOT_FOUND,
            Some("TIERS_NOT_FOUND"),
            json!(["GA"])
        ),
        "{body}"
    );

    // At creation: an unknown tier or too many units are a 400; a valid allocation is in force.
    let created = |channels: Value| {
        event_body(json!({"tiers": [{"code": "GA", "capacity": 10}], "channels": channels}))
    };
    for (channels, why) in [
        (
            json!([{"code": "presale", "tiers": [{"code": "NOPE", "quantity": 1}]}]),
            "unknown tier",
        ),
        (json!([ga_channel("presale", 11)]), "over the capacity"),
        (
            json!([{"code": "presale", "tiers": [{"code": "GA", "quantity": 0}]}]),
            "quantity 0",
        ),
    ] {
        let (status, body) = app.post("/events", created(channels)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("VALIDATION_FAILED")),
            "{why}: {body}"
        );
    }
    let (status, body) = app
        .post("/events", created(json!([ga_channel("presale", 4)])))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let made = body["eventId"].as_i64().expect("eventId");
    assert_eq!(channel_tier(&app, made, "presale").await, line(4, 0, 0, 4));
    assert_short(
        reserve_ga(&app, made, "public1", None, 7).await,
        7,
        6,
        "the allocation made at creation",
    );
    hold_ga(&app, made, "public1", None, 6).await;
    hold_ga(&app, made, "fan1", Some("presale"), 4).await;
    assert_eq!(tier_counts(&app, made, "GA").await, (0, 10, 0));
}

/// Moving an allocation never touches a live hold or a booking: presale holds 3 of its 4, the
/// allocation moves to partner (the 3 stay held, partner's 4 are partner's, the public gets the
/// 3 left), then is removed (the 3 stay held, every other unit is open), and the hold still
/// confirms.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn moving_an_allocation_leaves_holds_alone(pg: PgPool) {
    for backend in backends() {
        let app = TestApp::with(pg.clone(), &redis_url(), |s| s.holds.backend = backend);
        let id = ga_event(&app, 10).await;
        allocate_presale(&app, id, 4).await;
        let kept = hold_ga(&app, id, "fan1", Some("presale"), 3).await;

        let (status, body) = put_channels(&app, id, json!([ga_channel("partner", 4)])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let e = app.event(id).await;
        assert_eq!(e["channels"].as_array().map(Vec::len), Some(1), "{e}");
        assert_eq!(channel_ga(&e, "partner"), line(4, 0, 0, 4), "{backend:?}");
        assert_eq!(tier_counts(&app, id, "GA").await, (0, 3, 7), "{backend:?}");
        assert_short(
            reserve_ga(&app, id, "public1", None, 4).await,
            4,
            3,
            &format!("{backend:?}: partner's 4 are not open"),
        );
        assert_short(
            reserve_ga(&app, id, "partner1", Some("partner"), 8).await,
            8,
            7,
            &format!("{backend:?}: partner's 4 and the 3 open"),
        );

        let (status, body) = put_channels(&app, id, json!([])).await;
        assert_eq!(
            (status, body.clone()),
            (StatusCode::OK, json!({"channels": []})),
            "{body}"
        );
        let e = app.event(id).await;
        assert!(e.get("channels").is_none(), "{backend:?} {e}");
        assert_eq!(
            tier_counts(&app, id, "GA").await,
            (0, 3, 7),
            "{backend:?}: still held"
        );
        assert_short(
            reserve_ga(&app, id, "public1", None, 8).await,
            8,
            7,
            &format!("{backend:?}: the held 3 are not free"),
        );
        hold_ga(&app, id, "public1", None, 7).await;
        assert_short(
            reserve_ga(&app, id, "public2", None, 1).await,
            1,
            0,
            &format!("{backend:?}: sold out"),
        );
        let (status, body) = app.confirm(id, "fan1", &kept).await;
        assert_eq!(status, StatusCode::OK, "{backend:?} {body}");
        assert_eq!(body["tiers"], json!([{"code": "GA", "quantity": 3}]));
        assert_eq!(tier_counts(&app, id, "GA").await, (3, 7, 0), "{backend:?}");
    }
}

/// Presale's confirmed units outlive the Redis cache: after the event's cache is dropped (and
/// after a `FLUSHALL` of a Redis of the test's own) the rebuild from Postgres still counts the
/// booking's 3 units against presale, so the public gets the 6 open units and not 7, and presale
/// the 1 of its own left.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_dropped_cache_keeps_channel_counts(pg: PgPool) {
    let server = RedisServer::start();
    let shared = TestApp::new(pg.clone()).await;
    let own = TestApp::with(pg.clone(), &server.url(), |_| {});
    for (app, flush) in [(&shared, false), (&own, true)] {
        let why = if flush { "FLUSHALL" } else { "dropped cache" };
        let id = ga_event(app, 10).await;
        allocate_presale(app, id, 4).await;
        let sold = hold_ga(app, id, "fan1", Some("presale"), 3).await;
        assert_eq!(app.confirm(id, "fan1", &sold).await.0, StatusCode::OK);
        if flush {
            let mut conn = app.redis().await;
            let _: () = redis::cmd("FLUSHALL")
                .query_async(&mut conn)
                .await
                .expect("flushall");
        } else {
            app.drop_cache(id).await;
        }
        assert_eq!(
            channel_tier(app, id, "presale").await,
            line(4, 3, 0, 1),
            "{why}"
        );
        assert_eq!(tier_counts(app, id, "GA").await, (3, 0, 7), "{why}");
        assert_short(
            reserve_ga(app, id, "public1", None, 7).await,
            7,
            6,
            &format!("{why}: the rebuild knows presale's booking"),
        );
        hold_ga(app, id, "public1", None, 6).await;
        assert_short(
            reserve_ga(app, id, "fan2", Some("presale"), 2).await,
            2,
            1,
            &format!("{why}: presale's 1 left"),
        );
        hold_ga(app, id, "fan2", Some("presale"), 1).await;
        let e = app.event(id).await;
        assert_eq!(channel_ga(&e, "presale"), line(4, 3, 1, 0), "{why}");
        assert_eq!(tier_counts(app, id, "GA").await, (3, 7, 0), "{why}");
    }
}

async fn service_key(app: &TestApp, name: &str, channels: &[&str]) -> String {
    let mut new = NewApiKey::new(name, KeyRole::Service);
    new.channels = channels.iter().map(|c| c.to_string()).collect();
    match app.state.seatlock.create_api_key(&new).await.expect("key") {
        seatlock::service::KeyCreated::Created(key) => key,
        other => panic!("key not created: {other:?}"),
    }
}

/// A reserve of GA units as `token`; `user` for keys (a JWT's `sub` is its user).
async fn reserve_as(
    app: &TestApp,
    token: &str,
    event: i64,
    user: Option<&str>,
    quantity: i64,
) -> (StatusCode, Value) {
    let mut body = json!({"tiers": [{"code": "GA", "quantity": quantity}]});
    if let Some(u) = user {
        body["userId"] = json!(u);
    }
    let (status, _, body) = app
        .call_as(
            token,
            "POST",
            &format!("/events/{event}/seats/reserve"),
            Some(body),
        )
        .await;
    (status, body)
}

async fn event_as(app: &TestApp, token: &str, event: i64) -> Value {
    let (status, _, body) = app
        .call_as(token, "GET", &format!("/events/{event}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// In token mode a caller's channels come from its credentials: a JWT with `"channels":
/// ["presale"]` and a key created with presale hold presale's units, a JWT without the claim and
/// a key without channels get only the open ones, an admin (a box office) may hold any unit
/// left, the last presale unit included; buyers see the tiers but no channels.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn token_callers_get_their_channel_units(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), token_mode);
    let admin = app.api_key("box-office", KeyRole::Admin).await;
    let (status, _, body) = app
        .call_as(
            &admin,
            "POST",
            "/events",
            Some(event_body(
                json!({"tiers": [{"code": "GA", "capacity": 10}]}),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["eventId"].as_i64().expect("eventId");
    let (status, _, body) = app
        .call_as(
            &admin,
            "PUT",
            &format!("/events/{id}/channels"),
            Some(json!({"channels": [ga_channel("presale", 4)]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["channels"][0]["tiers"],
        json!([{"code": "GA", "quantity": 4}])
    );

    let public = jwt("p1", json!({}));
    let fan = jwt("f1", json!({"channels": ["presale"]}));
    let partner = service_key(&app, "partner", &["presale"]).await;
    let plain = service_key(&app, "plain", &[]).await;

    assert_short(
        reserve_as(&app, &public, id, None, 7).await,
        7,
        6,
        "a JWT without channels",
    );
    assert_short(
        reserve_as(&app, &plain, id, Some("x"), 7).await,
        7,
        6,
        "a key without channels",
    );
    let (status, body) = reserve_as(&app, &fan, id, None, 2).await;
    assert_eq!(status, StatusCode::OK, "a JWT in presale: {body}");
    let (status, body) = reserve_as(&app, &partner, id, Some("y"), 1).await;
    assert_eq!(status, StatusCode::OK, "a key in presale: {body}");
    let e = event_as(&app, &admin, id).await;
    assert_eq!(channel_ga(&e, "presale"), line(4, 0, 3, 1));
    assert_eq!(
        e["tiers"][0]["held"], 3,
        "tier counts are over all channels: {e}"
    );

    let (status, body) = reserve_as(&app, &public, id, None, 6).await;
    assert_eq!(status, StatusCode::OK, "the open units: {body}");
    assert_short(
        reserve_as(&app, &public, id, None, 1).await,
        1,
        0,
        "the public, open gone",
    );
    assert_short(
        reserve_as(&app, &fan, id, None, 2).await,
        2,
        1,
        "presale's 1 left",
    );
    assert_short(
        reserve_as(&app, &admin, id, Some("z"), 2).await,
        2,
        1,
        "an admin sees every unit left",
    );
    let (status, body) = reserve_as(&app, &admin, id, Some("z"), 1).await;
    assert_eq!(status, StatusCode::OK, "admins hold channel units: {body}");
    assert_short(
        reserve_as(&app, &fan, id, None, 1).await,
        1,
        0,
        "the box office took the last one",
    );
    let e = event_as(&app, &admin, id).await;
    assert_eq!(
        (
            e["tiers"][0]["confirmed"].as_i64(),
            e["tiers"][0]["held"].as_i64(),
            e["tiers"][0]["available"].as_i64()
        ),
        (Some(0), Some(10), Some(0)),
        "{e}"
    );
    let presale = channel_ga(&e, "presale");
    assert_eq!(
        (presale["quantity"].as_i64(), presale["available"].as_i64()),
        (Some(4), Some(0)),
        "{e}"
    );
    // Buyers see the tier, not the channels; a body `channel` is not theirs to name.
    let e = event_as(&app, &public, id).await;
    assert!(e.get("channels").is_none(), "{e}");
    assert_eq!(e["tiers"][0]["available"], 0, "{e}");
    let (status, _, body) = app
        .call_as(
            &public,
            "POST",
            &format!("/events/{id}/seats/reserve"),
            Some(json!({"channel": "presale", "tiers": [{"code": "GA", "quantity": 1}]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// A channel's window sells its allocation, the event's window the open units: the event opens
/// in an hour, presale opened an hour ago; a presale caller holds presale's 4 now and no more
/// (409 `SEATS_UNAVAILABLE` naming the allocation left), the public is refused `SALES_NOT_OPEN`
/// with the event's opening; once the event is open the open units sell.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_channel_window_sells_its_units_only(pg: PgPool) {
    for backend in backends() {
        let app = TestApp::with(pg.clone(), &redis_url(), |s| s.holds.backend = backend);
        let opens = in_ms(3_600_000);
        let id = create_tier_event(
            &app,
            json!({"tiers": [{"code": "GA", "capacity": 10}], "salesStart": at(opens)}),
        )
        .await;
        let presale_opened = in_ms(-3_600_000);
        let (status, body) = put_channels(
            &app,
            id,
            json!([{"code": "presale", "tiers": [{"code": "GA", "quantity": 4}],
                "salesStart": at(presale_opened)}]),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(parse(&body["channels"][0]["salesStart"]), presale_opened);
        assert!(body["channels"][0]["salesEnd"].is_null(), "{body}");

        let (status, body) = reserve_ga(&app, id, "public1", None, 1).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::CONFLICT, Some("SALES_NOT_OPEN")),
            "{backend:?} {body}"
        );
        assert_eq!(parse(&body["opensAt"]), opens);
        assert_short(
            reserve_ga(&app, id, "fan1", Some("presale"), 5).await,
            5,
            4,
            &format!("{backend:?}: only presale's units are on sale"),
        );
        hold_ga(&app, id, "fan1", Some("presale"), 4).await;
        assert_short(
            reserve_ga(&app, id, "fan2", Some("presale"), 1).await,
            1,
            0,
            &format!("{backend:?}: presale's allocation is gone"),
        );
        assert_eq!(
            channel_tier(&app, id, "presale").await,
            line(4, 0, 4, 0),
            "{backend:?}"
        );
        assert_eq!(tier_counts(&app, id, "GA").await, (0, 4, 6), "{backend:?}");

        // The event opens: the open units sell.
        let (status, body) = patch(&app, id, json!({"salesStart": null})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_short(
            reserve_ga(&app, id, "public1", None, 7).await,
            7,
            6,
            &format!("{backend:?}: the open units"),
        );
        hold_ga(&app, id, "public1", None, 6).await;
        assert_eq!(tier_counts(&app, id, "GA").await, (0, 10, 0), "{backend:?}");
    }
}

/// 64 buyers at once, half public and half in presale, each holding 1 GA unit at a time until
/// refused, on capacity 40 with presale 10: the public never holds more than the 30 open
/// units, every unit is held in the end (presale's callers, refused only when nothing is left,
/// take the rest), every refusal says nothing was left for that caller, and the counts add up:
/// presale's 10 all held.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_storm_never_gives_the_public_channel_units(pg: PgPool) {
    for backend in backends() {
        let app = Arc::new(TestApp::with(pg.clone(), &redis_url(), |s| {
            s.holds.backend = backend;
            s.holds.ttl_seconds = 300;
        }));
        let id = ga_event(&app, 40).await;
        allocate_presale(&app, id, 10).await;
        let tasks = (0..64).map(|i| {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                let channel = (i % 2 == 1).then_some("presale");
                let user = format!("{}{i}", channel.unwrap_or("public"));
                let mut held = 0_i64;
                loop {
                    let (status, body) = reserve_ga(&app, id, &user, channel, 1).await;
                    match status {
                        StatusCode::OK => held += 1,
                        StatusCode::CONFLICT => {
                            assert_short((status, body), 1, 0, &user);
                            break;
                        }
                        other => panic!("{user}: {other} {body}"),
                    }
                }
                (channel.is_some(), held)
            })
        });
        let results: Vec<(bool, i64)> = join_all(tasks)
            .await
            .into_iter()
            .map(|r| r.expect("task"))
            .collect();
        let public: i64 = results.iter().filter(|(p, _)| !p).map(|(_, n)| n).sum();
        let presale: i64 = results.iter().filter(|(p, _)| *p).map(|(_, n)| n).sum();
        assert!(public <= 30, "{backend:?}: the public held {public} units");
        assert!(
            presale <= 40 - public,
            "{backend:?}: presale {presale}, public {public}"
        );
        assert_eq!(public + presale, 40, "{backend:?}: every unit is held");
        assert_eq!(tier_counts(&app, id, "GA").await, (0, 40, 0), "{backend:?}");
        let held = channel_tier(&app, id, "presale").await;
        assert!(
            held["held"].as_i64().expect("held") <= 10,
            "{backend:?}: {held}"
        );
        assert_eq!(held, line(10, 0, 10, 0), "{backend:?}: presale's all held");
    }
}

/// The event's window is waived only for tiers the caller may take from its own channel's
/// allocation: with presale open and the event not yet, a presale caller asking for GA (which
/// presale has units of) and VIP (which it has none of) is refused `SALES_NOT_OPEN`, and nothing
/// is held; GA alone is held.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn the_event_window_still_guards_tiers_without_an_allocation(pg: PgPool) {
    for backend in backends() {
        let app = TestApp::with(pg.clone(), &redis_url(), |s| s.holds.backend = backend);
        let opens = in_ms(3_600_000);
        let id = create_tier_event(
            &app,
            json!({"tiers": [{"code": "GA", "capacity": 10}, {"code": "VIP", "capacity": 50}],
                "salesStart": at(opens)}),
        )
        .await;
        let (status, body) = put_channels(
            &app,
            id,
            json!([{"code": "presale", "tiers": [{"code": "GA", "quantity": 4}],
                "salesStart": at(in_ms(-3_600_000))}]),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = app
            .post(
                &format!("/events/{id}/seats/reserve"),
                json!({"userId": "fan", "channel": "presale",
                    "tiers": [{"code": "GA", "quantity": 1}, {"code": "VIP", "quantity": 5}]}),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::CONFLICT, Some("SALES_NOT_OPEN")),
            "{backend:?} {body}"
        );
        assert_eq!(parse(&body["opensAt"]), opens);
        assert_eq!(
            tier_counts(&app, id, "VIP").await,
            (0, 0, 50),
            "{backend:?}"
        );
        hold_ga(&app, id, "fan", Some("presale"), 1).await;
    }
}

/// A presale hold taken in Postgres during a Redis outage keeps its allocation when it is copied
/// into Redis after it: presale's allocation counts it as held, and the public still gets only
/// the open units (a copy that took open units instead would leave the public 2 and presale 7).
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_channel_hold_taken_during_an_outage_keeps_its_allocation_after_it(pg: PgPool) {
    let mut server = RedisServer::start();
    let app = TestApp::with(pg.clone(), &server.url(), |s| {
        s.breaker.failure_threshold = 2;
        s.breaker.open_seconds = 1;
    });
    let id = ga_event(&app, 10).await;
    allocate_presale(&app, id, 4).await;
    server.kill();
    // During the outage: held in Postgres, from presale's allocation.
    let during = hold_ga(&app, id, "fan", Some("presale"), 3).await;
    server.restart();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Back on Redis: the first hold closes the breaker, which copies the Postgres hold.
    let probe = hold_ga(&app, id, "public1", None, 1).await;
    wait_for_tier_holds(&app, id, "GA", 2).await;
    // 10 - 3 (presale's hold) - 1 (the probe) - 1 (presale keeps its last unit) = 5 open.
    assert_short(
        reserve_ga(&app, id, "public2", None, 6).await,
        6,
        5,
        "the copy took presale's units",
    );
    assert_short(
        reserve_ga(&app, id, "fan2", Some("presale"), 7).await,
        7,
        6,
        "presale: its last unit and the open ones",
    );
    assert_eq!(channel_tier(&app, id, "presale").await, line(4, 0, 3, 1));
    // Confirmed from the copy: sold from presale's allocation.
    assert_eq!(app.confirm(id, "fan", &during).await.0, StatusCode::OK);
    assert_eq!(channel_tier(&app, id, "presale").await, line(4, 3, 0, 1));
    assert_eq!(app.release(id, "public1", &probe).await.0, StatusCode::OK);
    assert_short(
        reserve_ga(&app, id, "public3", None, 7).await,
        7,
        6,
        "presale's sold units stay its own",
    );
}
