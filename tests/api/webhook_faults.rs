//! Webhooks under faults, with three seatlock processes on one Postgres and a Redis of their own:
//! a receiver down for 30 s then up, one answering 500 twice then 200, one answering 410, and
//! `kill -9` of the instance that just answered a confirm 200 (between its commit and any
//! delivery). Every `booking.*` message reaches every live receiver, none twice while nothing
//! failed, and the history replays to the seat map.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::{Outcome, RedisServer, Seatlock, database_url, http};
use crate::webhooks::{Received, Receiver};

const CALL: Duration = Duration::from_secs(5);

fn env(pg: &PgPool, redis: &RedisServer) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database_url(pg)),
        ("REDIS_URL", redis.url()),
        ("APP__REDIS__KEY_PREFIX", "hooks".into()),
        ("APP__HISTORY__FLUSH_MS", "200".into()),
        ("APP__WEBHOOKS__ALLOW_PRIVATE_NETWORKS", "true".into()),
        ("APP__WEBHOOKS__TIMEOUT_SECONDS", "2".into()),
        // Retries every 1-3 s for longer than the 30 s outage.
        (
            "APP__WEBHOOKS__RETRY_SCHEDULE_SECONDS",
            "1,1,2,2,2,3,3,3,3,3,3,3,3,3,3,3,3,3".into(),
        ),
        ("APP__LOG__LEVEL", "error".into()),
    ]
}

async fn call(port: u16, method: &str, path: &str, body: Value) -> (u16, Value) {
    match http(port, method, path, Some(&body), &[], CALL).await {
        Outcome::Status(s, b) => (s, b),
        other => panic!("{method} {path}: {other:?}"),
    }
}

/// Booking ids of the `booking.*` messages a receiver got, with how often each webhook-id came.
fn bookings_of(got: &[Received], kind: &str) -> (HashSet<String>, HashMap<String, usize>) {
    let mut ids = HashMap::new();
    let mut bookings = HashSet::new();
    for r in got {
        let body = r.json();
        if body["type"] == kind {
            bookings.insert(
                body["data"]["bookingGroupId"]
                    .as_str()
                    .expect("booking")
                    .to_string(),
            );
        }
        *ids.entry(r.header("webhook-id").to_string()).or_insert(0) += 1;
    }
    (bookings, ids)
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn every_booking_message_survives_a_receiver_outage_errors_410_and_kill_9(pg: PgPool) {
    let started = Instant::now();
    let redis = RedisServer::start();
    let env = env(&pg, &redis);
    let mut instances: Vec<Seatlock> = (0..3).map(|_| Seatlock::start(&env)).collect();
    let ports: Vec<u16> = instances.iter().map(|i| i.port).collect();

    let healthy = Receiver::start(vec![]).await;
    let flaky = Receiver::start(vec![
        (500, vec![], Duration::ZERO),
        (500, vec![], Duration::ZERO),
    ])
    .await;
    let gone = Receiver::start(vec![(410, vec![], Duration::ZERO)]).await;
    let mut down = Receiver::start(vec![]).await;
    down.stop();
    let kinds = json!(["booking.confirmed", "booking.cancelled"]);
    let mut endpoint_of = HashMap::new();
    for (name, r) in [
        ("healthy", &healthy),
        ("flaky", &flaky),
        ("gone", &gone),
        ("down", &down),
    ] {
        let (status, created) = call(
            ports[0],
            "POST",
            "/webhooks",
            json!({"url": r.url(), "types": kinds}),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        endpoint_of.insert(name, created["id"].as_str().expect("id").to_string());
    }
    let (status, created) = call(ports[1], "POST", "/events", json!({"name": "Hooks", "date": "2030-01-01T20:00:00Z", "location": "Lab", "totalSeats": 40})).await;
    assert_eq!(status, 201, "{created}");
    let event = created["eventId"].as_i64().expect("id");

    // Fault-free part: bookings over the three instances, some cancelled.
    let (mut confirmed, mut cancelled) = (Vec::new(), Vec::new());
    for n in 0..24u32 {
        let port = ports[n as usize % 3];
        let user = format!("u{n}");
        let (s, held) = call(
            port,
            "POST",
            &format!("/events/{event}/seats/reserve"),
            json!({"userId": user, "seatCodes": [format!("S{}", n + 1)]}),
        )
        .await;
        assert_eq!(s, 200, "{held}");
        let hold = held["holdGroupId"].as_str().expect("hold").to_string();
        let port = ports[(n as usize + 1) % 3];
        let (s, body) = call(
            port,
            "POST",
            &format!("/events/{event}/seats/confirm"),
            json!({"userId": user, "holdGroupId": hold}),
        )
        .await;
        assert_eq!(s, 200, "{body}");
        if n % 4 == 0 {
            let (s, body) = call(
                ports[(n as usize + 2) % 3],
                "POST",
                &format!("/bookings/{hold}/cancel"),
                json!({"userId": user}),
            )
            .await;
            assert_eq!(s, 200, "{body}");
            cancelled.push(hold.clone());
        }
        confirmed.push(hold);
    }
    let expected = confirmed.len() + cancelled.len();
    let got = healthy.wait_for(expected, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (booked, ids) = bookings_of(&healthy.requests(), "booking.confirmed");
    assert_eq!(got.len(), expected);
    assert!(
        ids.values().all(|n| *n == 1),
        "a message delivered twice while nothing failed: {ids:?}"
    );
    assert_eq!(booked, confirmed.iter().cloned().collect::<HashSet<_>>());
    let (cancels, _) = bookings_of(&healthy.requests(), "booking.cancelled");
    assert_eq!(cancels, cancelled.iter().cloned().collect::<HashSet<_>>());

    // kill -9 of the instance right after it answered a confirm 200: another instance delivers.
    let user = "killed";
    let (s, held) = call(
        ports[2],
        "POST",
        &format!("/events/{event}/seats/reserve"),
        json!({"userId": user, "seatCodes": ["S40"]}),
    )
    .await;
    assert_eq!(s, 200, "{held}");
    let hold = held["holdGroupId"].as_str().expect("hold").to_string();
    let (s, body) = call(
        ports[2],
        "POST",
        &format!("/events/{event}/seats/confirm"),
        json!({"userId": user, "holdGroupId": hold}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    instances[2].kill();
    let killed_at = Instant::now();
    confirmed.push(hold.clone());
    loop {
        let (booked, _) = bookings_of(&healthy.requests(), "booking.confirmed");
        if booked.contains(&hold) {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(10),
            "the booking confirmed before kill -9 was not delivered within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "webhook faults: delivered {:?} after the kill -9",
        killed_at.elapsed()
    );
    instances[2].spawn();

    // The receiver that was down for 30 s gets everything once it is up.
    let up_at = started + Duration::from_secs(30);
    tokio::time::sleep(up_at.saturating_duration_since(Instant::now())).await;
    down.restart().await;
    let expected = confirmed.len() + cancelled.len();
    let got = down.wait_for(expected, Duration::from_secs(20)).await;
    let (booked, _) = bookings_of(&got, "booking.confirmed");
    assert_eq!(booked, confirmed.iter().cloned().collect::<HashSet<_>>());
    let got = flaky.wait_for(expected + 2, Duration::from_secs(20)).await;
    let (booked, _) = bookings_of(&got, "booking.confirmed");
    assert_eq!(
        booked,
        confirmed.iter().cloned().collect::<HashSet<_>>(),
        "after two 500s, all"
    );
    assert_eq!(
        gone.requests().len(),
        1,
        "a 410 disables the endpoint at once"
    );
    let (_, endpoint) = call(
        ports[0],
        "GET",
        &format!("/webhooks/{}", endpoint_of["gone"]),
        json!(null),
    )
    .await;
    assert_eq!(endpoint["enabled"], false);

    // Every message ends delivered on the live endpoints.
    for name in ["healthy", "flaky", "down"] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, log) = call(
                ports[1],
                "GET",
                &format!("/webhooks/{}/deliveries?limit=1000", endpoint_of[name]),
                json!(null),
            )
            .await;
            let messages = log["messages"].as_array().expect("messages");
            if messages.len() == expected && messages.iter().all(|m| m["status"] == "delivered") {
                break;
            }
            assert!(Instant::now() < deadline, "{name}: {log}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // The history replays to the seat map.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, page) = call(
            ports[0],
            "GET",
            &format!("/events/{event}/changes?limit=1000"),
            json!(null),
        )
        .await;
        let mut replay: HashMap<String, String> = HashMap::new();
        for c in page["changes"].as_array().expect("changes") {
            replay.insert(
                c["seatCode"].as_str().expect("seat").into(),
                c["status"].as_str().expect("status").into(),
            );
        }
        let (_, map) = call(
            ports[1],
            "GET",
            &format!("/events/{event}/seats"),
            json!(null),
        )
        .await;
        let live: HashMap<String, String> = map["seats"]
            .as_array()
            .expect("seats")
            .iter()
            .filter(|s| {
                s["status"] != "AVAILABLE" || replay.contains_key(s["code"].as_str().expect("code"))
            })
            .map(|s| {
                (
                    s["code"].as_str().expect("code").into(),
                    s["status"].as_str().expect("status").into(),
                )
            })
            .collect();
        if live == replay {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "history {replay:?} vs seat map {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(instances);
    drop(redis);
}
