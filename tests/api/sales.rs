//! Sales windows and channels: a hold outside the window of its seats is refused (not open /
//! closed, in Redis and in Postgres), a window opening under a storm of holds lets none through
//! before its first millisecond and many in its first second, channel seats are held only by
//! their channel (named or by best-available, in Redis and in Postgres), and PATCH /
//! PUT validate what they are given.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::join_all;
use seatlock::domain::holds::HoldStore;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::best::best;
use crate::support::{TestApp, redis_url};

/// Now plus `ms`, to the millisecond (what Postgres and the responses keep).
pub fn in_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis() + ms).expect("in range")
}

pub fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a timestamp"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

pub async fn patch(app: &TestApp, event: i64, body: Value) -> (StatusCode, Value) {
    app.call("PATCH", &format!("/events/{event}"), Some(body))
        .await
}

pub async fn put_channels(app: &TestApp, event: i64, channels: Value) -> (StatusCode, Value) {
    app.call(
        "PUT",
        &format!("/events/{event}/channels"),
        Some(json!({"channels": channels})),
    )
    .await
}

/// An event of rows A and B, `seats` each.
pub async fn create_rows_event(app: &TestApp, seats: u32, extra: Value) -> i64 {
    let mut body = json!({"name": "Gig", "date": "2030-01-10T18:00:00Z", "location": "Hall",
        "rows": [{"name": "A", "seats": seats}, {"name": "B", "seats": seats}]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (status, body) = app.post("/events", body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["eventId"].as_i64().expect("eventId")
}

async fn reserve_in(
    app: &TestApp,
    event: i64,
    channel: Option<&str>,
    seats: &[&str],
) -> (StatusCode, Value) {
    let mut body = json!({"userId": "u", "seatCodes": seats});
    if let Some(c) = channel {
        body["channel"] = json!(c);
    }
    app.post(&format!("/events/{event}/seats/reserve"), body)
        .await
}

fn backends() -> [HoldStore; 2] {
    [HoldStore::Redis, HoldStore::Postgres]
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_hold_outside_the_sales_window_is_refused_and_its_confirm_is_not(pg: PgPool) {
    for backend in backends() {
        let app = TestApp::with(pg.clone(), &redis_url(), |s| s.holds.backend = backend);
        let opens = in_ms(3_600_000);
        let id = create_rows_event(&app, 4, json!({"salesStart": at(opens)})).await;
        let e = app.event(id).await;
        assert_eq!(parse(&e["salesStart"]), opens, "{backend:?}");
        assert!(e["salesEnd"].is_null());
        // Not open: named seats, tier-free best-available, both with opensAt.
        let (status, body) = app.reserve(id, "u1", &["A1"]).await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend:?} {body}");
        assert_eq!(body["code"], "SALES_NOT_OPEN");
        assert_eq!(parse(&body["opensAt"]), opens);
        let (status, body) = best(&app, id, "u1", json!({"count": 2})).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::CONFLICT, Some("SALES_NOT_OPEN")),
            "{backend:?} {body}"
        );
        assert_eq!(parse(&body["opensAt"]), opens);
        // Unknown seats are still 404 first.
        assert_eq!(
            app.reserve(id, "u1", &["Z9"]).await.0,
            StatusCode::NOT_FOUND
        );
        // Open now, closing in an hour: held.
        let closes = in_ms(3_600_000);
        let started = in_ms(-60_000);
        let (status, body) = patch(
            &app,
            id,
            json!({"salesStart": at(started), "salesEnd": at(closes)}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(parse(&body["salesEnd"]), closes);
        let hold = app.hold(id, "u1", &["A1"]).await;
        // Closed a moment ago (salesStart kept): refused, and the hold taken inside confirms.
        let closed = in_ms(-1000);
        let (status, body) = patch(&app, id, json!({"salesEnd": at(closed)})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(parse(&body["salesStart"]), started, "left out: kept");
        let (status, body) = app.reserve(id, "u2", &["A2"]).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::CONFLICT, Some("SALES_CLOSED")),
            "{backend:?} {body}"
        );
        assert_eq!(parse(&body["closedAt"]), closed);
        assert_eq!(app.confirm(id, "u1", &hold).await.0, StatusCode::OK);
        // null removes a bound: open again.
        let (status, body) = patch(&app, id, json!({"salesEnd": null, "salesStart": null})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["salesStart"].is_null() && body["salesEnd"].is_null());
        app.hold(id, "u2", &["A2"]).await;
    }
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_patch_is_checked(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(2).await;
    let start = in_ms(7_200_000);
    let (status, _) = patch(&app, id, json!({"salesStart": at(start)})).await;
    assert_eq!(status, StatusCode::OK);
    for body in [
        json!({"salesEnd": at(start - chrono::Duration::hours(1))}),
        json!({"salesEnd": at(start)}),
        json!({"salesStart": "tomorrow"}),
        json!({"queueitEventId": "has space"}),
        json!({"name": "renamed"}),
    ] {
        let (status, err) = patch(&app, id, body.clone()).await;
        assert_eq!(
            (status, err["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("VALIDATION_FAILED")),
            "{body} -> {err}"
        );
    }
    let (status, body) = patch(&app, id, json!({"queueitEventId": "coldplay2030"})).await;
    assert_eq!(
        (status, body["queueitEventId"].as_str()),
        (StatusCode::OK, Some("coldplay2030"))
    );
    assert_eq!(
        patch(&app, 999_999, json!({})).await.0,
        StatusCode::NOT_FOUND
    );
    // At creation too.
    let (status, _) = app
        .post(
            "/events",
            json!({"name": "x", "date": "2030-01-10T18:00:00Z", "location": "y",
            "totalSeats": 2, "salesStart": at(start), "salesEnd": at(start)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Seats of a channel are held only by a caller in it (the body's `channel` in none mode);
/// best-available gives the public only open seats and a channel's caller its seats or open
/// ones; a channel's own window applies to its seats; moving a seat leaves its hold alone.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn channel_seats_are_held_only_by_their_channel(pg: PgPool) {
    for backend in backends() {
        let app = TestApp::with(pg.clone(), &redis_url(), |s| s.holds.backend = backend);
        let id = create_rows_event(&app, 4, json!({})).await;
        let (status, body) = put_channels(
            &app,
            id,
            json!([
                {"code": "presale", "seatCodes": ["A1", "A2", "A3", "A4"]},
                {"code": "partner", "seatCodes": ["B4"]}
            ]),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["channels"][0]["seatCodes"],
            json!(["A1", "A2", "A3", "A4"])
        );
        // The public: refused on channel seats (listed), held on open ones.
        let (status, body) = reserve_in(&app, id, None, &["A1", "B1"]).await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend:?} {body}");
        assert_eq!(
            (body["code"].as_str(), body["seats"].clone()),
            (Some("SEATS_UNAVAILABLE"), json!(["A1"]))
        );
        assert_eq!(
            reserve_in(&app, id, Some("partner"), &["A1"]).await.0,
            StatusCode::CONFLICT
        );
        let (status, body) = reserve_in(&app, id, Some("presale"), &["A1", "B1"]).await;
        assert_eq!(status, StatusCode::OK, "{backend:?} {body}");
        // Best-available: the public gets B2+B3 (open), never presale's A row.
        let (status, body) = best(&app, id, "p1", json!({"count": 2})).await;
        assert_eq!(
            (status, body["seatCodes"].clone()),
            (StatusCode::OK, json!(["B2", "B3"])),
            "{backend:?} {body}"
        );
        let (status, body) = best(&app, id, "p2", json!({"count": 2})).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::CONFLICT, Some("NO_ADJACENT_SEATS")),
            "{backend:?} {body}"
        );
        let (status, body) = app
            .post(
                &format!("/events/{id}/seats/reserve"),
                json!({"userId": "c1", "channel": "presale", "bestAvailable": {"count": 2}}),
            )
            .await;
        assert_eq!(
            (status, body["seatCodes"].clone()),
            (StatusCode::OK, json!(["A2", "A3"])),
            "{backend:?} {body}"
        );
        // The seat map and the counts show channels to the trusted caller.
        let (_, map) = app.get(&format!("/events/{id}/seats")).await;
        assert_eq!(map["seats"][0]["channel"], "presale");
        assert!(map["seats"][4].get("channel").is_none(), "B1 is open");
        let e = app.event(id).await;
        assert_eq!(
            e["channels"][0],
            json!({"code": "presale", "salesStart": null, "salesEnd": null,
            "seats": 4, "confirmed": 0, "held": 3, "blocked": 0, "available": 1, "tiers": []}),
            "{backend:?}"
        );
        assert_eq!(e["heldSeats"], 6);
        // A channel's own window: presale open, the event not yet.
        let later = in_ms(3_600_000);
        let (status, _) = patch(&app, id, json!({"salesStart": at(later)})).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = put_channels(&app, id, json!([
            {"code": "presale", "seatCodes": ["A1", "A2", "A3", "A4"], "salesStart": at(in_ms(-3_600_000))}
        ])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = reserve_in(&app, id, Some("presale"), &["A4"]).await;
        assert_eq!(status, StatusCode::OK, "{backend:?} {body}");
        let (status, body) = reserve_in(&app, id, Some("presale"), &["B4"]).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::CONFLICT, Some("SALES_NOT_OPEN")),
            "{backend:?} {body}"
        );
        // Moving held seats out of their channel leaves the holds alone.
        let (status, _) = put_channels(&app, id, json!([])).await;
        assert_eq!(status, StatusCode::OK);
        let statuses = app.seat_statuses(id).await;
        assert_eq!(statuses["A1"], "HELD");
        assert_eq!(statuses["A4"], "HELD");
        let (status, body) = patch(&app, id, json!({"salesStart": null})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("channels").is_none(), "no channels now: {body}");
        app.hold(id, "u9", &["B4"]).await;
    }
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_channel_set_is_checked(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = create_rows_event(&app, 2, json!({})).await;
    for channels in [
        json!([{"code": "a", "seatCodes": ["A1"]}, {"code": "b", "seatCodes": ["A1"]}]),
        json!([{"code": "a"}, {"code": "a"}]),
        json!([{"code": "bad code"}]),
        json!([{"code": "a", "salesStart": "2030-02-01T00:00:00Z", "salesEnd": "2030-01-01T00:00:00Z"}]),
        json!([{"code": "a", "tiers": [{"code": "GA", "quantity": 0}]}]),
    ] {
        let (status, err) = put_channels(&app, id, channels.clone()).await;
        assert_eq!(
            (status, err["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("VALIDATION_FAILED")),
            "{channels} -> {err}"
        );
    }
    let (status, err) =
        put_channels(&app, id, json!([{"code": "a", "seatCodes": ["A1", "Q7"]}])).await;
    assert_eq!(
        (status, err["code"].as_str(), err["seats"].clone()),
        (
            StatusCode::NOT_FOUND,
            Some("SEATS_NOT_FOUND"),
            json!(["Q7"])
        )
    );
    assert_eq!(
        put_channels(&app, 999_999, json!([])).await.0,
        StatusCode::NOT_FOUND
    );
    // Nothing changed by the refusals.
    let (status, body) = reserve_in(&app, id, None, &["A1"]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // At creation: channels naming unknown seats are a 400 there.
    let (status, _) = app
        .post(
            "/events",
            json!({"name": "x", "date": "2030-01-10T18:00:00Z", "location": "y",
            "totalSeats": 2, "channels": [{"code": "a", "seatCodes": ["S9"]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = app
        .post(
            "/events",
            json!({"name": "x", "date": "2030-01-10T18:00:00Z", "location": "y",
            "totalSeats": 2, "channels": [{"code": "a", "seatCodes": ["S2"]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let created = body["eventId"].as_i64().expect("id");
    assert_eq!(
        reserve_in(&app, created, None, &["S2"]).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        reserve_in(&app, created, Some("a"), &["S2"]).await.0,
        StatusCode::OK
    );
}

/// A window opening under 64 concurrent buyers: no hold is taken before `salesStart` (each
/// hold's start, by the Redis clock, is at or after it), and holds are taken from its first
/// second.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_window_opening_under_a_storm_lets_nothing_in_early(pg: PgPool) {
    let app = Arc::new(TestApp::with(pg, &redis_url(), |s| {
        s.holds.ttl_seconds = 300
    }));
    let opens = in_ms(1500);
    let seats = 64 * 40;
    let (status, body) = app
        .post(
            "/events",
            json!({"name": "On-sale", "date": "2030-01-10T18:00:00Z", "location": "Arena",
            "totalSeats": seats, "salesStart": at(opens)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["eventId"].as_i64().expect("id");
    let until = opens + chrono::Duration::milliseconds(1000);
    let tasks = (0..64).map(|w| {
        let app = app.clone();
        tokio::spawn(async move {
            // Retries until a second after the opening, however fast the machine: the next
            // seat is tried only after a hold, so the 40 seats are never used up early.
            let mut seen = Vec::new();
            let mut taken = 0;
            while taken < 40 && Utc::now() < until {
                let seat = format!("S{}", w * 40 + taken + 1);
                let (status, body) = app.reserve(id, &format!("b{w}"), &[&seat]).await;
                let done = Utc::now();
                if status == StatusCode::OK {
                    taken += 1;
                }
                let refused = status == StatusCode::CONFLICT;
                seen.push((status, body, done));
                if refused {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            seen
        })
    });
    let mut early_refusals = 0;
    let mut held = 0;
    for seen in join_all(tasks).await {
        for (status, body, done) in seen.expect("task") {
            match status {
                StatusCode::OK => {
                    // The hold's start by the Redis clock: its expiry less the TTL.
                    let taken = parse(&body["expiresAt"]) - chrono::Duration::seconds(300);
                    assert!(taken >= opens, "a hold taken at {taken} before {opens}");
                    held += 1;
                }
                StatusCode::CONFLICT => {
                    assert_eq!(body["code"], "SALES_NOT_OPEN", "{body}");
                    assert!(
                        done < opens + chrono::Duration::milliseconds(1000),
                        "refused long after opening: {body}"
                    );
                    early_refusals += 1;
                }
                other => panic!("{other}: {body}"),
            }
        }
    }
    assert!(
        early_refusals >= 64,
        "the storm started before the opening: {early_refusals}"
    );
    assert!(held >= 64, "holds in the first second: {held}");
}
