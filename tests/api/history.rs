//! Every seat's history: what each operation records, the pages a consumer loops on, that the
//! history replays exactly to the seat map (and to the tier counts) once the service has been
//! quiet for `history.flush_ms`, in Redis, in the Postgres-only mode and across a restart, and
//! that a refusal records nothing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::{TestApp, jwt, redis_url, token_mode};

/// A short flush, so the tests wait little; 2 s holds where expiry is watched.
fn quick(s: &mut seatlock::config::Settings) {
    s.history.flush_ms = 200;
}

/// Every change of the event, following `nextAfter` page by page.
pub async fn all_changes(app: &TestApp, event: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0;
    // Small pages first (several pages even for a short history), then large ones, so a long
    // history is read before the short holds of the tests that watch expiry end.
    let mut limit = 7;
    loop {
        let (status, page) = app
            .get(&format!(
                "/events/{event}/changes?after={after}&limit={limit}"
            ))
            .await;
        if out.len() >= 21 {
            limit = 1000;
        }
        assert_eq!(status, StatusCode::OK, "{page}");
        let changes = page["changes"].as_array().expect("changes").clone();
        let next = page["nextAfter"].as_i64().expect("nextAfter");
        if changes.is_empty() {
            assert_eq!(next, after, "nextAfter stays when nothing is new");
            return out;
        }
        assert_eq!(
            next,
            changes.last().expect("last")["seq"].as_i64().expect("seq")
        );
        after = next;
        out.extend(changes);
    }
}

/// The seat statuses and tier (held, confirmed) counts a history replays to.
fn replay(changes: &[Value]) -> (HashMap<String, String>, HashMap<String, (i64, i64)>) {
    let mut seats = HashMap::new();
    let mut tiers: HashMap<String, (i64, i64)> = HashMap::new();
    for c in changes {
        if let Some(code) = c["seatCode"].as_str() {
            seats.insert(
                code.to_string(),
                c["status"].as_str().expect("status").to_string(),
            );
            continue;
        }
        let code = c["tierCode"]
            .as_str()
            .expect("a seat or a tier")
            .to_string();
        let q = c["quantity"].as_i64().expect("quantity");
        let t = tiers.entry(code).or_default();
        match c["change"].as_str().expect("change") {
            "HELD" => t.0 += q,
            "RELEASED" | "EXPIRED" => t.0 -= q,
            "BOOKED" => {
                t.0 -= q;
                t.1 += q;
            }
            "CANCELLED" => t.1 -= q,
            _ => {}
        }
    }
    (seats, tiers)
}

/// Waits (up to 5 s) until the history replays to the seat map and the tier counts, and
/// returns the history.
pub async fn replayed_exactly(app: &TestApp, event: i64) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let changes = all_changes(app, event).await;
        let (mut seats, tiers) = replay(&changes);
        let map = app.seat_statuses(event).await;
        for code in map.keys() {
            seats
                .entry(code.clone())
                .or_insert_with(|| "AVAILABLE".into());
        }
        let detail = app.event(event).await;
        let live_tiers: HashMap<String, (i64, i64)> = detail["tiers"]
            .as_array()
            .expect("tiers")
            .iter()
            .map(|t| {
                let n = |k: &str| t[k].as_i64().expect(k);
                (
                    t["code"].as_str().expect("code").to_string(),
                    (n("held"), n("confirmed")),
                )
            })
            .collect();
        let replayed_tiers: HashMap<String, (i64, i64)> = live_tiers
            .keys()
            .map(|k| (k.clone(), tiers.get(k).copied().unwrap_or_default()))
            .collect();
        if seats == map && replayed_tiers == live_tiers {
            return changes;
        }
        assert!(
            Instant::now() < deadline,
            "history replays to {seats:?} / {replayed_tiers:?}, the service shows {map:?} / {live_tiers:?}; history: {changes:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The changes of one seat, oldest first, as (change, status).
fn of_seat<'a>(changes: &'a [Value], seat: &str) -> Vec<(&'a str, &'a str)> {
    changes
        .iter()
        .filter(|c| c["seatCode"] == seat)
        .map(|c| {
            (
                c["change"].as_str().expect("change"),
                c["status"].as_str().expect("status"),
            )
        })
        .collect()
}

async fn ga_event(app: &TestApp, seats: u32) -> i64 {
    let (status, body) = app
        .post(
            "/events",
            json!({"name": "Gig", "date": "2030-01-10T18:00:00Z", "location": "Hall",
                   "totalSeats": seats, "tiers": [{"code": "GA", "capacity": 10, "price": 20}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["eventId"].as_i64().expect("eventId")
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn every_change_is_recorded_once_in_order_and_replays_to_the_seat_map(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        quick(s);
        s.holds.ttl_seconds = 2;
        s.holds.max_lifetime_seconds = 60;
    });
    let _workers = app.start_workers();
    let id = ga_event(&app, 6).await;
    // S1 booked; S2 released; S3 extended and left to expire; S4 booked then cancelled; tier
    // units held and booked; S5 taken with an Idempotency-Key twice; S6 held at the end.
    let h1 = app.hold(id, "u1", &["S1"]).await;
    assert_eq!(app.confirm(id, "u1", &h1).await.0, StatusCode::OK);
    let h2 = app.hold(id, "u2", &["S2"]).await;
    assert_eq!(app.release(id, "u2", &h2).await.0, StatusCode::OK);
    let h3 = app.hold(id, "u3", &["S3"]).await;
    let (status, body) = app
        .post(
            &format!("/events/{id}/seats/extend"),
            json!({"userId": "u3", "holdGroupId": h3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post(
            &format!("/events/{id}/seats/reserve"),
            json!({"userId": "u4", "seatCodes": ["S4"], "tiers": [{"code": "GA", "quantity": 3}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let h4 = body["holdGroupId"].as_str().expect("id").to_string();
    assert_eq!(app.confirm(id, "u4", &h4).await.0, StatusCode::OK);
    let (status, body) = app
        .post(&format!("/bookings/{h4}/cancel"), json!({"userId": "u4"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let keyed = json!({"userId": "u5", "seatCodes": ["S5"]}).to_string();
    for _ in 0..2 {
        let (status, _, body) = app
            .call_raw(
                "POST",
                &format!("/events/{id}/seats/reserve"),
                Some(keyed.clone()),
                &[("idempotency-key", "k-5")],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    }
    app.hold(id, "u6", &["S6"]).await;

    // S3's hold runs out (extended to 2 s from its extension).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let changes = replayed_exactly(&app, id).await;
    let seqs: Vec<i64> = changes
        .iter()
        .map(|c| c["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "numbered 1..n"
    );
    assert_eq!(
        of_seat(&changes, "S1"),
        [("HELD", "HELD"), ("BOOKED", "BOOKED")]
    );
    assert_eq!(
        of_seat(&changes, "S2"),
        [("HELD", "HELD"), ("RELEASED", "AVAILABLE")]
    );
    assert_eq!(
        of_seat(&changes, "S3"),
        [
            ("HELD", "HELD"),
            ("EXTENDED", "HELD"),
            ("EXPIRED", "AVAILABLE")
        ]
    );
    assert_eq!(
        of_seat(&changes, "S4"),
        [
            ("HELD", "HELD"),
            ("BOOKED", "BOOKED"),
            ("CANCELLED", "AVAILABLE")
        ]
    );
    // The keyed replay recorded nothing; S5 expired like S3 (2 s), S6 too.
    assert_eq!(
        of_seat(&changes, "S5"),
        [("HELD", "HELD"), ("EXPIRED", "AVAILABLE")]
    );
    let ga: Vec<(&str, i64)> = changes
        .iter()
        .filter(|c| c["tierCode"] == "GA")
        .map(|c| {
            (
                c["change"].as_str().expect("change"),
                c["quantity"].as_i64().expect("q"),
            )
        })
        .collect();
    assert_eq!(ga, [("HELD", 3), ("BOOKED", 3), ("CANCELLED", 3)]);
    // Fields: who, which hold, the booking when booked or cancelled, the expiry when held.
    let booked = changes
        .iter()
        .find(|c| c["seatCode"] == "S1" && c["change"] == "BOOKED")
        .expect("S1 booked");
    assert_eq!(booked["holdGroupId"], h1.as_str());
    assert_eq!(booked["bookingGroupId"], h1.as_str());
    assert_eq!(booked["userId"], "u1");
    assert_eq!(booked["expiresAt"], Value::Null);
    assert_eq!(booked["tierCode"], Value::Null);
    let held = changes
        .iter()
        .find(|c| c["seatCode"] == "S2")
        .expect("S2 held");
    assert!(
        held["expiresAt"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{held}"
    );
    assert_eq!(held["bookingGroupId"], Value::Null);
    let extended = changes
        .iter()
        .find(|c| c["change"] == "EXTENDED")
        .expect("extended");
    assert!(extended["expiresAt"].as_str() > held["expiresAt"].as_str());
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn pages_and_a_seats_history_follow_their_contract(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), quick);
    let _workers = app.start_workers();
    let id = app.create_event(3).await;
    for user in ["u1", "u2", "u3"] {
        let h = app.hold(id, user, &["S1"]).await;
        assert_eq!(app.release(id, user, &h).await.0, StatusCode::OK);
    }
    app.hold(id, "u4", &["S2"]).await;
    let changes = replayed_exactly(&app, id).await;
    assert_eq!(changes.len(), 7);
    let (status, page) = app
        .get(&format!("/events/{id}/changes?after=2&limit=3"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["eventId"], id);
    let seqs: Vec<i64> = page["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, [3, 4, 5]);
    assert_eq!(page["nextAfter"], 5);
    let (_, page) = app.get(&format!("/events/{id}/changes?after=99")).await;
    assert_eq!(page["changes"], json!([]));
    assert_eq!(page["nextAfter"], 99);

    let (status, body) = app
        .get(&format!("/events/{id}/seats/S1/history?limit=2"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["seatCode"], "S1");
    assert_eq!(body["eventId"], id);
    let newest: Vec<(&str, &str)> = body["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["change"].as_str().expect("c"),
                c["userId"].as_str().expect("u"),
            )
        })
        .collect();
    assert_eq!(newest, [("RELEASED", "u3"), ("HELD", "u3")], "newest first");
    let (_, body) = app.get(&format!("/events/{id}/seats/S3/history")).await;
    assert_eq!(
        body["changes"],
        json!([]),
        "a seat never changed has an empty history"
    );

    for bad in ["limit=0", "limit=1001", "limit=x", "after=-1"] {
        let (status, body) = app.get(&format!("/events/{id}/changes?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["code"], "VALIDATION_FAILED", "{bad}");
    }
    let (status, body) = app
        .get(&format!("/events/{id}/seats/S1/history?limit=0"))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("VALIDATION_FAILED"))
    );
    let (status, body) = app.get("/events/99999/changes").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("EVENT_NOT_FOUND"))
    );
    let (status, body) = app.get(&format!("/events/{id}/seats/NOPE/history")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("SEATS_NOT_FOUND"))
    );
    assert_eq!(body["seats"], json!(["NOPE"]));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn the_history_is_for_admins_and_service_keys_not_buyers(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), token_mode);
    let admin = jwt("boss", json!({"role": "admin"}));
    let id = app.create_event_as(&admin, 2).await;
    let key = app
        .api_key("checkout", seatlock::domain::access::KeyRole::Service)
        .await;
    for path in [
        format!("/events/{id}/changes"),
        format!("/events/{id}/seats/S1/history"),
    ] {
        assert_eq!(
            app.call_as(&admin, "GET", &path, None).await.0,
            StatusCode::OK,
            "{path}"
        );
        assert_eq!(
            app.call_as(&key, "GET", &path, None).await.0,
            StatusCode::OK,
            "{path}"
        );
        let buyer = jwt("u1", json!({}));
        let (status, _, body) = app.call_as(&buyer, "GET", &path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(body["code"], "FORBIDDEN");
        assert_eq!(
            app.call_raw("GET", &path, None, &[]).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn the_postgres_only_mode_records_holds_releases_expiries_and_sales(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        quick(s);
        s.holds.backend = seatlock::domain::holds::HoldStore::Postgres;
        s.holds.ttl_seconds = 2;
        s.holds.max_lifetime_seconds = 60;
    });
    let _workers = app.start_workers();
    let id = ga_event(&app, 4).await;
    let h1 = app.hold(id, "u1", &["S1"]).await;
    assert_eq!(app.confirm(id, "u1", &h1).await.0, StatusCode::OK);
    let h2 = app.hold(id, "u2", &["S2"]).await;
    assert_eq!(app.release(id, "u2", &h2).await.0, StatusCode::OK);
    let h3 = app.hold(id, "u3", &["S3"]).await;
    let (status, body) = app
        .post(
            &format!("/events/{id}/seats/extend"),
            json!({"userId": "u3", "holdGroupId": h3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app
        .post(&format!("/bookings/{h1}/cancel"), json!({"userId": "u1"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .post(
            &format!("/events/{id}/seats/reserve"),
            json!({"userId": "u4", "tiers": [{"code": "GA", "quantity": 2}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let changes = replayed_exactly(&app, id).await;
    assert_eq!(
        of_seat(&changes, "S1"),
        [
            ("HELD", "HELD"),
            ("BOOKED", "BOOKED"),
            ("CANCELLED", "AVAILABLE")
        ]
    );
    assert_eq!(
        of_seat(&changes, "S2"),
        [("HELD", "HELD"), ("RELEASED", "AVAILABLE")]
    );
    assert_eq!(
        of_seat(&changes, "S3"),
        [
            ("HELD", "HELD"),
            ("EXTENDED", "HELD"),
            ("EXPIRED", "AVAILABLE")
        ]
    );
    let ga: Vec<&str> = changes
        .iter()
        .filter(|c| c["tierCode"] == "GA")
        .map(|c| c["change"].as_str().expect("c"))
        .collect();
    assert_eq!(ga, ["HELD", "EXPIRED"]);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn changes_made_before_a_restart_are_recorded_after_it(pg: PgPool) {
    // The first instance takes holds and sells, and stops before any flush ran.
    let before = TestApp::with(pg.clone(), &redis_url(), quick);
    let id = ga_event(&before, 4).await;
    let h1 = before.hold(id, "u1", &["S1", "S2"]).await;
    assert_eq!(before.confirm(id, "u1", &h1).await.0, StatusCode::OK);
    before.hold(id, "u2", &["S3"]).await;
    let prefix = before.prefix().to_string();
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM seat_changes WHERE seq IS NULL")
        .fetch_one(&pg)
        .await
        .expect("count");
    assert_eq!(
        pending, 2,
        "the booking's rows wait in Postgres, unnumbered"
    );
    // A new instance over the same stores finds the rest in the Redis stream.
    let after = TestApp::with(pg, &redis_url(), |s| {
        quick(s);
        s.redis.key_prefix = prefix;
    });
    let _workers = after.start_workers();
    let changes = replayed_exactly(&after, id).await;
    assert_eq!(
        of_seat(&changes, "S1"),
        [("HELD", "HELD"), ("BOOKED", "BOOKED")]
    );
    assert_eq!(of_seat(&changes, "S3"), [("HELD", "HELD")]);
    drop(before);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_refusal_records_nothing_and_a_hold_queries_postgres_never(pg: PgPool) {
    // The service's own pool, closed once the event is cached: a hold, a refusal or a release
    // that asked Postgres anything would fail.
    let own = sqlx::postgres::PgPoolOptions::new()
        .connect_with((*pg.connect_options()).clone())
        .await
        .expect("own pool");
    let app = TestApp::with(own.clone(), &redis_url(), quick);
    let id = app.create_event(2).await;
    app.hold(id, "u1", &["S1"]).await;
    own.close().await;
    for i in 0..50 {
        let (status, body) = app.reserve(id, &format!("b{i}"), &["S1"]).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
    }
    for i in 0..5 {
        let user = format!("c{i}");
        let h = app.hold(id, &user, &["S2"]).await;
        assert_eq!(app.release(id, &user, &h).await.0, StatusCode::OK);
    }
    // Another instance, with Postgres, records what the Redis stream kept.
    let prefix = app.prefix().to_string();
    let recorder = TestApp::with(pg, &redis_url(), |s| {
        quick(s);
        s.redis.key_prefix = prefix;
    });
    let _workers = recorder.start_workers();
    let changes = replayed_exactly(&recorder, id).await;
    assert_eq!(
        changes.len(),
        1 + 10,
        "one hold, five holds and their releases; no refusal"
    );
    drop(app);
}

/// An instance that registered the events it wrote to and stopped before copying their entries:
/// another instance, already running (its start-up SCAN long done), finds them through the
/// registry it reads every 10 s, not a SCAN of the whole key space; an event whose stream it
/// emptied leaves the registry.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn entries_left_by_a_stopped_instance_are_found_through_the_registry(pg: PgPool) {
    let prefix = format!("registry-{}", uuid::Uuid::new_v4().simple());
    let same = |s: &mut seatlock::config::Settings| {
        quick(s);
        s.redis.key_prefix = prefix.clone();
    };
    let running = TestApp::with(pg.clone(), &redis_url(), same);
    let _workers = running.start_workers();
    // Its start-up SCAN runs at its first round, before anything is written.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped = TestApp::with(pg, &redis_url(), same);
    let id = stopped.create_event(4).await;
    stopped.hold(id, "u1", &["S1"]).await;
    // What its next flush round would have done first, before it stopped.
    let event = seatlock::domain::events::EventId(id);
    stopped
        .state
        .seatlock
        .redis()
        .register_history(&[event])
        .await
        .expect("register");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let changes = all_changes(&running, id).await;
        if of_seat(&changes, "S1") == [("HELD", "HELD")] {
            break;
        }
        assert!(Instant::now() < deadline, "not found: {changes:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let registered = || async {
        let mut conn = running.redis().await;
        redis::cmd("SMEMBERS")
            .arg(format!("{prefix}:hist:events"))
            .query_async::<Vec<i64>>(&mut conn)
            .await
            .expect("smembers")
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while registered().await.contains(&id) {
        assert!(
            Instant::now() < deadline,
            "the flushed event stays registered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A flush that meets a backlog (more than one batch of stream entries) records the expiries
/// its batch's entries passed (by the last one's Redis time), each before the hold that took
/// its seat again.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_backlog_records_each_expiry_before_the_hold_that_took_its_seat(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        s.holds.ttl_seconds = 3;
        s.events.max_seats = 2000;
    });
    let id = app.create_event(1400).await;
    // 500 holds, recorded (open), then left to expire.
    // 64 buyers at once (see the next test).
    let first: Vec<String> = futures::stream::iter(1..=500)
        .map(|i| {
            let app = &app;
            async move { app.hold(id, &format!("a{i}"), &[&format!("S{i}")]).await }
        })
        .buffered(64)
        .collect()
        .await;
    app.state.seatlock.flush_history().await;
    tokio::time::sleep(Duration::from_millis(3300)).await;
    // 1,200 more in one backlog: the first 500 take the expired holds' seats again, so the
    // first batch of 1,000 entries (not the end of the stream) takes seats of expired holds.
    let _: Vec<String> = futures::stream::iter(1..=1200)
        .map(|i| {
            let app = &app;
            async move { app.hold(id, &format!("b{i}"), &[&format!("S{i}")]).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    app.state.seatlock.flush_history().await;
    let changes = replayed_exactly(&app, id).await;
    for i in [1, 250, 500] {
        let seat = format!("S{i}");
        assert_eq!(
            of_seat(&changes, &seat),
            vec![("HELD", "HELD"), ("EXPIRED", "AVAILABLE"), ("HELD", "HELD")],
            "{seat}"
        );
        let holders: Vec<&str> = changes
            .iter()
            .filter(|c| c["seatCode"] == seat.as_str() && c["change"] == "HELD")
            .map(|c| c["holdGroupId"].as_str().expect("holdGroupId"))
            .collect();
        assert_eq!(holders.first().copied(), Some(first[i - 1].as_str()));
    }
    assert_eq!(
        changes.iter().filter(|c| c["change"] == "EXPIRED").count(),
        500
    );
    assert_eq!(
        changes.iter().filter(|c| c["change"] == "HELD").count(),
        1700
    );
}

/// A wave of expiries larger than one flush reads (2,000, the service's `EXPIRY_PAGE`) is
/// recorded page by page, oldest first, and a hold that took a seat of the wave's tail (not in
/// the first page) still comes after that seat's expiry.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_wave_of_expiries_is_recorded_page_by_page_oldest_first(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        s.holds.ttl_seconds = 3;
        s.events.max_seats = 2500;
    });
    let id = app.create_event(2300).await;
    // 64 buyers at once, as a load generator would send them: 2,300 at once queue for the 8
    // Redis connections past `redis.pool_wait_timeout_ms` on a loaded machine, and the breaker
    // sends the rest to Postgres (holds of another store, whose expiries its clock orders).
    let mut held: Vec<(String, String)> = futures::stream::iter(1..=2300)
        .map(|i| {
            let app = &app;
            async move {
                let seat = format!("S{i}");
                let (status, body) = app.reserve(id, &format!("a{i}"), &[&seat]).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                let ends = body["expiresAt"].as_str().expect("expiresAt").to_string();
                (ends, seat)
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    app.state.seatlock.flush_history().await;
    tokio::time::sleep(Duration::from_millis(3300)).await;
    // The 40 holds that end last (past the first page) see their seats taken again.
    held.sort();
    let tail: Vec<String> = held[held.len() - 40..]
        .iter()
        .map(|(_, s)| s.clone())
        .collect();
    // Booked at once: a hold of 3 s could itself expire while a loaded machine checks.
    for (i, seat) in tail.iter().enumerate() {
        let user = format!("b{i}");
        let hold = app.hold(id, &user, &[seat]).await;
        let (status, body) = app.confirm(id, &user, &hold).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    app.state.seatlock.flush_history().await;
    let changes = replayed_exactly(&app, id).await;
    for seat in &tail {
        assert_eq!(
            of_seat(&changes, seat),
            vec![
                ("HELD", "HELD"),
                ("EXPIRED", "AVAILABLE"),
                ("HELD", "HELD"),
                ("BOOKED", "BOOKED")
            ],
            "{seat}: {:#?}",
            changes
                .iter()
                .filter(|c| c["seatCode"] == seat.as_str())
                .collect::<Vec<_>>()
        );
    }
    let expired: Vec<&Value> = changes
        .iter()
        .filter(|c| c["change"] == "EXPIRED")
        .collect();
    assert_eq!(expired.len(), 2300);
    // The other expiries are numbered in the order the holds ended (RFC 3339 in ms, UTC:
    // text order is time order).
    let others: Vec<&Value> = expired
        .into_iter()
        .filter(|c| !tail.iter().any(|s| c["seatCode"] == s.as_str()))
        .collect();
    assert_eq!(others.len(), 2260);
    let at = |c: &Value| c["at"].as_str().expect("at").to_string();
    if let Some(w) = others.windows(2).find(|w| at(w[0]) > at(w[1])) {
        panic!("expiries out of order: {:#} before {:#}", w[0], w[1]);
    }
}
