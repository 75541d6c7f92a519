//! The fault-injection suite: two seatlock processes, a redis-server of the test's own, and many
//! clients doing hold -> confirm / release / abandon on a small event so they collide, while
//! Redis is killed, paused, flushed and script-flushed, a seatlock process is killed mid-load,
//! and Postgres backends are terminated mid-transaction. A history of every call is checked
//! against Postgres afterwards. Seeded (`FAULT_SEED`, default 7) so a failing run can be replayed.
//! The same suite runs against a Redis Cluster of the test's own (3 masters + 3 replicas) with
//! three seatlock processes: there the faults hit the master of the event's slot (kill -9 and a
//! failover to its replica, SIGSTOP) and every master (FLUSHALL) or node (SCRIPT FLUSH).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sqlx::PgPool;

use crate::cluster::RedisCluster;
use crate::support::{JWT_SECRET, Outcome, RedisServer, Seatlock, database_url, http, jwt};

const SEATS: u32 = 32;
/// Capacity of the event's general-admission tier `GA`, small so that it sells out and cancels
/// give units back while clients keep asking.
const GA_CAPACITY: i64 = 12;
const TTL_SECONDS: u64 = 3;
const CLIENTS: u64 = 12;
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
enum Kind {
    Reserve,
    Confirm,
    Release,
    Cancel,
}

#[derive(Debug, Clone)]
struct Op {
    kind: Kind,
    key: String,
    seats: Vec<String>,
    /// Units of the tier `GA` asked for with the seats (0: none).
    units: i64,
    hold: Option<String>,
    started: Instant,
    outcome: Outcome,
}

fn status(o: &Outcome) -> Option<u16> {
    match o {
        Outcome::Status(s, _) => Some(*s),
        _ => None,
    }
}

/// How the instances of a run authenticate callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `auth.mode = none`: every caller trusted.
    Trusting,
    /// `auth.mode = token`: each client is a buyer with its own JWT; the caps take their
    /// defaults (10 seats, 3 live holds per buyer); the rate limit is raised so it never refuses
    /// (the clients are fast, and rate limits are tested elsewhere).
    Token,
}

/// The `Authorization` header of a buyer in `mode`.
fn auth_header(mode: Mode, user: &str) -> Vec<(&'static str, String)> {
    match mode {
        Mode::Trusting => Vec::new(),
        Mode::Token => vec![("authorization", format!("Bearer {}", jwt(user, json!({}))))],
    }
}

fn instance_env(pg: &PgPool, redis_url: &str, mode: Mode) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("DATABASE_URL", database_url(pg)),
        ("REDIS_URL", redis_url.to_string()),
        ("APP__REDIS__KEY_PREFIX", "faults".into()),
        ("APP__REDIS__RESPONSE_TIMEOUT_MS", "300".into()),
        ("APP__REDIS__CONNECT_TIMEOUT_MS", "300".into()),
        ("APP__REDIS__POOL_WAIT_TIMEOUT_MS", "500".into()),
        ("APP__HOLDS__TTL_SECONDS", TTL_SECONDS.to_string()),
        ("APP__HOLDS__CONFIRM_GRACE_SECONDS", "5".into()),
        ("APP__HOLDS__SWEEP_INTERVAL_SECONDS", "1".into()),
        ("APP__BREAKER__FAILURE_THRESHOLD", "3".into()),
        ("APP__BREAKER__OPEN_SECONDS", "1".into()),
        ("APP__IDEMPOTENCY__LEASE_SECONDS", "2".into()),
        ("APP__DATABASE__MAX_CONNECTIONS", "8".into()),
        ("APP__DATABASE__ACQUIRE_TIMEOUT_MS", "1500".into()),
        ("APP__SERVER__REQUEST_TIMEOUT_MS", "2500".into()),
        ("APP__LOG__LEVEL", "error".into()),
    ];
    if mode == Mode::Token {
        env.extend([
            ("APP__AUTH__MODE", "token".to_string()),
            ("APP__AUTH__JWT__HS256_SECRET", JWT_SECRET.to_string()),
            ("APP__LIMITS__RATE__USER_PER_SECOND", "100000".to_string()),
            ("APP__LIMITS__RATE__USER_BURST", "100000".to_string()),
        ]);
    }
    env
}

/// The Redis side of a run, and the faults it takes.
enum Backend {
    /// A redis-server of the run's own; two seatlock processes on it.
    Standalone(RedisServer),
    /// A Redis Cluster of the run's own (3 masters + 3 replicas); three seatlock processes.
    Cluster(RedisCluster),
}

impl Backend {
    /// How many seatlock processes run on it.
    fn instances(&self) -> usize {
        match self {
            Backend::Standalone(_) => 2,
            Backend::Cluster(_) => 3,
        }
    }

    fn describe(&self) -> String {
        match self {
            Backend::Standalone(_) => "a redis-server, 2 seatlock processes".into(),
            Backend::Cluster(c) => format!(
                "a Redis Cluster (3 masters + 3 replicas on {}-{}, node timeout {} ms), 3 seatlock processes",
                c.base(),
                c.base() + 5,
                c.node_timeout_ms()
            ),
        }
    }

    /// The instances' environment: `instance_env`, pointed at this Redis.
    fn env(&self, pg: &PgPool, mode: Mode) -> Vec<(&'static str, String)> {
        match self {
            Backend::Standalone(redis) => instance_env(pg, &redis.url(), mode),
            Backend::Cluster(cluster) => {
                let mut env = instance_env(pg, "", mode);
                env.retain(|(k, _)| *k != "REDIS_URL");
                env.extend([
                    ("APP__REDIS__MODE", "cluster".to_string()),
                    ("APP__REDIS__CLUSTER_URLS", cluster.urls()),
                ]);
                env
            }
        }
    }

    /// SIGSTOP of the Redis serving `key` (found while every node answers). Returns what the
    /// faults call it (the standalone name is the suite's old one) and its pid, for `resume`.
    fn pause(&self, key: &str) -> (String, u32) {
        match self {
            Backend::Standalone(redis) => {
                redis.signal("STOP");
                ("redis".into(), redis.pid().unwrap_or(0))
            }
            Backend::Cluster(cluster) => {
                let port = cluster.master_of(key, None);
                let pid: u32 = redis_cli(port, &["info", "server"])
                    .lines()
                    .find_map(|l| l.strip_prefix("process_id:"))
                    .and_then(|p| p.trim().parse().ok())
                    .expect("process_id");
                signal(pid, "STOP");
                (format!("the event's master :{port}"), pid)
            }
        }
    }

    /// SIGCONT of what `pause` stopped.
    fn resume(&self, pid: u32) {
        match self {
            Backend::Standalone(redis) => redis.signal("CONT"),
            Backend::Cluster(_) => signal(pid, "CONT"),
        }
    }

    /// Fault 1: `kill -9` of the Redis serving `key`, back after a while. Standalone: restarted
    /// empty after 1.5 s. Cluster: its replica is promoted after the node timeout (plus an
    /// election); after 4 s the killed node is started again from its nodes.conf and rejoins as
    /// a replica (`scripts/redis-cluster.sh start` returns once the cluster is healthy).
    /// Returns the outage's name and what was done.
    fn kill_and_restart(&mut self, key: &str) -> (String, String) {
        match self {
            Backend::Standalone(redis) => {
                redis.kill();
                std::thread::sleep(Duration::from_millis(1500));
                redis.restart();
                (
                    "kill -9 redis".into(),
                    "kill -9 redis + restart (empty)".into(),
                )
            }
            Backend::Cluster(cluster) => {
                let killed = cluster.master_of(key, None);
                cluster.kill(killed);
                std::thread::sleep(Duration::from_millis(4000));
                let restarted = Instant::now();
                let out = Command::new("bash")
                    .arg(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/scripts/redis-cluster.sh"
                    ))
                    .arg("start")
                    .arg(cluster.dir())
                    .env("REDIS_CLUSTER_PORT", cluster.base().to_string())
                    .env(
                        "REDIS_CLUSTER_NODE_TIMEOUT_MS",
                        cluster.node_timeout_ms().to_string(),
                    )
                    .output()
                    .expect("scripts/redis-cluster.sh runs");
                assert!(
                    out.status.success(),
                    "the killed node did not rejoin: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let promoted = cluster.master_of(key, None);
                let role = redis_cli(killed, &["role"]);
                let role = role.lines().next().unwrap_or("?");
                (
                    "kill -9 master".into(),
                    format!(
                        "kill -9 the event's master :{killed}; :{promoted} promoted; :{killed} restarted after 4 s, back as a {role}, cluster healthy {} ms later",
                        restarted.elapsed().as_millis()
                    ),
                )
            }
        }
    }

    /// The URLs of the masters (the one redis-server when standalone).
    fn masters(&self) -> Vec<String> {
        match self {
            Backend::Standalone(redis) => vec![redis.url()],
            Backend::Cluster(cluster) => cluster_nodes(cluster, true),
        }
    }

    /// The URLs of every node (the one redis-server when standalone).
    fn nodes(&self) -> Vec<String> {
        match self {
            Backend::Standalone(redis) => vec![redis.url()],
            Backend::Cluster(cluster) => cluster_nodes(cluster, false),
        }
    }
}

/// `redis-cli -p port args`, given up after 5 s (a stopped node accepts and never answers).
fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .args(["5", "redis-cli", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

/// The URLs of the cluster's live nodes (`masters`: only the masters serving slots), as the
/// first node that answers sees them.
fn cluster_nodes(cluster: &RedisCluster, masters: bool) -> Vec<String> {
    let view = (cluster.base()..cluster.base() + 6)
        .map(|p| redis_cli(p, &["cluster", "nodes"]))
        .find(|v| !v.trim().is_empty())
        .expect("a live node");
    let mut urls: Vec<String> = view
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() >= 8 && !f[2].contains("fail"))
        .filter(|f| !masters || (f[2].contains("master") && f.len() > 8))
        .filter_map(|f| f[1].split('@').next().map(|a| format!("redis://{a}")))
        .collect();
    urls.sort();
    urls
}

/// `kill -SIG pid`.
fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
}

/// One client: reserve (keyed, sometimes retried), then confirm, release, abandon, or pause
/// past the TTL and confirm.
async fn client(
    id: u64,
    seed: u64,
    event: i64,
    ports: Vec<u16>,
    mode: Mode,
    stop: Arc<AtomicBool>,
    history: Arc<Mutex<Vec<Op>>>,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ (id * 7919));
    let codes: Vec<String> = (1..=SEATS).map(|i| format!("S{i}")).collect();
    let mut n = 0;
    let record = |op: Op| history.lock().unwrap_or_else(|e| e.into_inner()).push(op);
    let user = format!("c{id}");
    let auth = auth_header(mode, &user);
    let headers = |key: &str| {
        let mut h: Vec<(&str, String)> = vec![("idempotency-key", key.to_string())];
        h.extend(auth.iter().cloned());
        h
    };
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        // Half seats only, a third GA units only, the rest a seat and units in one hold.
        let kind: f64 = rng.random();
        let want = if kind < 0.5 {
            rng.random_range(1..=3)
        } else if kind < 0.83 {
            0
        } else {
            1
        };
        let units: i64 = if kind < 0.5 {
            0
        } else {
            rng.random_range(1..=3)
        };
        let seats: Vec<String> = codes.choose_multiple(&mut rng, want).cloned().collect();
        let key = format!("r-{id}-{n}");
        let port = ports[rng.random_range(0..ports.len())];
        let body = if units > 0 {
            json!({"userId": user, "seatCodes": seats, "tiers": [{"code": "GA", "quantity": units}]})
        } else {
            json!({"userId": user, "seatCodes": seats})
        };
        let path = format!("/events/{event}/seats/reserve");
        let mut hold = None;
        let tries = if rng.random_bool(0.15) { 2 } else { 1 };
        for t in 0..tries {
            let port = if t == 0 {
                port
            } else {
                ports[rng.random_range(0..ports.len())]
            };
            let started = Instant::now();
            let mut outcome = http(
                port,
                "POST",
                &path,
                Some(&body),
                &as_refs(&headers(&key)),
                CALL_TIMEOUT,
            )
            .await;
            if outcome == Outcome::Refused {
                // That instance is down; a load balancer would send the request to another
                // (the next one: no draw from the seeded generator).
                let at = ports.iter().position(|p| *p == port).unwrap_or(0);
                let other = ports[(at + 1) % ports.len()];
                outcome = http(
                    other,
                    "POST",
                    &path,
                    Some(&body),
                    &as_refs(&headers(&key)),
                    CALL_TIMEOUT,
                )
                .await;
            }
            if let Outcome::Status(200, b) = &outcome {
                hold = b["holdGroupId"].as_str().map(str::to_string);
            }
            record(Op {
                kind: Kind::Reserve,
                key: key.clone(),
                seats: seats.clone(),
                units,
                hold: hold.clone(),
                started,
                outcome,
            });
        }
        let Some(hold) = hold else {
            tokio::time::sleep(Duration::from_millis(rng.random_range(5..30))).await;
            continue;
        };
        // 60% confirm at once, 20% release, 10% abandon to expiry, 10% pause past the TTL and confirm.
        let roll: f64 = rng.random();
        let hold_body = json!({"userId": user, "holdGroupId": hold});
        let (confirm, pause) = (!(0.6..0.9).contains(&roll), roll >= 0.9);
        if confirm {
            if pause {
                tokio::time::sleep(Duration::from_millis(TTL_SECONDS * 1000 + 400)).await;
            }
            let key = format!("c-{id}-{n}");
            let mut confirmed = false;
            for _ in 0..4 {
                let port = ports[rng.random_range(0..ports.len())];
                let started = Instant::now();
                let path = format!("/events/{event}/seats/confirm");
                let outcome = http(
                    port,
                    "POST",
                    &path,
                    Some(&hold_body),
                    &as_refs(&headers(&key)),
                    CALL_TIMEOUT,
                )
                .await;
                let retry = matches!(status(&outcome), None | Some(503 | 500))
                    || matches!(&outcome, Outcome::Status(409, b) if b["code"] == "IDEMPOTENCY_KEY_IN_FLIGHT");
                confirmed |= status(&outcome) == Some(200);
                record(Op {
                    kind: Kind::Confirm,
                    key: key.clone(),
                    seats: seats.clone(),
                    units,
                    hold: Some(hold.clone()),
                    started,
                    outcome,
                });
                if !retry {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            // Most buyers cancel again, so seats keep coming back and clients keep colliding.
            if confirmed && rng.random_bool(0.85) {
                let key = format!("x-{id}-{n}");
                let body = json!({"userId": user});
                for _ in 0..4 {
                    let port = ports[rng.random_range(0..ports.len())];
                    let started = Instant::now();
                    let outcome = http(
                        port,
                        "POST",
                        &format!("/bookings/{hold}/cancel"),
                        Some(&body),
                        &as_refs(&headers(&key)),
                        CALL_TIMEOUT,
                    )
                    .await;
                    let done = status(&outcome) == Some(200);
                    record(Op {
                        kind: Kind::Cancel,
                        key: key.clone(),
                        seats: seats.clone(),
                        units,
                        hold: Some(hold.clone()),
                        started,
                        outcome,
                    });
                    if done {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        } else if roll < 0.8 {
            let started = Instant::now();
            let path = format!("/events/{event}/seats/release");
            let outcome = http(
                port,
                "POST",
                &path,
                Some(&hold_body),
                &as_refs(&auth),
                CALL_TIMEOUT,
            )
            .await;
            record(Op {
                kind: Kind::Release,
                key: String::new(),
                seats,
                units,
                hold: Some(hold),
                started,
                outcome,
            });
        }
        // else: abandoned, left to expire.
    }
}

fn as_refs<'a>(headers: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    headers.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The fault schedule, run on its own thread: each fault in turn, with calm in between. On a
/// cluster the Redis faults hit the master of `event`'s slot (found again before each fault: the
/// first one moves it), FLUSHALL every master and SCRIPT FLUSH every node.
fn inject_faults(
    mut backend: Backend,
    mut instances: Vec<Seatlock>,
    event: i64,
    db_url: String,
    outages: Arc<Mutex<Vec<(String, Instant, Instant)>>>,
) -> (Backend, Vec<Seatlock>, Vec<String>) {
    let calm = || std::thread::sleep(Duration::from_millis(1500));
    let mut done = Vec::new();
    let slot_key = format!("faults:{{e:{event}}}:seats");
    let redis_cmd = |url: &str, args: &[&str]| {
        if let Ok(client) = redis::Client::open(url)
            && let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(1))
        {
            let mut cmd = redis::cmd(args[0]);
            for a in &args[1..] {
                cmd.arg(*a);
            }
            let _: redis::RedisResult<redis::Value> = cmd.query(&mut conn);
        }
    };
    let terminate_backends = || {
        let _ = Command::new("psql")
            .arg(&db_url)
            .args(["-Atqc", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'seatlock' AND pid <> pg_backend_pid()"])
            .output();
    };
    calm();
    // 1. kill -9 Redis (the event's master), restart it (empty / as a replica).
    let t = Instant::now();
    let (outage, what) = backend.kill_and_restart(&slot_key);
    outages
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((outage, t, Instant::now()));
    done.push(what);
    calm();
    // 2. SIGSTOP Redis (the event's master) for longer than the timeouts (shorter than the
    //    cluster's node timeout: no failover).
    let t = Instant::now();
    let (what, pid) = backend.pause(&slot_key);
    std::thread::sleep(Duration::from_millis(1500));
    backend.resume(pid);
    outages.lock().unwrap_or_else(|e| e.into_inner()).push((
        format!("SIGSTOP {what}"),
        t,
        Instant::now(),
    ));
    done.push(format!("SIGSTOP/SIGCONT {what} 1.5 s"));
    calm();
    // 3. FLUSHALL (every master).
    for url in backend.masters() {
        redis_cmd(&url, &["FLUSHALL"]);
    }
    done.push(match &backend {
        Backend::Standalone(_) => "FLUSHALL".to_string(),
        Backend::Cluster(_) => format!("FLUSHALL on every master {:?}", backend.masters()),
    });
    calm();
    // 4. SCRIPT FLUSH (every node).
    for url in backend.nodes() {
        redis_cmd(&url, &["SCRIPT", "FLUSH"]);
    }
    done.push(match &backend {
        Backend::Standalone(_) => "SCRIPT FLUSH".to_string(),
        Backend::Cluster(_) => format!("SCRIPT FLUSH on every node ({})", backend.nodes().len()),
    });
    calm();
    // 5. kill -9 a seatlock process mid-load, restart it.
    instances[0].kill();
    std::thread::sleep(Duration::from_millis(1000));
    instances[0].spawn();
    done.push("kill -9 seatlock #0 + restart".to_string());
    calm();
    // 6. Terminate seatlock's Postgres backends mid-transaction, twice.
    terminate_backends();
    std::thread::sleep(Duration::from_millis(300));
    terminate_backends();
    done.push("pg_terminate_backend x2".to_string());
    calm();
    // 7. Mixed: pause Redis (the event's master), kill another seatlock, terminate backends;
    //    then recover.
    let t = Instant::now();
    let (what, pid) = backend.pause(&slot_key);
    instances[1].kill();
    terminate_backends();
    std::thread::sleep(Duration::from_millis(1200));
    backend.resume(pid);
    outages
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(("mixed".into(), t, Instant::now()));
    instances[1].spawn();
    done.push(format!(
        "mixed: SIGSTOP {what} + kill -9 seatlock #1 + pg_terminate_backend"
    ));
    calm();
    (backend, instances, done)
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn under_faults_no_seat_is_sold_twice_and_no_acknowledged_booking_is_lost(pg: PgPool) {
    let redis = Backend::Standalone(RedisServer::start());
    fault_suite(pg, Mode::Trusting, redis, "fault-suite-report.txt").await;
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn in_token_mode_under_faults_no_seat_is_sold_twice_and_no_buyer_passes_its_cap(pg: PgPool) {
    let redis = Backend::Standalone(RedisServer::start());
    fault_suite(pg, Mode::Token, redis, "fault-suite-token-report.txt").await;
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn on_a_redis_cluster_under_faults_no_seat_is_sold_twice_and_no_acknowledged_booking_is_lost(
    pg: PgPool,
) {
    let redis = Backend::Cluster(RedisCluster::start());
    fault_suite(pg, Mode::Trusting, redis, "fault-suite-cluster-report.txt").await;
}

async fn fault_suite(pg: PgPool, mode: Mode, backend: Backend, report_file: &str) {
    let seed: u64 = std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let env = backend.env(&pg, mode);
    let instances: Vec<Seatlock> = (0..backend.instances())
        .map(|_| Seatlock::start(&env))
        .collect();
    let ports: Vec<u16> = instances.iter().map(|s| s.port).collect();
    let admin = match mode {
        Mode::Trusting => Vec::new(),
        Mode::Token => vec![(
            "authorization",
            format!("Bearer {}", jwt("fault-admin", json!({"role": "admin"}))),
        )],
    };
    let created = http(
        ports[0],
        "POST",
        "/events",
        Some(&json!({"name": "Faults", "date": "2030-01-01T20:00:00Z", "location": "Lab", "totalSeats": SEATS,
            "tiers": [{"code": "GA", "capacity": GA_CAPACITY}]})),
        &as_refs(&admin),
        CALL_TIMEOUT,
    )
    .await;
    let Outcome::Status(201, body) = created else {
        panic!("create event: {created:?}")
    };
    let event = body["eventId"].as_i64().expect("eventId");

    let stop = Arc::new(AtomicBool::new(false));
    let history: Arc<Mutex<Vec<Op>>> = Arc::default();
    let outages: Arc<Mutex<Vec<(String, Instant, Instant)>>> = Arc::default();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (stop, history, ports) = (stop.clone(), history.clone(), ports.clone());
            tokio::spawn(client(i, seed, event, ports, mode, stop, history))
        })
        .collect();
    let db_url = database_url(&pg);
    let outages_w = outages.clone();
    let injector =
        std::thread::spawn(move || inject_faults(backend, instances, event, db_url, outages_w));
    let (backend, instances, faults) = loop {
        if injector.is_finished() {
            break injector.join().expect("injector");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client task");
    }
    // Let every hold end by TTL (and the Postgres sweeper run) before checking.
    tokio::time::sleep(Duration::from_millis(TTL_SECONDS * 1000 + 1500)).await;
    let history = history.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut report = vec![format!(
        "mode {mode:?}; seed {seed}; history: {} operations; faults injected: {}",
        history.len(),
        faults.len()
    )];
    report.push(format!("  redis: {}", backend.describe()));
    report.extend(faults.iter().map(|f| format!("  fault: {f}")));

    // Postgres, the truth.
    let rows: Vec<(uuid::Uuid, String, bool)> = sqlx::query_as(
        "SELECT booking_group_id, seat_code, active FROM booking_seats WHERE event_id = $1",
    )
    .bind(event)
    .fetch_all(&pg)
    .await
    .expect("bookings");
    // Every booking (cancelled ones too) with its seats and its units of GA.
    let ids: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT booking_group_id FROM bookings WHERE event_id = $1")
            .bind(event)
            .fetch_all(&pg)
            .await
            .expect("bookings");
    let mut booked: HashMap<String, (BTreeSet<String>, i64)> = ids
        .iter()
        .map(|id| (id.to_string(), Default::default()))
        .collect();
    for (id, seat, _) in &rows {
        booked
            .entry(id.to_string())
            .or_default()
            .0
            .insert(seat.clone());
    }
    let tier_rows: Vec<(uuid::Uuid, i32, bool)> = sqlx::query_as(
        "SELECT booking_group_id, quantity, active FROM booking_tiers WHERE event_id = $1",
    )
    .bind(event)
    .fetch_all(&pg)
    .await
    .expect("tier lines");
    for (id, quantity, _) in &tier_rows {
        booked.entry(id.to_string()).or_default().1 = i64::from(*quantity);
    }
    let reserves_ok: HashMap<String, (BTreeSet<String>, i64)> = history
        .iter()
        .filter(|o| matches!(o.kind, Kind::Reserve) && status(&o.outcome) == Some(200))
        .filter_map(|o| {
            Some((
                o.hold.clone()?,
                (o.seats.iter().cloned().collect(), o.units),
            ))
        })
        .collect();

    // 1. No seat in two confirmed bookings.
    let mut seen = HashSet::new();
    let double: Vec<&String> = rows
        .iter()
        .filter(|(_, _, active)| *active)
        .map(|(_, s, _)| s)
        .filter(|s| !seen.insert(*s))
        .collect();
    report.push(format!(
        "check 1 no seat sold twice: {}",
        if double.is_empty() {
            "ok".into()
        } else {
            format!("FAILED {double:?}")
        }
    ));

    // 2. Every 200 confirm is present with exactly its seats and units; unknown ones
    //    all-or-nothing.
    let mut lost = Vec::new();
    let mut partial = Vec::new();
    let confirms: Vec<&Op> = history
        .iter()
        .filter(|o| matches!(o.kind, Kind::Confirm))
        .collect();
    for op in &confirms {
        let hold = op.hold.clone().unwrap_or_default();
        let want: (BTreeSet<String>, i64) = (op.seats.iter().cloned().collect(), op.units);
        match (&op.outcome, booked.get(&hold)) {
            (Outcome::Status(200, _), Some(have)) if *have == want => {}
            (Outcome::Status(200, _), _) => lost.push(hold),
            (Outcome::Unknown, Some(have)) if *have != want => partial.push(hold),
            _ => {}
        }
    }
    let acked = confirms
        .iter()
        .filter(|o| status(&o.outcome) == Some(200))
        .count();
    report.push(format!(
        "check 2 acknowledged confirms present with their seats and units: {} ({acked} acknowledged, {} unknown)",
        if lost.is_empty() && partial.is_empty() {
            "ok".into()
        } else {
            format!("FAILED lost {lost:?} partial {partial:?}")
        },
        confirms
            .iter()
            .filter(|o| o.outcome == Outcome::Unknown)
            .count()
    ));

    // 3. Every booking traces back to a confirm sent for a hold of those same seats and units.
    let sent: HashSet<String> = confirms.iter().filter_map(|o| o.hold.clone()).collect();
    let orphans: Vec<&String> = booked
        .iter()
        .filter(|(id, seats)| !sent.contains(*id) || reserves_ok.get(*id) != Some(*seats))
        .map(|(id, _)| id)
        .collect();
    report.push(format!(
        "check 3 every booking traces to a confirm of its hold: {}",
        if orphans.is_empty() {
            format!("ok ({} bookings)", booked.len())
        } else {
            format!("FAILED {orphans:?}")
        }
    ));

    // 4. One Idempotency-Key never produced two holds or two bookings.
    let mut by_key: HashMap<&str, HashSet<String>> = HashMap::new();
    for op in &history {
        if let Outcome::Status(200, b) = &op.outcome {
            let id = match op.kind {
                Kind::Reserve => b["holdGroupId"].as_str(),
                Kind::Confirm => b["bookingGroupId"].as_str(),
                Kind::Release | Kind::Cancel => None,
            };
            if let Some(id) = id {
                by_key
                    .entry(op.key.as_str())
                    .or_default()
                    .insert(id.to_string());
            }
        }
    }
    let split: Vec<&&str> = by_key
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(k, _)| k)
        .collect();
    report.push(format!(
        "check 4 one key, one hold / one booking: {}",
        if split.is_empty() {
            format!("ok ({} keys)", by_key.len())
        } else {
            format!("FAILED {split:?}")
        }
    ));

    // 8. The tier: never sold past its capacity, and `sold` is exactly its active booking lines.
    let (capacity, tier_sold): (i32, i32) =
        sqlx::query_as("SELECT capacity, sold FROM tiers WHERE event_id = $1 AND tier_code = 'GA'")
            .bind(event)
            .fetch_one(&pg)
            .await
            .expect("tier");
    let lines: i64 = tier_rows
        .iter()
        .filter(|(_, _, active)| *active)
        .map(|(_, q, _)| i64::from(*q))
        .sum();
    let tier_ok = tier_sold <= capacity && i64::from(tier_sold) == lines;
    report.push(format!(
        "check 8 tier GA: units sold <= capacity, sold = active booking lines: {} (sold {tier_sold} of {capacity}, lines {lines})",
        if tier_ok { "ok" } else { "FAILED" }
    ));

    // 5. Every seat not booked can be held again; no Redis hold key lives without a TTL (on
    //    any master, for a cluster).
    let mut immortal = Vec::new();
    for url in backend.masters() {
        let mut conn = redis::Client::open(url.as_str())
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("redis");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("faults:*")
            .query_async(&mut conn)
            .await
            .expect("keys");
        for k in keys
            .iter()
            .filter(|k| k.contains(":seat:") || k.contains(":hold:"))
        {
            let ttl: i64 = redis::cmd("PTTL")
                .arg(k)
                .query_async(&mut conn)
                .await
                .expect("pttl");
            if ttl == -1 {
                immortal.push(k.clone());
            }
        }
    }
    let sold: HashSet<String> = rows
        .iter()
        .filter(|(_, _, a)| *a)
        .map(|(_, s, _)| s.clone())
        .collect();
    let mut stuck = Vec::new();
    for i in 1..=SEATS {
        let code = format!("S{i}");
        if sold.contains(&code) {
            continue;
        }
        // A buyer of its own per seat, so the caps of token mode do not stand in the way.
        let checker = format!("final-check-{i}");
        let body = json!({"userId": checker, "seatCodes": [code]});
        let outcome = http(
            instances[i as usize % instances.len()].port,
            "POST",
            &format!("/events/{event}/seats/reserve"),
            Some(&body),
            &as_refs(&auth_header(mode, &checker)),
            CALL_TIMEOUT,
        )
        .await;
        if status(&outcome) != Some(200) {
            stuck.push((code, outcome));
        }
    }
    // Every unsold unit of GA can be held again, a few per buyer.
    let left = i64::from(capacity - tier_sold);
    for chunk in 0..(left + 2) / 3 {
        let units = (left - chunk * 3).min(3);
        let checker = format!("final-ga-{chunk}");
        let body = json!({"userId": checker, "tiers": [{"code": "GA", "quantity": units}]});
        let outcome = http(
            instances[chunk as usize % instances.len()].port,
            "POST",
            &format!("/events/{event}/seats/reserve"),
            Some(&body),
            &as_refs(&auth_header(mode, &checker)),
            CALL_TIMEOUT,
        )
        .await;
        if status(&outcome) != Some(200) {
            stuck.push((format!("GA x{units}"), outcome));
        }
    }
    report.push(format!(
        "check 5 every unsold seat and unit holdable again, no key without TTL: {}",
        if stuck.is_empty() && immortal.is_empty() {
            format!("ok ({} seats, {left} units)", SEATS as usize - sold.len())
        } else {
            format!("FAILED stuck {stuck:?} immortal {immortal:?}")
        }
    ));

    // 6. During Redis outages, holds kept succeeding through the fallback.
    let outages = outages.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut window_ok = true;
    for (name, from, to) in &outages {
        let during: Vec<&Op> = history
            .iter()
            .filter(|o| matches!(o.kind, Kind::Reserve) && o.started >= *from && o.started <= *to)
            .collect();
        let ok = during
            .iter()
            .filter(|o| status(&o.outcome) == Some(200))
            .count();
        let conflict = during
            .iter()
            .filter(|o| status(&o.outcome) == Some(409))
            .count();
        let other = during.len() - ok - conflict;
        window_ok &= ok > 0;
        report.push(format!("  outage {name}: {} reserves, {ok} held, {conflict} refused (409), {other} failed; success ratio {:.2}", during.len(), ok as f64 / (ok + other).max(1) as f64));
    }
    report.push(format!(
        "check 6 holds succeed during Redis outages: {}",
        if window_ok { "ok" } else { "FAILED" }
    ));
    // 7. (token mode) No buyer holds more confirmed seats than its cap.
    let over_cap: Vec<(String, i64)> = if mode == Mode::Token {
        sqlx::query_as(
            "SELECT b.user_id, sum(u.n)::bigint FROM bookings b JOIN ( \
                 SELECT booking_group_id, 1 AS n FROM booking_seats WHERE event_id = $1 AND active \
                 UNION ALL \
                 SELECT booking_group_id, quantity FROM booking_tiers WHERE event_id = $1 AND active \
             ) u ON u.booking_group_id = b.booking_group_id \
             WHERE b.event_id = $1 GROUP BY b.user_id HAVING sum(u.n) > 10",
        )
        .bind(event)
        .fetch_all(&pg)
        .await
        .expect("caps")
    } else {
        Vec::new()
    };
    if mode == Mode::Token {
        let capped = history
            .iter()
            .filter(|o| matches!(&o.outcome, Outcome::Status(409, b) if b["code"] == "USER_LIMIT_REACHED"))
            .count();
        report.push(format!(
            "check 7 no buyer over 10 confirmed seats and units: {} ({capped} requests refused by a cap)",
            if over_cap.is_empty() {
                "ok".to_string()
            } else {
                format!("FAILED {over_cap:?}")
            }
        ));
    }
    let five_hundreds = history
        .iter()
        .filter(|o| status(&o.outcome) == Some(500))
        .count();
    report.push(format!("internal errors (500): {five_hundreds}"));
    // Where the holds were taken (the store bit of a holdGroupId, see domain::holds): shows the
    // run exercised Redis (or the cluster) and not only the Postgres fallback.
    let in_postgres = |id: &uuid::Uuid| id.get_version_num() == 8 && id.as_bytes()[6] & 1 == 1;
    let held: Vec<uuid::Uuid> = reserves_ok.keys().filter_map(|h| h.parse().ok()).collect();
    report.push(format!(
        "holds taken: {} in Redis, {} in Postgres (fallback)",
        held.iter().filter(|id| !in_postgres(id)).count(),
        held.iter().filter(|id| in_postgres(id)).count()
    ));

    let text = report.join("\n");
    println!("{text}");
    let path = format!("{}/target/{report_file}", env!("CARGO_MANIFEST_DIR"));
    let _ = std::fs::write(path, &text);
    drop(instances);
    assert!(
        double.is_empty()
            && lost.is_empty()
            && partial.is_empty()
            && orphans.is_empty()
            && split.is_empty()
            && over_cap.is_empty()
            && tier_ok,
        "{text}"
    );
    assert!(
        stuck.is_empty() && immortal.is_empty() && window_ok && five_hundreds == 0,
        "{text}"
    );
}

/// SIGTERM under load: the process drains, exits 0, and every confirm it acknowledged is in
/// Postgres.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn sigterm_under_load_loses_no_acknowledged_booking(pg: PgPool) {
    let redis = RedisServer::start();
    let mut env = instance_env(&pg, &redis.url(), Mode::Trusting);
    env.push(("APP__SERVER__SHUTDOWN_GRACE_SECONDS", "10".into()));
    let mut instance = Seatlock::start(&env);
    let port = instance.port;
    let created = http(port, "POST", "/events", Some(&json!({"name": "Drain", "date": "2030-01-01T20:00:00Z", "location": "Lab", "totalSeats": 2000})), &[], CALL_TIMEOUT).await;
    let Outcome::Status(201, body) = created else {
        panic!("{created:?}")
    };
    let event = body["eventId"].as_i64().expect("id");
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let workers: Vec<_> = (0..16u32)
        .map(|w| {
            let acked = acked.clone();
            tokio::spawn(async move {
                for n in 0..120u32 {
                    let seat = format!("S{}", w * 120 + n + 1);
                    let user = format!("w{w}");
                    let r = http(
                        port,
                        "POST",
                        &format!("/events/{event}/seats/reserve"),
                        Some(&json!({"userId": user, "seatCodes": [seat]})),
                        &[],
                        CALL_TIMEOUT,
                    )
                    .await;
                    let Outcome::Status(200, b) = r else {
                        if r == Outcome::Refused {
                            break;
                        } else {
                            continue;
                        }
                    };
                    let hold = b["holdGroupId"].as_str().unwrap_or_default().to_string();
                    let c = http(
                        port,
                        "POST",
                        &format!("/events/{event}/seats/confirm"),
                        Some(&json!({"userId": user, "holdGroupId": hold})),
                        &[],
                        CALL_TIMEOUT,
                    )
                    .await;
                    match c {
                        Outcome::Status(200, _) => acked
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((hold, seat)),
                        Outcome::Refused => break,
                        _ => {}
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let exit = tokio::task::spawn_blocking(move || instance.terminate())
        .await
        .expect("join");
    for w in workers {
        w.await.expect("worker");
    }
    assert_eq!(exit, Some(0), "seatlock exits 0 after draining");
    let acked = acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(!acked.is_empty(), "load ran before the signal");
    for (hold, seat) in &acked {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT seat_code FROM booking_seats WHERE event_id = $1 AND booking_group_id = $2::uuid AND active",
        )
        .bind(event)
        .bind(hold)
        .fetch_optional(&pg)
        .await
        .expect("query");
        assert_eq!(
            found.as_deref(),
            Some(seat.as_str()),
            "acknowledged booking {hold} lost"
        );
    }
    println!(
        "sigterm drain: {} acknowledged bookings, all present",
        acked.len()
    );
    drop(redis);
}
