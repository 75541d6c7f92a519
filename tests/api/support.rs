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
use seatlock::config::Settings;
use seatlock::http::{self, AppState};
use seatlock::store::redis::RedisConnection;
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt;

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The seed nodes of the Redis Cluster the suite runs against (`SEATLOCK_TEST_CLUSTER_URLS`,
/// comma-separated, set by `scripts/test.sh` for its cluster pass); None: a standalone Redis.
pub fn cluster_urls() -> Option<Vec<String>> {
    let urls = std::env::var("SEATLOCK_TEST_CLUSTER_URLS").ok()?;
    let urls: Vec<String> = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(String::from)
        .collect();
    (!urls.is_empty()).then_some(urls)
}

/// Instances of the service a [`TestApp`] runs: three sharing the cluster in the cluster pass
/// (each with its own pools, breaker and caches; requests rotate over them), else one.
fn instances_for(redis_url: &str) -> usize {
    if redis_url == self::redis_url() && cluster_urls().is_some() {
        3
    } else {
        1
    }
}

/// Settings as the service would load them, pointed at `redis_url`, with a unique key prefix.
/// In the cluster pass the shared Redis is the cluster (a test's own `redis-server` stays one).
pub fn test_settings(redis_url: &str) -> Settings {
    let env = HashMap::from([("REDIS_URL".to_string(), redis_url.to_string())]);
    let mut settings = Settings::from_env(env).expect("default settings load");
    settings.redis.key_prefix = format!("test:{}", uuid::Uuid::new_v4().simple());
    if redis_url == self::redis_url()
        && let Some(urls) = cluster_urls()
    {
        settings.redis.mode = seatlock::config::RedisMode::Cluster;
        settings.redis.cluster_urls = urls;
    }
    settings
}

pub struct TestApp {
    /// The first instance's router, and its state.
    pub router: Router,
    pub pg: PgPool,
    pub state: AppState,
    /// Every instance's router (the first is `router`); calls rotate over them.
    routers: Vec<Router>,
    /// Every instance's state (the first is `state`).
    pub states: Vec<AppState>,
    next: std::sync::atomic::AtomicUsize,
    redis_url: String,
    cluster: bool,
}

impl TestApp {
    pub async fn new(pg: PgPool) -> Self {
        Self::with(pg, &redis_url(), |_| {})
    }

    pub fn with(pg: PgPool, redis_url: &str, tweak: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = test_settings(redis_url);
        tweak(&mut settings);
        let cluster = settings.redis.mode == seatlock::config::RedisMode::Cluster;
        let state = AppState::with_pool(settings.clone(), pg.clone()).expect("state");
        let mut routers = vec![http::router(state.clone())];
        let mut states = vec![state.clone()];
        for _ in 1..instances_for(redis_url) {
            let other = AppState::with_pool(settings.clone(), pg.clone()).expect("state");
            routers.push(http::router(other.clone()));
            states.push(other);
        }
        TestApp {
            router: routers[0].clone(),
            pg,
            state,
            routers,
            states,
            next: Default::default(),
            redis_url: redis_url.to_string(),
            cluster,
        }
    }

    /// Starts every instance's background tasks as the binary runs them (the sweepers, the
    /// history flush, the webhook deliverer); they stop when the returned guard drops.
    pub fn start_workers(&self) -> Workers {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let tasks = self
            .states
            .iter()
            .flat_map(|s| seatlock::startup::spawn_background(s, rx.clone()))
            .collect();
        Workers { stop, tasks }
    }

    /// The router of the next call: the instances in turn.
    fn next_router(&self) -> Router {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.routers[i % self.routers.len()].clone()
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
        let resp = self.next_router().oneshot(req).await.expect("infallible");
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

    /// A connection to this app's Redis: the cluster in the cluster pass (KEYS then asks every
    /// master, a multi-key DEL is split by slot).
    pub async fn redis(&self) -> RedisConnection {
        if self.cluster {
            let urls = cluster_urls().expect("cluster urls");
            let client = redis::cluster::ClusterClient::new(urls).expect("cluster client");
            return RedisConnection::Cluster(
                client
                    .get_async_connection()
                    .await
                    .expect("cluster connection"),
            );
        }
        RedisConnection::Single(
            redis::Client::open(self.redis_url.as_str())
                .expect("client")
                .get_multiplexed_async_connection()
                .await
                .expect("redis connection"),
        )
    }

    /// Hold records in this test's Redis key space.
    pub async fn redis_hold_count(&self) -> usize {
        let mut conn = self.redis().await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*:hold:*", self.prefix()))
            .query_async(&mut conn)
            .await
            .expect("keys");
        keys.len()
    }

    pub fn prefix(&self) -> &str {
        &self.state.settings.redis.key_prefix
    }

    /// Drops the event's cached inventory (as an eviction or a FLUSHALL would): its next hold
    /// rebuilds it from Postgres.
    pub async fn drop_cache(&self, event: i64) {
        let mut conn = self.redis().await;
        let _: () = redis::cmd("DEL")
            .arg(format!("{}:{{e:{event}}}:seats", self.prefix()))
            .query_async(&mut conn)
            .await
            .expect("drop the cache");
    }
}

/// Background tasks of a [`TestApp`]; stopped on drop.
pub struct Workers {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for TestApp {
    /// Removes this test's keys from the shared Redis.
    fn drop(&mut self) {
        let url = self.redis_url.clone();
        let pattern = format!("{}:*", self.prefix());
        if self.cluster {
            let _ = std::thread::spawn(move || {
                let urls = cluster_urls().unwrap_or_default();
                let Ok(client) = redis::cluster::ClusterClient::new(urls) else {
                    return;
                };
                let Ok(mut conn) = client.get_connection() else {
                    return;
                };
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(&pattern)
                    .query(&mut conn)
                    .unwrap_or_default();
                for key in keys {
                    let _: redis::RedisResult<()> = redis::cmd("DEL").arg(key).query(&mut conn);
                }
            })
            .join();
            return;
        }
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

/// A port for a process a test starts. Chosen below the kernel's ephemeral range (32768 and
/// up), so that no in-process server binding port 0 (and no outgoing connection) can take it
/// between this check and the process binding it; random, and free when checked.
pub fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::rng();
    loop {
        let port = rng.random_range(20_000..32_000);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
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

/// The URL of a test's own database (for processes the test spawns).
pub fn database_url(pg: &PgPool) -> String {
    let o = pg.connect_options();
    format!(
        "postgres://{}@{}:{}/{}",
        o.get_username(),
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap_or("postgres")
    )
}

impl RedisServer {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `kill -STOP` / `kill -CONT`: the process stays, answers nothing.
    pub fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args([&format!("-{sig}"), &pid.to_string()])
                .status();
        }
    }
}

/// A seatlock process (the real binary) on a port of its own.
pub struct Seatlock {
    pub port: u16,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Seatlock {
    pub fn start(env: &[(&str, String)]) -> Self {
        let mut s = Seatlock {
            port: free_port(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            child: None,
        };
        s.spawn();
        s
    }

    pub fn spawn(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_seatlock"))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("PORT", self.port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn seatlock");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !port_answers(self.port) {
            assert!(
                Instant::now() < deadline,
                "seatlock did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().ok()?.code()
    }
}

impl Drop for Seatlock {
    fn drop(&mut self) {
        self.kill();
    }
}

fn port_answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}

/// What a client saw of one HTTP call.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// An answer.
    Status(u16, Value),
    /// Never reached the server (connection refused): certainly not executed.
    Refused,
    /// Sent, no answer in time: it may or may not have happened.
    Unknown,
}

/// A small HTTP/1.1 client over a fresh connection, for talking to spawned processes.
pub async fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Outcome {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(Ok(mut stream)) =
        tokio::time::timeout(timeout, tokio::net::TcpStream::connect(("127.0.0.1", port))).await
    else {
        return Outcome::Refused;
    };
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    if stream.write_all(req.as_bytes()).await.is_err() {
        return Outcome::Unknown;
    }
    let mut buf = Vec::new();
    match tokio::time::timeout(timeout, stream.read_to_end(&mut buf)).await {
        Ok(Ok(_)) if !buf.is_empty() => {}
        _ => return Outcome::Unknown,
    }
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    if status == 0 {
        Outcome::Unknown
    } else {
        Outcome::Status(status, json)
    }
}

/// The HS256 secret of token-mode test apps.
pub const JWT_SECRET: &str = "seatlock-test-secret-of-at-least-32-bytes";

/// Turns a test app's settings to `auth.mode = token` with the test HS256 secret; the caps and
/// rate limits take their token-mode defaults unless the test sets them.
pub fn token_mode(s: &mut Settings) {
    s.auth.mode = seatlock::config::AuthMode::Token;
    s.auth.jwt.hs256_secret = seatlock::config::Secret::new(JWT_SECRET);
}

/// Seconds since the epoch.
pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A JWT signed with the test secret: `sub`, `exp` an hour ahead, plus `extra` claims.
pub fn jwt(sub: &str, extra: Value) -> String {
    let mut claims = json!({"sub": sub, "exp": now_secs() + 3600});
    if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    sign(&claims, JWT_SECRET)
}

/// Any claims, signed HS256 with `secret`.
pub fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).expect("secret"),
    )
    .expect("sign")
}

impl TestApp {
    /// Sends one request with `Authorization: Bearer <token>`; returns status, headers, JSON.
    pub async fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let auth = format!("Bearer {token}");
        let (status, headers, bytes) = self
            .call_raw(
                method,
                path,
                body.map(|b| b.to_string()),
                &[("authorization", &auth)],
            )
            .await;
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, json)
    }

    /// Creates an API key of this role through the service; returns the key.
    pub async fn api_key(&self, name: &str, role: seatlock::domain::access::KeyRole) -> String {
        match self
            .state
            .seatlock
            .create_api_key(&seatlock::domain::access::NewApiKey::new(name, role))
            .await
            .expect("create key")
        {
            seatlock::service::KeyCreated::Created(key) => key,
            other => panic!("key not created: {other:?}"),
        }
    }

    /// Creates an event as `admin_token`; returns its id.
    pub async fn create_event_as(&self, admin_token: &str, seats: u32) -> i64 {
        let (status, _, body) = self
            .call_as(
                admin_token,
                "POST",
                "/events",
                Some(json!({"name": "Gig", "date": "2030-01-10T18:00:00Z", "location": "Hall", "totalSeats": seats})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["eventId"].as_i64().expect("eventId")
    }
}

impl TestApp {
    /// (confirmedSeats, heldSeats, availableSeats) of an event, read with `token`.
    pub async fn counts_as(&self, token: &str, event: i64) -> (i64, i64, i64) {
        let (status, _, e) = self
            .call_as(token, "GET", &format!("/events/{event}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{e}");
        let n = |k: &str| e[k].as_i64().expect(k);
        (n("confirmedSeats"), n("heldSeats"), n("availableSeats"))
    }
}
