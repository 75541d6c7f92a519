//! The live seat map (`GET /events/{id}/stream`) over real Redis and Postgres: the snapshot, an
//! update for each kind of change (expiry included), fan-out between two instances, a slow reader,
//! the limits, token mode and shutdown.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt;

use crate::support::{TestApp, jwt, redis_url, token_mode};
use crate::tiers::{create_tier_event, reserve_units};

/// One server-sent event.
#[derive(Debug)]
pub struct Sse {
    pub name: String,
    pub id: Option<String>,
    pub retry: Option<String>,
    pub data: Value,
}

/// Reads a stream's events as they come.
pub struct SseReader {
    body: Body,
    buffer: String,
}

impl SseReader {
    /// Opens the stream of `event` through the router; panics unless it is a 200 event stream.
    pub async fn open(app: &TestApp, event: i64) -> SseReader {
        let (status, reader) = Self::try_open(app, &format!("/events/{event}/stream"), None).await;
        assert_eq!(status, StatusCode::OK);
        reader.expect("a stream")
    }

    pub async fn try_open(
        app: &TestApp,
        path: &str,
        token: Option<&str>,
    ) -> (StatusCode, Option<SseReader>) {
        let mut req = Request::get(path);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let resp = app
            .router
            .clone()
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = resp.status();
        if status != StatusCode::OK {
            return (status, None);
        }
        let kind = resp.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        let reader = SseReader {
            body: resp.into_body(),
            buffer: String::new(),
        };
        (status, Some(reader))
    }

    /// The next event (comments skipped), or None when the stream ended or `wait` passed.
    pub async fn next(&mut self, wait: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut sse = Sse {
                    name: "message".into(),
                    id: None,
                    retry: None,
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        sse.name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    } else if let Some(v) = line.strip_prefix("id:") {
                        sse.id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("retry:") {
                        sse.retry = Some(v.trim().to_string());
                    }
                }
                if data.is_empty() {
                    continue; // a comment (heartbeat)
                }
                sse.data = serde_json::from_str(&data).expect("json data");
                return Some(sse);
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .ok()??;
            let frame = frame.expect("body frame");
            if let Ok(bytes) = frame.into_data() {
                self.buffer
                    .push_str(std::str::from_utf8(&bytes).expect("utf8"));
            }
        }
    }

    /// Reads updates until `done` says the stream shows what it waits for; returns how long it
    /// took. Panics after `wait`.
    pub async fn until(
        &mut self,
        wait: Duration,
        mut done: impl FnMut(&Value) -> bool,
    ) -> Duration {
        let started = Instant::now();
        loop {
            let left = wait.saturating_sub(started.elapsed());
            let Some(sse) = self.next(left).await else {
                panic!("no matching update within {wait:?}");
            };
            if done(&sse.data) {
                return started.elapsed();
            }
        }
    }
}

/// The status an update (or snapshot) gives `code`, if it names it.
pub fn status_of<'a>(data: &'a Value, code: &str) -> Option<&'a str> {
    data["seats"]
        .as_array()?
        .iter()
        .find(|s| s["code"] == code)?["status"]
        .as_str()
}

fn available_of(data: &Value, code: &str) -> Option<i64> {
    data["tiers"]
        .as_array()?
        .iter()
        .find(|t| t["code"] == code)?["available"]
        .as_i64()
}

const SECOND: Duration = Duration::from_secs(1);
/// How long a test waits for an update that normally comes within milliseconds (a loaded CI
/// machine can be far slower); where the delay itself is the contract, the test says so.
const WAIT: Duration = Duration::from_secs(3);

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_stream_starts_with_a_snapshot_then_sends_every_kind_of_change(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| s.holds.ttl_seconds = 2);
    let id = create_tier_event(
        &app,
        json!({"seats": [{"code": "A1", "row": "A", "number": 1, "price": 40},
                         {"code": "A2", "row": "A", "number": 2}, {"code": "B1"}],
               "tiers": [{"code": "GA", "capacity": 5, "price": 12}]}),
    )
    .await;
    let mut stream = SseReader::open(&app, id).await;
    let snapshot = stream.next(WAIT).await.expect("snapshot");
    assert_eq!(snapshot.name, "snapshot");
    assert!(
        snapshot.id.is_some() && snapshot.retry.is_some(),
        "{snapshot:?}"
    );
    // The snapshot is the seat map (plus tiers), exactly as GET /events/{id}/seats shows it.
    let (_, map) = app.get(&format!("/events/{id}/seats")).await;
    assert_eq!(snapshot.data["seats"], map["seats"]);
    assert_eq!(snapshot.data["eventId"], id);
    assert_eq!(snapshot.data["seats"][0]["row"], "A");
    assert_eq!(
        snapshot.data["tiers"],
        json!([{"code": "GA", "name": "GA", "price": 12.0, "capacity": 5, "available": 5}])
    );

    // A hold: the seat turns HELD (with its time left) and the tier's units go down.
    let (status, body) = reserve_units(&app, id, "u1", &["A1"], &[("GA", 2)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hold = body["holdGroupId"].as_str().expect("id").to_string();
    let mut update = Value::Null;
    stream
        .until(WAIT, |d| {
            update = d.clone();
            status_of(d, "A1") == Some("HELD") && available_of(d, "GA") == Some(3)
        })
        .await;
    assert!(
        update["seats"][0]["secondsRemaining"].as_i64() >= Some(1),
        "{update}"
    );
    // Release: free again at once.
    assert_eq!(app.release(id, "u1", &hold).await.0, StatusCode::OK);
    stream
        .until(WAIT, |d| {
            status_of(d, "A1") == Some("AVAILABLE") && available_of(d, "GA") == Some(5)
        })
        .await;
    // Confirm: sold.
    let sold = app.hold(id, "u2", &["A2"]).await;
    assert_eq!(app.confirm(id, "u2", &sold).await.0, StatusCode::OK);
    stream
        .until(WAIT, |d| status_of(d, "A2") == Some("BOOKED"))
        .await;
    // Cancel: free again.
    let (status, _) = app
        .post(&format!("/bookings/{sold}/cancel"), json!({"userId": "u2"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    stream
        .until(WAIT, |d| status_of(d, "A2") == Some("AVAILABLE"))
        .await;
    // Expiry: nobody asks for anything, and still the seat and the units come back.
    let (status, _) = reserve_units(&app, id, "u3", &["B1"], &[("GA", 4)]).await;
    assert_eq!(status, StatusCode::OK);
    stream
        .until(WAIT, |d| {
            status_of(d, "B1") == Some("HELD") && available_of(d, "GA") == Some(1)
        })
        .await;
    let took = stream
        .until(3 * SECOND, |d| {
            status_of(d, "B1") == Some("AVAILABLE") && available_of(d, "GA") == Some(5)
        })
        .await;
    assert!(took < 3 * SECOND);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_change_on_one_instance_reaches_a_subscriber_of_another(pg: PgPool) {
    let one = TestApp::new(pg.clone()).await;
    let prefix = one.prefix().to_string();
    let two = TestApp::with(pg, &redis_url(), |s| s.redis.key_prefix = prefix);
    let id = one.create_event(4).await;
    let mut stream = SseReader::open(&two, id).await;
    assert_eq!(stream.next(WAIT).await.expect("snapshot").name, "snapshot");
    let started = Instant::now();
    one.hold(id, "u1", &["S3"]).await;
    stream
        .until(SECOND, |d| status_of(d, "S3") == Some("HELD"))
        .await;
    assert!(started.elapsed() < SECOND);
    // And the other way round, a sale on the subscriber's own instance.
    let hold = two.hold(id, "u2", &["S4"]).await;
    assert_eq!(two.confirm(id, "u2", &hold).await.0, StatusCode::OK);
    stream
        .until(WAIT, |d| status_of(d, "S4") == Some("BOOKED"))
        .await;
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_reader_that_falls_behind_gets_a_fresh_snapshot_not_the_backlog(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        s.stream.buffer = 2;
        s.stream.coalesce_ms = 10;
    });
    let id = app.create_event(30).await;
    let mut slow = SseReader::open(&app, id).await;
    assert_eq!(slow.next(WAIT).await.expect("snapshot").name, "snapshot");
    let mut fast = SseReader::open(&app, id).await;
    assert_eq!(fast.next(WAIT).await.expect("snapshot").name, "snapshot");
    // Ten changes, each seen by the fast reader before the next: ten updates, and the slow
    // reader (not reading) falls more than 2 behind.
    for n in 1..=10 {
        let seat = format!("S{n}");
        app.hold(id, &format!("u{n}"), &[seat.as_str()]).await;
        fast.until(WAIT, |d| status_of(d, &seat) == Some("HELD"))
            .await;
    }
    let next = slow.next(WAIT).await.expect("an event");
    assert_eq!(next.name, "snapshot", "{next:?}");
    let held = next.data["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .filter(|s| s["status"] == "HELD")
        .count();
    assert_eq!(held, 10, "the fresh snapshot shows the state now");
    let metrics =
        String::from_utf8(app.call_raw("GET", "/metrics", None, &[]).await.2).expect("utf8");
    let resends = metrics
        .lines()
        .find(|l| l.starts_with("seatlock_stream_snapshot_resends_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .expect("resend counter");
    assert!(resends >= 1.0);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn streams_are_limited_found_and_closed_at_shutdown(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| s.stream.max_connections = 1);
    let id = app.create_event(2).await;
    let (status, _) = SseReader::try_open(&app, "/events/999999/stream", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mut first = SseReader::open(&app, id).await;
    assert!(first.next(SECOND).await.is_some());
    let (status, _) = SseReader::try_open(&app, &format!("/events/{id}/stream"), None).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "over stream.max_connections"
    );
    // Shutdown ends the stream cleanly.
    app.state.seatlock.close_streams();
    assert!(first.next(SECOND).await.is_none(), "the stream ended");
    drop(first);
    let (status, _) = SseReader::try_open(&app, &format!("/events/{id}/stream"), None).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "closed for new streams"
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn in_token_mode_a_stream_takes_its_token_from_the_header_or_the_query(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), token_mode);
    let admin = jwt("admin-1", json!({"role": "admin"}));
    let id = app.create_event_as(&admin, 3).await;
    let path = format!("/events/{id}/stream");
    let (status, _) = SseReader::try_open(&app, &path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let buyer = jwt("buyer-1", json!({}));
    let (status, reader) = SseReader::try_open(&app, &path, Some(&buyer)).await;
    assert_eq!(status, StatusCode::OK);
    drop(reader);
    let with_query = format!("{path}?access_token={buyer}");
    let (status, reader) = SseReader::try_open(&app, &with_query, None).await;
    assert_eq!(status, StatusCode::OK);
    let mut reader = reader.expect("stream");
    assert_eq!(reader.next(WAIT).await.expect("snapshot").name, "snapshot");
    let forged = format!("{path}?access_token=nope");
    let (status, _) = SseReader::try_open(&app, &forged, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The query token works on the stream only.
    let (status, _, _) = app
        .call_raw(
            "GET",
            &format!("/events/{id}?access_token={buyer}"),
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// The reads a stream's hub made so far (Postgres seat-map reads, Redis hold reads).
async fn hub_reads(app: &TestApp) -> (f64, f64) {
    let (_, _, body) = app.call_raw("GET", "/metrics", None, &[]).await;
    let text = String::from_utf8(body).expect("utf8");
    let count = |name: &str, label: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains(label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    (
        count(
            "seatlock_postgres_query_duration_seconds_count",
            "op=\"fetch_seat_map\"",
        ),
        count(
            "seatlock_redis_command_duration_seconds_count",
            "op=\"held_list\"",
        ),
    )
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_hold_or_an_extension_reaches_a_stream_without_a_read_and_a_release_is_read(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| s.holds.ttl_seconds = 60);
    let id = app.create_event(30).await;
    let mut stream = SseReader::open(&app, id).await;
    assert_eq!(stream.next(WAIT).await.expect("snapshot").name, "snapshot");
    let before = hub_reads(&app).await;
    // Holds and an extension: each seat shown held, with the time its hold has left.
    let mut holds = Vec::new();
    for i in 1..=20 {
        holds.push(app.hold(id, &format!("u{i}"), &[&format!("S{i}")]).await);
    }
    let (status, body) = app
        .post(
            &format!("/events/{id}/seats/extend"),
            json!({"userId": "u1", "holdGroupId": holds[0]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut shown = std::collections::HashMap::new();
    stream
        .until(WAIT, |d| {
            for s in d["seats"].as_array().into_iter().flatten() {
                shown.insert(s["code"].as_str().unwrap_or("").to_string(), s.clone());
            }
            (1..=20).all(|i| {
                shown
                    .get(&format!("S{i}"))
                    .is_some_and(|s| s["status"] == "HELD")
            })
        })
        .await;
    for i in 1..=20 {
        let left = shown[&format!("S{i}")]["secondsRemaining"].as_i64();
        assert!(
            left.is_some_and(|s| (55..=60).contains(&s)),
            "S{i}: {left:?}"
        );
    }
    assert_eq!(
        hub_reads(&app).await,
        before,
        "holds and extensions are shown from their messages alone"
    );
    // A release names no end: the seat is read, and shown free.
    assert_eq!(app.release(id, "u2", &holds[1]).await.0, StatusCode::OK);
    stream
        .until(WAIT, |d| status_of(d, "S2") == Some("AVAILABLE"))
        .await;
    let after = hub_reads(&app).await;
    assert!(
        after.0 > before.0 && after.1 > before.1,
        "{after:?} {before:?}"
    );
}

/// The other scripts that change seats publish too (`lua/publish.lua`, shared by all of them):
/// a best-available hold (`best.lua`), a block and an unblock (`block.lua`).
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_best_available_hold_and_a_block_reach_a_stream(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| s.holds.ttl_seconds = 60);
    let id = crate::sales::create_rows_event(&app, 4, json!({})).await;
    let mut stream = SseReader::open(&app, id).await;
    assert_eq!(stream.next(WAIT).await.expect("snapshot").name, "snapshot");
    let (status, body) = crate::best::best(&app, id, "u1", json!({"count": 2})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let chosen = crate::best::chosen(&body);
    assert_eq!(chosen.len(), 2, "{body}");
    let mut shown = std::collections::HashMap::new();
    stream
        .until(WAIT, |d| {
            for s in d["seats"].as_array().into_iter().flatten() {
                shown.insert(s["code"].as_str().unwrap_or("").to_string(), s.clone());
            }
            chosen
                .iter()
                .all(|c| shown.get(c).is_some_and(|s| s["status"] == "HELD"))
        })
        .await;
    let free = (1..=4)
        .map(|i| format!("B{i}"))
        .find(|c| !chosen.contains(c))
        .expect("a free seat in row B");
    let (status, body) = app
        .post(
            &format!("/events/{id}/seats/block"),
            json!({"seatCodes": [free], "reason": "camera"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    stream
        .until(WAIT, |d| status_of(d, &free) == Some("BLOCKED"))
        .await;
    let (status, body) = app
        .post(
            &format!("/events/{id}/seats/unblock"),
            json!({"seatCodes": [free]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    stream
        .until(WAIT, |d| status_of(d, &free) == Some("AVAILABLE"))
        .await;
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_stream_is_503_not_500_while_postgres_cannot_be_asked(pg: PgPool) {
    let own = sqlx::postgres::PgPoolOptions::new()
        .connect_with((*pg.connect_options()).clone())
        .await
        .expect("own pool");
    let app = TestApp::with(own.clone(), &redis_url(), |_| {});
    let id = app.create_event(2).await;
    // The cache dropped, the map can only be loaded from Postgres, which is gone.
    app.drop_cache(id).await;
    own.close().await;
    let (status, _) = SseReader::try_open(&app, &format!("/events/{id}/stream"), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, body) = app.get(&format!("/events/{id}/seats")).await;
    assert_eq!(
        (status, body["code"].clone()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!("SERVICE_UNAVAILABLE")
        )
    );
}

/// A snapshot shows what the seat map shows the same caller: sellers (admins, service keys) see
/// a blocked seat's reason and a seat's channel, buyers neither. A new channel set reaches the
/// streams of an event already watched (the next snapshot shows it).
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_snapshot_shows_reasons_and_channels_to_sellers_as_the_seat_map_does(pg: PgPool) {
    // The admin polls below: its rate is not what this test is about.
    let app = TestApp::with(pg, &redis_url(), |s| {
        token_mode(s);
        s.limits.rate.user_per_second = Some(0);
    });
    let admin = jwt("admin-1", json!({"role": "admin"}));
    let buyer = jwt("buyer-1", json!({}));
    let id = app.create_event_as(&admin, 3).await;
    let block = json!({"seatCodes": ["S1"], "reason": "camera"});
    let path = format!("/events/{id}/seats/block");
    let (status, _, body) = app.call_as(&admin, "POST", &path, Some(block)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let channels = |seat: &str| json!({"channels": [{"code": "presale", "seatCodes": [seat]}]});
    let path = format!("/events/{id}/channels");
    let (status, _, body) = app
        .call_as(&admin, "PUT", &path, Some(channels("S2")))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let snapshot = async |token: &str| {
        let path = format!("/events/{id}/stream");
        let (status, reader) = SseReader::try_open(&app, &path, Some(token)).await;
        assert_eq!(status, StatusCode::OK);
        let mut reader = reader.expect("a stream");
        let sse = reader.next(WAIT).await.expect("snapshot");
        assert_eq!(sse.name, "snapshot");
        (sse.data["seats"].clone(), reader)
    };
    let seat_map = async |token: &str| {
        let path = format!("/events/{id}/seats");
        let (status, _, body) = app.call_as(token, "GET", &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["seats"].clone()
    };
    let (sellers, _watching) = snapshot(&admin).await;
    assert_eq!(sellers[0]["reason"], "camera", "{sellers}");
    assert_eq!(sellers[1]["channel"], "presale", "{sellers}");
    assert_eq!(sellers, seat_map(&admin).await);
    let (buyers, _) = snapshot(&buyer).await;
    for seat in buyers.as_array().expect("seats") {
        assert!(
            seat.get("reason").is_none() && seat.get("channel").is_none(),
            "{seat}"
        );
    }
    assert_eq!(buyers[0]["status"], "BLOCKED");
    assert_eq!(buyers, seat_map(&buyer).await);

    // S2's allocation moves to S3 while a stream is open.
    let (status, _, body) = app
        .call_as(&admin, "PUT", &path, Some(channels("S3")))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let deadline = Instant::now() + WAIT;
    loop {
        let (now, _) = snapshot(&admin).await;
        if now[2]["channel"] == "presale" && now[1].get("channel").is_none() {
            assert_eq!(now, seat_map(&admin).await);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new channels never shown: {now}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
