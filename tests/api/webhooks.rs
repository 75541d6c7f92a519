//! Webhooks against real receivers (a small HTTP server in the test): endpoints and their
//! contract, signed messages verified by the Standard Webhooks reference library, retries on the
//! schedule, 410, a receiver down then up, redirects, timeouts, replays, filters, and who may
//! manage them.

use std::collections::VecDeque;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::{TestApp, free_port, jwt, redis_url, token_mode};

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("json body")
    }
}

/// How a receiver answers the next request: status, extra headers, delay.
type Answer = (u16, Vec<(&'static str, String)>, Duration);

/// A receiver on a local port: answers from a script, then 200.
pub struct Receiver {
    pub port: u16,
    pub got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub async fn start(answers: Vec<Answer>) -> Self {
        Self::on(free_port(), answers, Arc::default()).await
    }

    async fn on(port: u16, answers: Vec<Answer>, got: Arc<Mutex<Vec<Received>>>) -> Self {
        let script = Arc::new(Mutex::new(VecDeque::from(answers)));
        let (g, s) = (got.clone(), script.clone());
        let handler = move |headers: HeaderMap, body: String| {
            let (g, s) = (g.clone(), s.clone());
            async move {
                g.lock().expect("lock").push(Received {
                    headers,
                    body,
                    at: Instant::now(),
                });
                let next = s.lock().expect("lock").pop_front();
                let (status, extra, delay) = next.unwrap_or((200, vec![], Duration::ZERO));
                tokio::time::sleep(delay).await;
                let mut resp =
                    (StatusCode::from_u16(status).expect("status"), "ok").into_response();
                for (k, v) in extra {
                    resp.headers_mut().insert(k, v.parse().expect("header"));
                }
                resp
            }
        };
        let app = axum::Router::new().fallback(handler);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind receiver");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            port,
            got,
            script,
            server: Some(server),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    /// Stops listening (the port refuses connections) until [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }

    pub async fn restart(&mut self) {
        let mut again = Receiver::on(self.port, vec![], self.got.clone()).await;
        self.script = again.script.clone();
        self.server = again.server.take();
    }

    pub fn requests(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    /// Waits up to `within` for `n` requests; returns them.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} requests within {within:?}: {got:#?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Settings for webhook tests: local receivers allowed, quick flush and retries.
pub fn local(s: &mut seatlock::config::Settings) {
    s.history.flush_ms = 200;
    s.webhooks.allow_private_networks = true;
    s.webhooks.retry_schedule_seconds = vec![1, 1, 1, 1, 1, 1];
    s.webhooks.timeout_seconds = 2;
}

/// Creates an endpoint; returns (id, secret).
pub async fn subscribe(app: &TestApp, body: Value) -> (String, String) {
    let (status, created) = app.post("/webhooks", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    (
        created["id"].as_str().expect("id").to_string(),
        created["secret"].as_str().expect("secret").to_string(),
    )
}

/// Verifies requests with the Python reference library (tests/webhooks/verify.py).
pub fn verify_with_reference_library(secret: &str, requests: &[Received]) {
    let python = format!("{}/.venv-webhooks/bin/python", env!("CARGO_MANIFEST_DIR"));
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: scripts/test.sh installs it (python3 -m venv .venv-webhooks && .venv-webhooks/bin/pip install standardwebhooks)"
    );
    let mut child = Command::new(python)
        .arg(format!(
            "{}/tests/webhooks/verify.py",
            env!("CARGO_MANIFEST_DIR")
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    let mut stdin = child.stdin.take().expect("stdin");
    for r in requests {
        let headers: serde_json::Map<String, Value> =
            ["webhook-id", "webhook-timestamp", "webhook-signature"]
                .iter()
                .map(|h| (h.to_string(), json!(r.header(h))))
                .collect();
        let line = json!({"secret": secret, "headers": headers, "body": r.body});
        writeln!(stdin, "{line}").expect("write");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("verify.py");
    assert!(
        out.status.success(),
        "the reference library refused a signature: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        requests.len().to_string()
    );
}

/// The endpoint's delivery log.
pub async fn deliveries(app: &TestApp, id: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/webhooks/{id}/deliveries")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["messages"].as_array().expect("messages").clone()
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn an_endpoint_is_created_read_changed_rotated_and_deleted(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), local);
    let (status, created) = app
        .post(
            "/webhooks",
            json!({"url": "http://127.0.0.1:9/a", "description": "payments"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    assert_eq!(created["url"], "http://127.0.0.1:9/a");
    assert_eq!(created["types"], Value::Null, "all types");
    assert_eq!(created["eventIds"], Value::Null, "all events");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["description"], "payments");
    assert!(
        created["createdAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let secret = created["secret"].as_str().expect("secret");
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_"))
        .expect("base64");
    assert_eq!(raw.len(), 32);

    let (status, one) = app.get(&format!("/webhooks/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        one.get("secret").is_none(),
        "the secret is shown only at creation: {one}"
    );
    let (_, list) = app.get("/webhooks").await;
    assert_eq!(list["webhooks"].as_array().expect("list").len(), 1);
    assert!(list["webhooks"][0].get("secret").is_none());
    assert!(!list.to_string().contains(secret));

    let (status, changed) = app
        .call(
            "PATCH",
            &format!("/webhooks/{id}"),
            Some(json!({"types": ["booking.confirmed"], "eventIds": [3, 1], "enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["types"], json!(["booking.confirmed"]));
    assert_eq!(changed["eventIds"], json!([1, 3]));
    assert_eq!(changed["enabled"], false);
    assert!(changed["disabledReason"].is_string());
    let (_, changed) = app
        .call(
            "PATCH",
            &format!("/webhooks/{id}"),
            Some(json!({"types": null, "enabled": true})),
        )
        .await;
    assert_eq!(changed["types"], Value::Null, "null: all types again");
    assert_eq!(changed["eventIds"], json!([1, 3]), "left out: unchanged");
    assert_eq!(
        (
            changed["enabled"].clone(),
            changed["disabledReason"].clone()
        ),
        (json!(true), Value::Null)
    );
    // An endpoint always has a URL and a state: null is not a value for them.
    for body in [json!({"url": null}), json!({"enabled": null})] {
        let (status, err) = app
            .call("PATCH", &format!("/webhooks/{id}"), Some(body.clone()))
            .await;
        assert_eq!(
            (status, err["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("VALIDATION_FAILED")),
            "{body}: {err}"
        );
    }

    let (status, rotated) = app
        .post(&format!("/webhooks/{id}/rotate-secret"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().expect("secret");
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);

    for (method, body) in [
        ("GET", None),
        ("PATCH", Some(json!({"enabled": true}))),
        ("DELETE", None),
    ] {
        let (status, err) = app
            .call(method, &format!("/webhooks/{}", uuid::Uuid::new_v4()), body)
            .await;
        assert_eq!(
            (status, err["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("WEBHOOK_NOT_FOUND")),
            "{method}"
        );
    }
    assert_eq!(
        app.get("/webhooks/not-a-uuid").await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = app.call("DELETE", &format!("/webhooks/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/webhooks/{id}")).await.0,
        StatusCode::NOT_FOUND
    );

    for bad in [
        json!({}),
        json!({"url": "ftp://example.com/x"}),
        json!({"url": "not a url"}),
        json!({"url": "http://127.0.0.1:9/", "types": ["hold.bogus"]}),
        json!({"url": "http://127.0.0.1:9/", "types": []}),
        json!({"url": "http://127.0.0.1:9/", "eventIds": [0]}),
        json!({"url": "http://127.0.0.1:9/", "eventIds": "all"}),
        json!({"url": "http://127.0.0.1:9/", "description": "x".repeat(1001)}),
    ] {
        let (status, err) = app.post("/webhooks", bad.clone()).await;
        assert_eq!(
            (status, err["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("VALIDATION_FAILED")),
            "{bad}"
        );
    }
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_url_of_a_non_public_address_is_refused_unless_private_networks_are_allowed(pg: PgPool) {
    let app = TestApp::new(pg).await;
    for url in [
        "http://127.0.0.1/x",
        "http://localhost:8080/x",
        "http://10.0.0.7/x",
        "http://192.168.1.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "https://0.0.0.0/x",
    ] {
        let (status, err) = app.post("/webhooks", json!({"url": url})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {err}");
        assert_eq!(err["code"], "WEBHOOK_URL_FORBIDDEN", "{url}");
    }
    let (_, list) = app.get("/webhooks").await;
    assert_eq!(list["webhooks"], json!([]));
    // A name that does not resolve now (`.invalid` never does) is not judged at creation: each
    // delivery resolves it again, and refuses a non-public address there.
    let url = "https://receiver.no-such-host.invalid/hooks";
    let (status, created) = app.post("/webhooks", json!({"url": url})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["url"], url);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_hold_and_its_booking_reach_the_receiver_signed_by_the_standard(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), local);
    let _workers = app.start_workers();
    let receiver = Receiver::start(vec![]).await;
    let (_, secret) = subscribe(&app, json!({"url": receiver.url()})).await;
    let (status, body) = app
        .post(
            "/events",
            json!({"name": "Gig", "date": "2030-01-10T18:00:00Z", "location": "Hall",
            "seats": [{"code": "A1", "price": 12.5}, {"code": "A2", "price": 10}],
            "tiers": [{"code": "GA", "capacity": 5, "price": 20}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["eventId"].as_i64().expect("id");
    let (status, held) = app
        .post(
            &format!("/events/{id}/seats/reserve"),
            json!({"userId": "u1", "seatCodes": ["A1"], "tiers": [{"code": "GA", "quantity": 2}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{held}");
    let hold = held["holdGroupId"].as_str().expect("hold").to_string();
    assert_eq!(app.confirm(id, "u1", &hold).await.0, StatusCode::OK);
    let mut got = receiver.wait_for(2, Duration::from_secs(5)).await;
    // Sent concurrently: a receiver orders by seq.
    got.sort_by_key(|r| r.json()["data"]["seq"].as_i64());
    let types: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().expect("type").to_string())
        .collect();
    assert_eq!(types, ["hold.created", "booking.confirmed"]);
    for r in &got {
        assert_eq!(r.header("content-type"), "application/json");
        assert!(r.header("webhook-id").starts_with("msg_"));
        let ts: i64 = r.header("webhook-timestamp").parse().expect("unix seconds");
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 30);
        assert!(r.header("webhook-signature").starts_with("v1,"));
    }
    verify_with_reference_library(&secret, &got);
    let booking = got[1].json();
    assert!(
        booking["timestamp"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
    );
    let data = &booking["data"];
    assert_eq!(data["eventId"], id);
    assert_eq!(data["holdGroupId"], hold.as_str());
    assert_eq!(data["bookingGroupId"], hold.as_str());
    assert_eq!(data["userId"], "u1");
    assert_eq!(data["seatCodes"], json!(["A1"]));
    assert_eq!(data["tiers"], json!([{"code": "GA", "quantity": 2}]));
    assert_eq!(data["totalPrice"], 52.5);
    let hold_data = &got[0].json()["data"];
    assert!(hold_data["expiresAt"].is_string());
    assert!(hold_data.get("bookingGroupId").is_none());
    // seq: the highest history seq each covers, increasing; the booking's is the history's last.
    let (_, page) = app.get(&format!("/events/{id}/changes")).await;
    let last = page["changes"]
        .as_array()
        .expect("changes")
        .last()
        .expect("last")["seq"]
        .clone();
    assert_eq!(data["seq"], last);
    assert!(hold_data["seq"].as_i64() < data["seq"].as_i64());
    // The log shows both delivered, each with its one attempt.
    let (_, list) = app.get("/webhooks").await;
    let endpoint = list["webhooks"][0]["id"].as_str().expect("id").to_string();
    // The outcome is recorded right after the answer.
    let deadline = Instant::now() + Duration::from_secs(3);
    let log = loop {
        let log = deliveries(&app, &endpoint).await;
        if log.iter().all(|m| m["status"] == "delivered") || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["type"], "booking.confirmed", "newest first");
    for m in &log {
        assert_eq!(m["status"], "delivered");
        assert_eq!(m["attempts"].as_array().expect("attempts").len(), 1);
        assert_eq!(m["attempts"][0]["statusCode"], 200);
        assert_eq!(m["nextAttemptAt"], Value::Null);
    }
    assert_eq!(log[0]["id"], got[1].header("webhook-id"));
}

/// Every secret a rotation retired signs beside the current one for its 24 h: after two
/// rotations a message verifies with each of the three secrets (a receiver still on the first
/// one is not cut off by the second rotation); however often an admin rotates, at most the 4
/// latest retired secrets sign beside the current one.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn every_secret_a_rotation_retired_signs_for_its_day(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), local);
    let _workers = app.start_workers();
    let receiver = Receiver::start(vec![]).await;
    let (endpoint, first) = subscribe(&app, json!({"url": receiver.url()})).await;
    let rotate = async || {
        let (status, rotated) = app
            .post(&format!("/webhooks/{endpoint}/rotate-secret"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{rotated}");
        rotated["secret"].as_str().expect("secret").to_string()
    };
    let (second, third) = (rotate().await, rotate().await);
    let (status, body) = app
        .post(
            "/events",
            json!({"name": "Gig", "date": "2030-01-10T18:00:00Z", "location": "Hall",
                   "totalSeats": 4}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let event = body["eventId"].as_i64().expect("id");
    let hold = async |seat: &str| {
        let body = json!({"userId": "u1", "seatCodes": [seat]});
        let (status, held) = app
            .post(&format!("/events/{event}/seats/reserve"), body)
            .await;
        assert_eq!(status, StatusCode::OK, "{held}");
    };
    hold("S1").await;
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 3);
    for secret in [&first, &second, &third] {
        verify_with_reference_library(secret, &got[..1]);
    }

    let mut latest = third;
    for _ in 0..5 {
        latest = rotate().await;
    }
    hold("S2").await;
    let got = receiver.wait_for(2, Duration::from_secs(5)).await;
    let signatures = got[1].header("webhook-signature").split(' ').count();
    assert_eq!(
        signatures, 5,
        "the current secret and the 4 latest retired ones"
    );
    verify_with_reference_library(&latest, &got[1..]);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_failing_receiver_is_retried_on_the_schedule_and_a_410_disables_its_endpoint(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), local);
    let _workers = app.start_workers();
    let flaky = Receiver::start(vec![
        (500, vec![], Duration::ZERO),
        (500, vec![], Duration::ZERO),
    ])
    .await;
    let gone = Receiver::start(vec![(410, vec![], Duration::ZERO)]).await;
    let (flaky_id, _) = subscribe(
        &app,
        json!({"url": flaky.url(), "types": ["booking.confirmed"]}),
    )
    .await;
    let (gone_id, _) = subscribe(
        &app,
        json!({"url": gone.url(), "types": ["booking.confirmed"]}),
    )
    .await;
    let event = app.create_event(2).await;
    let hold = app.hold(event, "u1", &["S1"]).await;
    assert_eq!(app.confirm(event, "u1", &hold).await.0, StatusCode::OK);
    let got = flaky.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 3);
    let ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "one webhook-id on every retry: {ids:?}"
    );
    assert_eq!(got[0].body, got[2].body, "the same body on every retry");
    assert!(
        got[1].at - got[0].at >= Duration::from_millis(900),
        "retried after the schedule's 1 s"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = deliveries(&app, &flaky_id).await;
    assert_eq!(log[0]["status"], "delivered");
    let codes: Vec<&Value> = log[0]["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| &a["statusCode"])
        .collect();
    assert_eq!(codes, [&json!(500), &json!(500), &json!(200)]);

    gone.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, endpoint) = app.get(&format!("/webhooks/{gone_id}")).await;
    assert_eq!(endpoint["enabled"], false, "{endpoint}");
    assert!(
        endpoint["disabledReason"]
            .as_str()
            .is_some_and(|r| r.contains("410"))
    );
    // Disabled: nothing more is sent; what queues meanwhile is delivered once it is enabled.
    let hold = app.hold(event, "u2", &["S2"]).await;
    assert_eq!(app.confirm(event, "u2", &hold).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(gone.requests().len(), 1);
    let (status, _) = app
        .call(
            "PATCH",
            &format!("/webhooks/{gone_id}"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let got = gone.wait_for(3, Duration::from_secs(5)).await;
    assert!(
        got[1..]
            .iter()
            .any(|r| r.header("webhook-id") == got[0].header("webhook-id")),
        "the 410'd message again"
    );
    let log = deliveries(&app, &gone_id).await;
    assert!(log.iter().all(|m| m["status"] == "delivered"), "{log:#?}");
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_receiver_down_then_up_gets_every_message_once_and_a_replay_sends_them_again(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), local);
    let _workers = app.start_workers();
    let mut receiver = Receiver::start(vec![]).await;
    receiver.stop();
    let (id, secret) = subscribe(
        &app,
        json!({"url": receiver.url(), "types": ["booking.confirmed", "booking.cancelled"]}),
    )
    .await;
    let event = app.create_event(3).await;
    let mut holds = Vec::new();
    for (user, seat) in [("u1", "S1"), ("u2", "S2"), ("u3", "S3")] {
        let hold = app.hold(event, user, &[seat]).await;
        assert_eq!(app.confirm(event, user, &hold).await.0, StatusCode::OK);
        holds.push(hold);
    }
    let (status, _) = app
        .post(
            &format!("/bookings/{}/cancel", holds[0]),
            json!({"userId": "u1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let log = deliveries(&app, &id).await;
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|m| m["status"] == "pending"), "{log:#?}");
    // The oldest message is tried; the others wait behind it, unattempted.
    let tried: Vec<&Value> = log
        .iter()
        .flat_map(|m| m["attempts"].as_array().expect("attempts"))
        .collect();
    assert!(!tried.is_empty());
    let failed_attempt = tried[0];
    assert_eq!(failed_attempt["statusCode"], Value::Null);
    assert!(
        failed_attempt["error"]
            .as_str()
            .is_some_and(|e| e.contains("connection")),
        "{failed_attempt}"
    );
    let before_up = chrono::Utc::now();
    receiver.restart().await;
    let got = receiver.wait_for(4, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got_after = receiver.requests();
    assert_eq!(got_after.len(), 4, "each message once: {got_after:#?}");
    let mut ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    verify_with_reference_library(&secret, &got);
    // A receiver orders by seq: each booking's before its cancel.
    let mut seqs: Vec<i64> = got
        .iter()
        .map(|r| r.json()["data"]["seq"].as_i64().expect("seq"))
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 4);

    let (status, replayed) = app
        .post(
            &format!("/webhooks/{id}/replay"),
            json!({"since": (before_up - chrono::Duration::minutes(10)).to_rfc3339()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["queued"], 4);
    let again = receiver.wait_for(8, Duration::from_secs(5)).await;
    let mut replay_ids: Vec<&str> = again[4..].iter().map(|r| r.header("webhook-id")).collect();
    replay_ids.sort_unstable();
    assert_eq!(replay_ids, ids, "a replay sends the same webhook-ids");
    let (status, err) = app
        .post(
            &format!("/webhooks/{id}/replay"),
            json!({"since": "yesterday"}),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("VALIDATION_FAILED"))
    );
    let (status, _) = app
        .get(&format!("/webhooks/{id}/deliveries?status=lost"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = app
        .get(&format!(
            "/webhooks/{id}/deliveries?status=delivered&limit=2"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["messages"].as_array().expect("messages").len(), 2);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn retry_after_is_honoured_redirects_are_not_followed_and_a_slow_receiver_times_out(
    pg: PgPool,
) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        local(s);
        s.webhooks.timeout_seconds = 1;
    });
    let _workers = app.start_workers();
    let target = Receiver::start(vec![]).await;
    let busy = Receiver::start(vec![(
        429,
        vec![("retry-after", "3".into())],
        Duration::ZERO,
    )])
    .await;
    let moved = Receiver::start(vec![(
        302,
        vec![("location", target.url())],
        Duration::ZERO,
    )])
    .await;
    let slow = Receiver::start(vec![(200, vec![], Duration::from_secs(3))]).await;
    let kinds = json!(["hold.created"]);
    let (_, _) = subscribe(&app, json!({"url": busy.url(), "types": kinds})).await;
    let (moved_id, _) = subscribe(&app, json!({"url": moved.url(), "types": kinds})).await;
    let (slow_id, _) = subscribe(&app, json!({"url": slow.url(), "types": kinds})).await;
    let event = app.create_event(1).await;
    app.hold(event, "u1", &["S1"]).await;
    let got = busy.wait_for(2, Duration::from_secs(8)).await;
    assert!(
        got[1].at - got[0].at >= Duration::from_millis(2900),
        "Retry-After: 3 wins over the schedule's 1 s"
    );
    moved.wait_for(2, Duration::from_secs(5)).await;
    assert!(target.requests().is_empty(), "a redirect is not followed");
    let log = deliveries(&app, &moved_id).await;
    assert_eq!(log[0]["attempts"][0]["statusCode"], 302);
    slow.wait_for(2, Duration::from_secs(8)).await;
    let log = deliveries(&app, &slow_id).await;
    let first = &log[0]["attempts"][0];
    assert_eq!(first["statusCode"], Value::Null);
    assert!(
        first["error"]
            .as_str()
            .is_some_and(|e| e.contains("timeout")),
        "{first}"
    );
    assert!(
        first["durationMs"]
            .as_u64()
            .is_some_and(|ms| (900..2500).contains(&ms)),
        "{first}"
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn types_and_event_ids_choose_what_an_endpoint_gets(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), local);
    let _workers = app.start_workers();
    let all = Receiver::start(vec![]).await;
    let some = Receiver::start(vec![]).await;
    let e1 = app.create_event(2).await;
    let e2 = app.create_event(2).await;
    subscribe(&app, json!({"url": all.url()})).await;
    subscribe(
        &app,
        json!({"url": some.url(), "types": ["hold.released"], "eventIds": [e2]}),
    )
    .await;
    for event in [e1, e2] {
        let hold = app.hold(event, "u1", &["S1"]).await;
        assert_eq!(app.release(event, "u1", &hold).await.0, StatusCode::OK);
    }
    all.wait_for(4, Duration::from_secs(5)).await;
    let got = some.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(some.requests().len(), 1);
    assert_eq!(got[0].json()["type"], "hold.released");
    assert_eq!(got[0].json()["data"]["eventId"], e2);
    assert_eq!(all.requests().len(), 4);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn only_admins_manage_webhooks(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        token_mode(s);
        s.webhooks.allow_private_networks = true;
    });
    let admin = jwt("boss", json!({"role": "admin"}));
    let key = app
        .api_key("checkout", seatlock::domain::access::KeyRole::Service)
        .await;
    let buyer = jwt("u1", json!({}));
    let body = json!({"url": "http://127.0.0.1:9/x"});
    let (status, _, created) = app
        .call_as(&admin, "POST", "/webhooks", Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id");
    for token in [&key, &buyer] {
        for (method, path, body) in [
            ("POST", "/webhooks".to_string(), Some(body.clone())),
            ("GET", "/webhooks".to_string(), None),
            ("GET", format!("/webhooks/{id}"), None),
            ("DELETE", format!("/webhooks/{id}"), None),
            ("POST", format!("/webhooks/{id}/rotate-secret"), None),
            ("GET", format!("/webhooks/{id}/deliveries"), None),
        ] {
            let (status, _, err) = app.call_as(token, method, &path, body).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
            assert_eq!(err["code"], "FORBIDDEN");
        }
    }
    assert_eq!(
        app.call_raw("GET", "/webhooks", None, &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call_as(&admin, "GET", "/webhooks", None).await.0,
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn the_webhook_commands_create_list_and_delete_endpoints(pg: PgPool) {
    let db = crate::support::database_url(&pg);
    let run = |args: &[&str], private: bool| {
        Command::new(env!("CARGO_BIN_EXE_seatlock"))
            .args(args)
            .env("DATABASE_URL", &db)
            .env("APP__DATABASE__CREATE_IF_MISSING", "false")
            .env("APP__WEBHOOKS__ALLOW_PRIVATE_NETWORKS", private.to_string())
            .output()
            .expect("run seatlock")
    };
    let out = run(
        &[
            "webhooks",
            "create",
            "--url",
            "http://127.0.0.1:9/hooks",
            "--type",
            "booking.confirmed",
            "--event",
            "4",
        ],
        true,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    assert!(
        created["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_"))
    );
    assert_eq!(created["types"], json!(["booking.confirmed"]));
    assert_eq!(created["eventIds"], json!([4]));
    let id = created["id"].as_str().expect("id");
    let listed = String::from_utf8(run(&["webhooks", "list"], true).stdout).expect("utf8");
    assert!(
        listed.contains(id) && listed.contains("booking.confirmed\t4\tyes"),
        "{listed}"
    );
    assert!(!listed.contains(created["secret"].as_str().expect("secret")));
    // Without private networks allowed, the same URL is refused.
    let out = run(
        &["webhooks", "create", "--url", "http://127.0.0.1:9/hooks"],
        false,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a public address"));
    assert_eq!(
        run(&["webhooks", "delete", id], true).status.code(),
        Some(0)
    );
    assert_eq!(
        run(&["webhooks", "delete", id], true).status.code(),
        Some(1)
    );
    let listed = String::from_utf8(run(&["webhooks", "list"], true).stdout).expect("utf8");
    assert!(!listed.contains(id));
}

/// After a failed attempt, nothing more goes to that endpoint until the failed message's next
/// attempt: a message queued meanwhile waits, unattempted (a receiver that is down is not sent
/// one request per new message).
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn messages_queued_after_a_failure_wait_for_its_retry(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        local(s);
        s.webhooks.retry_schedule_seconds = vec![60];
    });
    let _workers = app.start_workers();
    let mut receiver = Receiver::start(vec![]).await;
    receiver.stop();
    let (id, _) = subscribe(
        &app,
        json!({"url": receiver.url(), "types": ["booking.confirmed"]}),
    )
    .await;
    let event = app.create_event(2).await;
    let confirm = |user: &'static str, seat: &'static str| {
        let app = &app;
        async move {
            let hold = app.hold(event, user, &[seat]).await;
            assert_eq!(app.confirm(event, user, &hold).await.0, StatusCode::OK);
        }
    };
    confirm("u1", "S1").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = deliveries(&app, &id).await;
        let tried = log
            .iter()
            .any(|m| m["attempts"].as_array().is_some_and(|a| !a.is_empty()));
        if tried {
            break;
        }
        assert!(Instant::now() < deadline, "no attempt: {log:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    confirm("u2", "S2").await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let log = deliveries(&app, &id).await;
    assert_eq!(log.len(), 2, "{log:#?}");
    let attempts: Vec<usize> = log
        .iter()
        .map(|m| m["attempts"].as_array().map_or(0, Vec::len))
        .collect();
    // Newest first: the second message was not attempted, the first once.
    assert_eq!(attempts, [0, 1], "{log:#?}");
}

/// A replay that lands while the message's attempt is in flight queues it again: the attempt's
/// answer, recorded after the replay, does not mark the replayed message delivered.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_replay_during_an_attempt_is_not_lost(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), local);
    let _workers = app.start_workers();
    // The first request is answered 200 after 1.5 s; the replay comes within that time.
    let receiver = Receiver::start(vec![(200, vec![], Duration::from_millis(1500))]).await;
    let (id, _) = subscribe(
        &app,
        json!({"url": receiver.url(), "types": ["booking.confirmed"]}),
    )
    .await;
    let event = app.create_event(1).await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    let hold = app.hold(event, "u1", &["S1"]).await;
    assert_eq!(app.confirm(event, "u1", &hold).await.0, StatusCode::OK);
    let first = receiver.wait_for(1, Duration::from_secs(10)).await;
    let (status, replayed) = app
        .post(
            &format!("/webhooks/{id}/replay"),
            json!({"since": since.to_rfc3339()}),
        )
        .await;
    assert_eq!(
        (status, replayed["queued"].as_i64()),
        (StatusCode::OK, Some(1))
    );
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].header("webhook-id"), first[0].header("webhook-id"));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = deliveries(&app, &id).await;
        let attempts = log[0]["attempts"].as_array().map_or(0, Vec::len);
        if log[0]["status"] == "delivered" && attempts == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{log:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An endpoint deleted while a message to it is in flight takes its messages with it; the other
/// endpoints' attempts of the same round are still recorded (they were rolled back with the
/// missing row, so their messages went out again when the lease ran out).
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn deleting_an_endpoint_mid_delivery_does_not_resend_the_others(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), local);
    let _workers = app.start_workers();
    let fast = Receiver::start(vec![]).await;
    let slow = Receiver::start(vec![(200, vec![], Duration::from_millis(1500))]).await;
    let types = json!(["booking.confirmed"]);
    let (fast_id, _) = subscribe(&app, json!({"url": fast.url(), "types": types})).await;
    let (slow_id, _) = subscribe(&app, json!({"url": slow.url(), "types": types})).await;
    let event = app.create_event(1).await;
    let hold = app.hold(event, "u1", &["S1"]).await;
    assert_eq!(app.confirm(event, "u1", &hold).await.0, StatusCode::OK);
    slow.wait_for(1, Duration::from_secs(10)).await;
    let (status, _) = app
        .call("DELETE", &format!("/webhooks/{slow_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Well before the lease (2 x timeout + 5 s) could run out.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = deliveries(&app, &fast_id).await;
        let attempts = log[0]["attempts"].as_array().map_or(0, Vec::len);
        if log[0]["status"] == "delivered" && attempts == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "not recorded: {log:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(fast.requests().len(), 1);
}

/// A slow receiver holds up only its own endpoint: another endpoint's messages keep arriving
/// while the slow one's request is still open.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_slow_receiver_does_not_hold_up_another_endpoint(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        local(s);
        s.webhooks.timeout_seconds = 15;
    });
    let _workers = app.start_workers();
    let slow_answer = (200, vec![], Duration::from_secs(6));
    let slow = Receiver::start(vec![slow_answer.clone(), slow_answer]).await;
    let fast = Receiver::start(vec![]).await;
    let types = json!(["booking.confirmed"]);
    subscribe(&app, json!({"url": slow.url(), "types": types})).await;
    subscribe(&app, json!({"url": fast.url(), "types": types})).await;
    let event = app.create_event(2).await;
    let first = app.hold(event, "u1", &["S1"]).await;
    assert_eq!(app.confirm(event, "u1", &first).await.0, StatusCode::OK);
    fast.wait_for(1, Duration::from_secs(10)).await;
    slow.wait_for(1, Duration::from_secs(10)).await;
    // The slow receiver is still answering its first request.
    let second = app.hold(event, "u2", &["S2"]).await;
    let confirmed = Instant::now();
    assert_eq!(app.confirm(event, "u2", &second).await.0, StatusCode::OK);
    fast.wait_for(2, Duration::from_secs(10)).await;
    assert!(
        confirmed.elapsed() < Duration::from_secs(3),
        "the fast endpoint waited for the slow one: {:?}",
        confirmed.elapsed()
    );
}
