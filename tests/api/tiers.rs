//! General admission, the contract: tiers on events, tier holds (alone or mixed with seats), the
//! errors, confirm, release, cancel, expiry and caps with tier units.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::{TestApp, redis_url};

/// Creates an event from `extra` merged into a valid base (no seats unless `extra` has some).
pub async fn create_tier_event(app: &TestApp, extra: Value) -> i64 {
    let (status, body) = app.post("/events", event_body(extra)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["eventId"].as_i64().expect("eventId")
}

pub fn event_body(extra: Value) -> Value {
    let mut body = json!({"name": "Festival", "date": "2030-06-01T12:00:00Z", "location": "Park"});
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    body
}

/// An event with one tier `GA` of this capacity (price 10.00) and nothing else.
pub async fn ga_event(app: &TestApp, capacity: u32) -> i64 {
    create_tier_event(
        app,
        json!({"tiers": [{"code": "GA", "name": "General admission", "price": 10, "capacity": capacity}]}),
    )
    .await
}

pub async fn reserve_units(
    app: &TestApp,
    event: i64,
    user: &str,
    seats: &[&str],
    tiers: &[(&str, i64)],
) -> (StatusCode, Value) {
    let tiers: Vec<Value> = tiers
        .iter()
        .map(|(code, q)| json!({"code": code, "quantity": q}))
        .collect();
    app.post(
        &format!("/events/{event}/seats/reserve"),
        json!({"userId": user, "seatCodes": seats, "tiers": tiers}),
    )
    .await
}

/// Holds `quantity` units of `code` and returns the holdGroupId.
pub async fn hold_units(
    app: &TestApp,
    event: i64,
    user: &str,
    code: &str,
    quantity: i64,
) -> String {
    let (status, body) = reserve_units(app, event, user, &[], &[(code, quantity)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["holdGroupId"].as_str().expect("id").to_string()
}

/// (confirmed, held, available) of one tier from `GET /events/{id}`, checking that they add up
/// to its capacity.
pub async fn tier_counts(app: &TestApp, event: i64, code: &str) -> (i64, i64, i64) {
    let e = app.event(event).await;
    let tier = e["tiers"]
        .as_array()
        .expect("tiers")
        .iter()
        .find(|t| t["code"] == code)
        .unwrap_or_else(|| panic!("tier {code} in {e}"))
        .clone();
    let n = |k: &str| tier[k].as_i64().expect(k);
    assert_eq!(
        n("confirmed") + n("held") + n("available"),
        n("capacity"),
        "{tier}"
    );
    (n("confirmed"), n("held"), n("available"))
}

/// `sold` of a tier, straight from Postgres.
pub async fn sold_in_postgres(pg: &PgPool, event: i64, code: &str) -> i64 {
    sqlx::query_scalar::<_, i32>("SELECT sold FROM tiers WHERE event_id = $1 AND tier_code = $2")
        .bind(event)
        .bind(code)
        .fetch_one(pg)
        .await
        .expect("sold")
        .into()
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn events_take_tiers_alone_or_beside_seats_and_show_their_counts(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let only = create_tier_event(
        &app,
        json!({"tiers": [
            {"code": "FLOOR", "name": "Standing floor", "price": 45.5, "capacity": 500},
            {"code": "DAY-1", "capacity": 20}
        ]}),
    )
    .await;
    let e = app.event(only).await;
    assert_eq!(
        (e["totalSeats"].as_i64(), e["availableSeats"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        e["tiers"],
        json!([
            {"code": "FLOOR", "name": "Standing floor", "price": 45.5, "capacity": 500,
             "confirmed": 0, "held": 0, "available": 500},
            {"code": "DAY-1", "name": "DAY-1", "price": 0.0, "capacity": 20,
             "confirmed": 0, "held": 0, "available": 20}
        ])
    );
    // The seat map of an event without seats is empty, not unknown.
    let (status, map) = app.get(&format!("/events/{only}/seats")).await;
    assert_eq!((status, map["seats"].clone()), (StatusCode::OK, json!([])));

    let both = create_tier_event(
        &app,
        json!({"totalSeats": 3, "tiers": [{"code": "GA", "capacity": 5}]}),
    )
    .await;
    assert_eq!(
        app.counts(both).await,
        (0, 0, 3),
        "seat counts stay seats only"
    );
    assert_eq!(tier_counts(&app, both, "GA").await, (0, 0, 5));
    // Events without tiers show an empty list.
    let seats_only = app.create_event(2).await;
    assert_eq!(app.event(seats_only).await["tiers"], json!([]));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn bad_tiers_are_refused_with_every_problem(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        s.events.max_tiers = 3;
        s.events.max_tier_capacity = 1000;
    });
    let tier = |code: &str, capacity: i64| json!({"code": code, "capacity": capacity});
    for (extra, why) in [
        (json!({}), "neither seats nor tiers"),
        (json!({"tiers": []}), "an empty tier list and no seats"),
        (json!({"tiers": [tier("A", 0)]}), "capacity 0"),
        (json!({"tiers": [tier("A", 1001)]}), "capacity over max"),
        (
            json!({"tiers": [tier("A", 1), tier("A", 2)]}),
            "duplicate code",
        ),
        (
            json!({"tiers": [tier("has space", 1)]}),
            "whitespace in code",
        ),
        (json!({"tiers": [tier("", 1)]}), "empty code"),
        (
            json!({"tiers": [tier(&"x".repeat(65), 1)]}),
            "code too long",
        ),
        (json!({"tiers": [{"code": "A"}]}), "capacity missing"),
        (
            json!({"tiers": [{"code": "A", "capacity": 1, "price": -1}]}),
            "negative price",
        ),
        (
            json!({"tiers": [tier("A", 1), tier("B", 1), tier("C", 1), tier("D", 1)]}),
            "more than events.max_tiers",
        ),
    ] {
        let (status, body) = app.post("/events", event_body(extra)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {body}");
        assert_eq!(body["code"], "VALIDATION_FAILED", "{why}: {body}");
    }
    let (status, body) = app
        .post(
            "/events",
            event_body(json!({"tiers": [tier("A", 0), tier("B", 5000)]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = body["error"].as_str().expect("error");
    assert!(
        message.contains("tier A") && message.contains("tier B"),
        "{message}"
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn tier_holds_follow_the_contract(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = ga_event(&app, 5).await;
    let (status, body) = reserve_units(&app, id, "u1", &[], &[("GA", 3)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["seatCodes"], json!([]));
    assert_eq!(body["tiers"], json!([{"code": "GA", "quantity": 3}]));
    assert!(body["holdGroupId"].is_string() && body["expiresAt"].is_string());
    assert_eq!(tier_counts(&app, id, "GA").await, (0, 3, 2));

    // seatCodes may be left out altogether.
    let (status, body) = app
        .post(
            &format!("/events/{id}/seats/reserve"),
            json!({"userId": "u2", "tiers": [{"code": "GA", "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Not enough left: 409 with what is left; nothing is held.
    let (status, body) = reserve_units(&app, id, "u3", &[], &[("GA", 2)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "SEATS_UNAVAILABLE");
    assert_eq!(body["seats"], json!([]));
    assert_eq!(
        body["tiers"],
        json!([{"code": "GA", "requested": 2, "available": 1}])
    );
    assert_eq!(tier_counts(&app, id, "GA").await, (0, 4, 1));

    // Unknown tier codes: 404 naming them; nothing is held.
    let (status, body) =
        reserve_units(&app, id, "u3", &[], &[("GA", 1), ("VIP", 1), ("X", 2)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "TIERS_NOT_FOUND");
    assert_eq!(body["tiers"], json!(["VIP", "X"]));
    assert_eq!(tier_counts(&app, id, "GA").await, (0, 4, 1));

    // Bad lines: 400 before anything is looked at.
    let max = app.state.settings.holds.max_seats_per_hold as i64;
    for (tiers, why) in [
        (json!([{"code": "GA", "quantity": 0}]), "quantity 0"),
        (json!([{"code": "GA", "quantity": -1}]), "negative quantity"),
        (
            json!([{"code": "GA", "quantity": 1.5}]),
            "fractional quantity",
        ),
        (json!([{"code": "GA"}]), "quantity missing"),
        (
            json!([{"code": "GA", "quantity": 1}, {"code": "GA", "quantity": 1}]),
            "a tier twice",
        ),
        (
            json!([{"code": "GA", "quantity": max + 1}]),
            "over max_seats_per_hold",
        ),
        (json!([]), "no seat and no tier"),
    ] {
        let (status, body) = app
            .post(
                &format!("/events/{id}/seats/reserve"),
                json!({"userId": "u4", "tiers": tiers}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {body}");
    }
    // Seats plus quantities are bounded together.
    let mixed = create_tier_event(
        &app,
        json!({"totalSeats": 20, "tiers": [{"code": "GA", "capacity": 50}]}),
    )
    .await;
    let seats: Vec<String> = (1..=max - 1).map(|n| format!("S{n}")).collect();
    let seats: Vec<&str> = seats.iter().map(String::as_str).collect();
    let (status, _) = reserve_units(&app, mixed, "u5", &seats, &[("GA", 2)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = reserve_units(&app, mixed, "u5", &seats, &[("GA", 1)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // An unknown event is still 404 EVENT_NOT_FOUND.
    let (status, body) = reserve_units(&app, 999_999, "u1", &[], &[("GA", 1)]).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("EVENT_NOT_FOUND"))
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_mixed_hold_is_all_or_nothing(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = create_tier_event(
        &app,
        json!({"seats": [{"code": "BOX1", "price": 100}, {"code": "BOX2", "price": 100}],
               "tiers": [{"code": "FLOOR", "price": 20, "capacity": 4}, {"code": "VIP", "capacity": 2}]}),
    )
    .await;
    app.hold(id, "u1", &["BOX1"]).await;
    // The seat is taken: no unit is held.
    let (status, body) = reserve_units(&app, id, "u2", &["BOX1"], &[("FLOOR", 2)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["seats"], json!(["BOX1"]));
    assert_eq!(body["tiers"], json!([]));
    assert_eq!(tier_counts(&app, id, "FLOOR").await, (0, 0, 4));
    // A tier is short: the seat is not held, nor the other tier's units.
    let (status, body) =
        reserve_units(&app, id, "u2", &["BOX2"], &[("FLOOR", 2), ("VIP", 3)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["seats"], json!([]));
    assert_eq!(
        body["tiers"],
        json!([{"code": "VIP", "requested": 3, "available": 2}])
    );
    assert_eq!(app.seat_statuses(id).await["BOX2"], "AVAILABLE");
    assert_eq!(tier_counts(&app, id, "FLOOR").await, (0, 0, 4));
    // Both wrong at once: both named.
    let (status, body) = reserve_units(&app, id, "u2", &["BOX1"], &[("VIP", 3)]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["seats"], json!(["BOX1"]));
    assert_eq!(body["tiers"][0]["code"], "VIP");
    // Everything free: one hold of a box seat and two floor passes.
    let (status, body) = reserve_units(&app, id, "u2", &["BOX2"], &[("FLOOR", 2)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["seatCodes"], json!(["BOX2"]));
    assert_eq!(body["tiers"], json!([{"code": "FLOOR", "quantity": 2}]));
    assert_eq!(app.counts(id).await, (0, 2, 0));
    assert_eq!(tier_counts(&app, id, "FLOOR").await, (0, 2, 2));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn confirm_release_and_cancel_move_units_and_prices_include_them(pg: PgPool) {
    let app = TestApp::new(pg.clone()).await;
    let id = create_tier_event(
        &app,
        json!({"seats": [{"code": "BOX1", "price": 100}],
               "tiers": [{"code": "FLOOR", "name": "Floor", "price": 20.5, "capacity": 4}]}),
    )
    .await;
    let (status, body) = reserve_units(&app, id, "u1", &["BOX1"], &[("FLOOR", 2)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hold = body["holdGroupId"].as_str().expect("id").to_string();
    let (status, body) = app.confirm(id, "u1", &hold).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["seatCodes"], json!(["BOX1"]));
    assert_eq!(body["tiers"], json!([{"code": "FLOOR", "quantity": 2}]));
    assert_eq!(body["totalPrice"], json!(141.0));
    // A repeat returns the same booking.
    let (status, again) = app.confirm(id, "u1", &hold).await;
    assert_eq!(
        (status, again["tiers"].clone()),
        (StatusCode::OK, body["tiers"].clone())
    );
    assert_eq!(tier_counts(&app, id, "FLOOR").await, (2, 0, 2));
    assert_eq!(sold_in_postgres(&pg, id, "FLOOR").await, 2);
    let (status, booking) = app.get(&format!("/bookings/{hold}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        booking["tiers"],
        json!([{"code": "FLOOR", "name": "Floor", "quantity": 2, "price": 20.5}])
    );
    assert_eq!(booking["totalPrice"], json!(141.0));

    // Release gives units back at once.
    let other = hold_units(&app, id, "u2", "FLOOR", 2).await;
    assert_eq!(tier_counts(&app, id, "FLOOR").await, (2, 2, 0));
    assert_eq!(app.release(id, "u2", &other).await.0, StatusCode::OK);
    assert_eq!(tier_counts(&app, id, "FLOOR").await, (2, 0, 2));
    assert_eq!(app.confirm(id, "u2", &other).await.0, StatusCode::GONE);

    // Cancel gives the booking's units back at once, in Postgres and to new holds.
    let (status, _) = app
        .post(&format!("/bookings/{hold}/cancel"), json!({"userId": "u1"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sold_in_postgres(&pg, id, "FLOOR").await, 0);
    assert_eq!(tier_counts(&app, id, "FLOOR").await, (0, 0, 4));
    let all = hold_units(&app, id, "u3", "FLOOR", 4).await;
    assert_eq!(app.confirm(id, "u3", &all).await.0, StatusCode::OK);
    assert_eq!(sold_in_postgres(&pg, id, "FLOOR").await, 4);
    let (status, body) = reserve_units(&app, id, "u4", &[], &[("FLOOR", 1)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["tiers"][0]["available"], 0);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn expired_tier_holds_give_their_units_back(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| s.holds.ttl_seconds = 2);
    let id = ga_event(&app, 3).await;
    let gone = hold_units(&app, id, "u1", "GA", 3).await;
    assert_eq!(tier_counts(&app, id, "GA").await, (0, 3, 0));
    tokio::time::sleep(Duration::from_millis(2200)).await;
    // No hold has trimmed the expired one yet: the counts already ignore it.
    assert_eq!(tier_counts(&app, id, "GA").await, (0, 0, 3));
    assert_eq!(app.confirm(id, "u1", &gone).await.0, StatusCode::GONE);
    let fresh = hold_units(&app, id, "u2", "GA", 3).await;
    assert_eq!(app.confirm(id, "u2", &fresh).await.0, StatusCode::OK);
    assert_eq!(tier_counts(&app, id, "GA").await, (3, 0, 0));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn caps_count_tier_units_as_seats(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| s.limits.max_seats_per_user = Some(4));
    let id = create_tier_event(
        &app,
        json!({"totalSeats": 5, "tiers": [{"code": "GA", "capacity": 50}]}),
    )
    .await;
    let first = hold_units(&app, id, "u1", "GA", 3).await;
    let (status, body) = reserve_units(&app, id, "u1", &["S1"], &[("GA", 1)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        (
            body["code"].clone(),
            body["current"].clone(),
            body["limit"].clone()
        ),
        (json!("USER_LIMIT_REACHED"), json!(3), json!(4))
    );
    assert_eq!(app.confirm(id, "u1", &first).await.0, StatusCode::OK);
    let (status, body) = reserve_units(&app, id, "u1", &["S1"], &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = reserve_units(&app, id, "u1", &[], &[("GA", 1)]).await;
    assert_eq!(
        (status, body["current"].clone()),
        (StatusCode::CONFLICT, json!(4))
    );
    // Another buyer is not affected.
    hold_units(&app, id, "u2", "GA", 4).await;
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_keyed_tier_hold_is_taken_once(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = ga_event(&app, 10).await;
    let body = json!({"userId": "u1", "tiers": [{"code": "GA", "quantity": 4}]}).to_string();
    let path = format!("/events/{id}/seats/reserve");
    let headers = [("Idempotency-Key", "ga-key-1")];
    let (s1, _, b1) = app
        .call_raw("POST", &path, Some(body.clone()), &headers)
        .await;
    let (s2, _, b2) = app.call_raw("POST", &path, Some(body), &headers).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(b1, b2, "the retry gets the first answer");
    assert_eq!(tier_counts(&app, id, "GA").await, (0, 4, 6));
}
