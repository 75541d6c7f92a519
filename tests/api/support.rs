//! Test harness: the real router over a real Postgres database (one per test, from
//! `#[sqlx::test]`) and a real Redis (a key space of its own per test, or a `redis-server` of its
//! own on a free port for tests that wipe or kill Redis).

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use seatlock::app::{self, AppState};
use seatlock::config::Settings;
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt;

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Settings as the service would load them, pointed at `redis_url`, with a unique key prefix.
pub fn test_settings(redis_url: &str) -> Settings {
    let env = HashMap::from([("REDIS_URL".to_string(), redis_url.to_string())]);
    let mut settings = Settings::from_env(env).expect("default settings load");
    settings.redis.key_prefix = format!("test:{}", uuid::Uuid::new_v4().simple());
    settings
}

pub struct TestApp {
    pub router: Router,
    pub pg: PgPool,
    pub state: AppState,
    redis_url: String,
}

impl TestApp {
    pub async fn new(pg: PgPool) -> Self {
        Self::with(pg, &redis_url(), |_| {})
    }

    pub fn with(pg: PgPool, redis_url: &str, tweak: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = test_settings(redis_url);
        tweak(&mut settings);
        let state = AppState::with_pg(settings, pg.clone()).expect("state");
        TestApp {
            router: app::router(state.clone()),
            pg,
            state,
            redis_url: redis_url.to_string(),
        }
    }

    /// Sends one request through the real router; returns status and JSON body (Null if empty).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, _, body) = self
            .call_raw(method, path, body.map(|b| b.to_string()), &[])
            .await;
        let json = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()))
        };
        (status, json)
    }

    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b)),
            None => req.body(Body::empty()),
        }
        .expect("request");
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        (status, headers, bytes)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, Some(body)).await
    }

    /// Creates an event with seats S1..Sn and returns its id.
    pub async fn create_event(&self, seats: u32) -> i64 {
        let (status, body) = self
            .post(
                "/events",
                json!({"name": "Test gig", "date": "2030-01-10T18:00:00Z", "location": "Hall", "totalSeats": seats}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["eventId"].as_i64().expect("eventId")
    }

    pub async fn reserve(&self, event: i64, user: &str, seats: &[&str]) -> (StatusCode, Value) {
        self.post(
            &format!("/events/{event}/seats/reserve"),
            json!({"userId": user, "seatCodes": seats}),
        )
        .await
    }

    /// Reserves and asserts success; returns the holdGroupId.
    pub async fn hold(&self, event: i64, user: &str, seats: &[&str]) -> String {
        let (status, body) = self.reserve(event, user, seats).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["holdGroupId"]
            .as_str()
            .expect("holdGroupId")
            .to_string()
    }

    pub async fn confirm(&self, event: i64, user: &str, hold: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/events/{event}/seats/confirm"),
            json!({"userId": user, "holdGroupId": hold}),
        )
        .await
    }

    pub async fn release(&self, event: i64, user: &str, hold: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/events/{event}/seats/release"),
            json!({"userId": user, "holdGroupId": hold}),
        )
        .await
    }

    pub async fn event(&self, event: i64) -> Value {
        let (status, body) = self.get(&format!("/events/{event}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Seat code -> status from the seat map.
    pub async fn seat_statuses(&self, event: i64) -> HashMap<String, String> {
        let (status, body) = self.get(&format!("/events/{event}/seats")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["seats"]
            .as_array()
            .expect("seats")
            .iter()
            .map(|s| {
                (
                    s["code"].as_str().expect("code").to_string(),
                    s["status"].as_str().expect("status").to_string(),
                )
            })
            .collect()
    }

    /// (confirmedSeats, heldSeats, availableSeats) of an event.
    pub async fn counts(&self, event: i64) -> (i64, i64, i64) {
        let e = self.event(event).await;
        let n = |k: &str| e[k].as_i64().expect(k);
        (n("confirmedSeats"), n("heldSeats"), n("availableSeats"))
    }

    /// Seat codes in active (confirmed) bookings, straight from Postgres.
    pub async fn booked_in_postgres(&self, event: i64) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT seat_code FROM booking_seats WHERE event_id = $1 AND active ORDER BY seat_code",
        )
        .bind(event)
        .fetch_all(&self.pg)
        .await
        .expect("query")
    }

    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis_url.as_str())
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("redis connection")
    }

    pub fn prefix(&self) -> &str {
        &self.state.settings.redis.key_prefix
    }
}

impl Drop for TestApp {
    /// Removes this test's keys from the shared Redis.
    fn drop(&mut self) {
        let url = self.redis_url.clone();
        let pattern = format!("{}:*", self.prefix());
        let _ = std::thread::spawn(move || {
            let Ok(client) = redis::Client::open(url.as_str()) else {
                return;
            };
            let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
                return;
            };
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query(&mut conn)
                .unwrap_or_default();
            for chunk in keys.chunks(500) {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(chunk).query(&mut conn);
            }
        })
        .join();
    }
}

/// A `redis-server` of the test's own, on a free port, killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl RedisServer {
    pub fn start() -> Self {
        let port = free_port();
        let mut server = RedisServer { port, child: None };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (Debian package redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(client) = redis::Client::open(self.url().as_str())
                && let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(200))
                && redis::cmd("PING").query::<String>(&mut conn).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again, empty, on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
