//! Metrics that move with the API, request ids, and JSON logs from the real binary.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use sqlx::PgPool;

use crate::support::{TestApp, database_url, free_port, redis_url};

/// Sum of every sample of `name` whose labels contain all of `labels` (the recorder is shared by
/// the whole test process, so tests compare before/after, never absolute values).
fn sample(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn scrape(app: &TestApp) -> String {
    let (status, _, body) = app.call_raw("GET", "/metrics", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    String::from_utf8(body).expect("utf8")
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_hold_a_refused_hold_and_a_confirm_each_move_their_counters(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(3).await;
    let before = scrape(&app).await;
    let hold = app.hold(id, "u1", &["S1"]).await;
    let after_hold = scrape(&app).await;
    assert!(
        sample(&after_hold, "seatlock_holds_acquired_total", &[])
            >= sample(&before, "seatlock_holds_acquired_total", &[]) + 1.0
    );

    assert_eq!(app.reserve(id, "u2", &["S1"]).await.0, StatusCode::CONFLICT);
    let after_refusal = scrape(&app).await;
    let refused = |m: &str| sample(m, "seatlock_holds_refused_total", &["reason=\"held\""]);
    assert!(refused(&after_refusal) >= refused(&after_hold) + 1.0);
    // A body that is not a hold request is an invalid hold too.
    let bad = serde_json::json!({"userId": "u2", "seatCodes": "S2"});
    let path = format!("/events/{id}/seats/reserve");
    assert_eq!(
        app.call("POST", &path, Some(bad)).await.0,
        StatusCode::BAD_REQUEST
    );
    let invalid = |m: &str| sample(m, "seatlock_holds_refused_total", &["reason=\"invalid\""]);
    assert!(invalid(&scrape(&app).await) >= invalid(&after_refusal) + 1.0);

    assert_eq!(app.confirm(id, "u1", &hold).await.0, StatusCode::OK);
    let after_confirm = scrape(&app).await;
    let booked = |m: &str| sample(m, "seatlock_confirms_total", &["outcome=\"booked\""]);
    assert!(booked(&after_confirm) >= booked(&after_refusal) + 1.0);

    // Histograms render as histograms, with buckets; pool gauges are present.
    assert!(after_confirm.contains("seatlock_redis_command_duration_seconds_bucket{op=\"hold\""));
    assert!(
        after_confirm.contains("seatlock_postgres_query_duration_seconds_bucket{op=\"confirm\"")
    );
    assert!(after_confirm.contains(
        "seatlock_http_request_duration_seconds_bucket{route=\"/events/{event_id}/seats/reserve\""
    ));
    assert!(
        sample(
            &after_confirm,
            "seatlock_postgres_pool_max_connections",
            &[]
        ) >= 1.0
    );
    assert!(after_confirm.contains("# HELP seatlock_holds_acquired_total"));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn every_response_carries_a_request_id(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let (_, headers, _) = app
        .call_raw("GET", "/events/77", None, &[("x-request-id", "abc-123")])
        .await;
    assert_eq!(
        headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("abc-123")
    );
    let (_, headers, _) = app.call_raw("GET", "/nowhere", None, &[]).await;
    let generated = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("generated id");
    assert!(uuid::Uuid::parse_str(generated).is_ok());
}

/// Minimal HTTP/1.1 client for talking to the spawned binary.
fn http(port: u16, method: &str, path: &str, body: &str, request_id: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nx-request-id: {request_id}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split(' ').nth(1)?.parse().ok()
}

/// What the real binary writes on stdout while it starts and creates one event (request id
/// `trace-me-42`), with `env` on top of its own database and Redis key prefix. With
/// `at_terminal`, its stdout is a pseudo-terminal (`script` from util-linux), as in a shell.
fn logs_of_the_binary(pg: &PgPool, env: &[(&str, &str)], at_terminal: bool) -> String {
    let port = free_port();
    let prefix = format!("test:{}", uuid::Uuid::new_v4().simple());
    let bin = env!("CARGO_BIN_EXE_seatlock");
    let mut command = if at_terminal {
        let mut c = Command::new("script");
        c.args(["-qfec", bin, "/dev/null"]);
        c
    } else {
        Command::new(bin)
    };
    command
        .env("DATABASE_URL", database_url(pg))
        .env("REDIS_URL", redis_url())
        .env("PORT", port.to_string())
        .env("APP__REDIS__KEY_PREFIX", &prefix)
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().expect("spawn seatlock");
    // Drained as it runs, so a full pipe never stalls the service.
    let out = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(out).read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while http(port, "GET", "/healthz", "", "probe") != Some(200) {
        assert!(Instant::now() < deadline, "seatlock did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let created = http(
        port,
        "POST",
        "/events",
        r#"{"name":"Gig","date":"2030-01-10T18:00:00Z","location":"Hall","totalSeats":2}"#,
        "trace-me-42",
    );
    assert_eq!(created, Some(201));
    // SIGTERM to the service itself (under `script`, its child), which drains and exits.
    let _ = if at_terminal {
        Command::new("pkill")
            .args(["-TERM", "-P", &child.id().to_string()])
            .status()
    } else {
        Command::new("kill").arg(child.id().to_string()).status()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.wait();
    reader.join().expect("reader")
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn json_logs_carry_the_request_id_on_every_line_of_the_request(pg: PgPool) {
    let text = logs_of_the_binary(
        &pg,
        &[("APP__LOG__FORMAT", "json"), ("RUST_LOG", "info")],
        false,
    );
    let lines: Vec<&str> = text.lines().collect();
    let ours: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap_or_else(|e| panic!("not JSON: {l}: {e}"))
        })
        .filter(|v| v.to_string().contains("trace-me-42"))
        .collect();
    assert!(
        !ours.is_empty(),
        "no log line carries the request id: {lines:?}"
    );
    assert!(
        ours.iter().any(|v| v["span"]["request_id"] == "trace-me-42" && v["message"] == "request finished"),
        "{ours:?}"
    );
    // The request's trace and span ids at the top of every line of the request.
    for v in &ours {
        let trace_id = v["trace_id"].as_str().unwrap_or_default();
        let span_id = v["span_id"].as_str().unwrap_or_default();
        assert_eq!((trace_id.len(), span_id.len()), (32, 16), "{v}");
        assert_eq!(v["span"]["trace_id"], trace_id, "{v}");
    }
    assert!(
        !text.contains('\x1b'),
        "colour codes in JSON logs: {text:?}"
    );
}

/// At `warn` the lines kept are the ones an operator must match to a request and a trace: they
/// carry the request's ids at the top although its (`info`) span is not logged. (A Redis that
/// does not answer makes the event's creation log a warning inside its request.)
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn json_logs_at_warn_still_carry_the_request_and_trace_ids(pg: PgPool) {
    let env = [
        ("APP__LOG__FORMAT", "json"),
        ("RUST_LOG", "warn"),
        ("REDIS_URL", "redis://127.0.0.1:1"),
    ];
    let text = logs_of_the_binary(&pg, &env, false);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|v| v["level"] == "WARN" || v["level"] == "ERROR"),
        "only warnings and errors at warn: {text}"
    );
    let ours: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["request_id"] == "trace-me-42")
        .collect();
    assert!(!ours.is_empty(), "no warning names its request: {text}");
    for v in ours {
        let trace_id = v["trace_id"].as_str().unwrap_or_default();
        let span_id = v["span_id"].as_str().unwrap_or_default();
        assert_eq!((trace_id.len(), span_id.len()), (32, 16), "{v}");
    }
}

/// Text logs in a file or a pipe are plain (`grep DEBUG` finds them); colour only at a terminal,
/// and not even there when `NO_COLOR` is set (no-color.org).
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn text_logs_are_coloured_only_at_a_terminal_without_no_color(pg: PgPool) {
    let debug = [("APP__LOG__FORMAT", "text"), ("RUST_LOG", "debug")];
    let piped = logs_of_the_binary(&pg, &debug, false);
    assert!(!piped.contains('\x1b'), "colour codes in a pipe: {piped:?}");
    assert!(
        piped
            .lines()
            .any(|l| l.contains(" DEBUG ") || l.contains(" INFO ")),
        "plain level names: {piped:?}"
    );
    assert!(piped.contains("trace-me-42"), "{piped:?}");

    let at_terminal = logs_of_the_binary(&pg, &debug, true);
    assert!(
        at_terminal.contains("\x1b["),
        "a terminal gets colour: {at_terminal:?}"
    );
    let no_color = [debug[0], debug[1], ("NO_COLOR", "1")];
    let at_terminal_no_color = logs_of_the_binary(&pg, &no_color, true);
    assert!(
        at_terminal_no_color.contains("trace-me-42"),
        "{at_terminal_no_color:?}"
    );
    assert!(
        !at_terminal_no_color.contains('\x1b'),
        "NO_COLOR at a terminal: {at_terminal_no_color:?}"
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn tier_holds_count_their_units_in_the_hold_funnel(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = crate::tiers::ga_event(&app, 5).await;
    let before = scrape(&app).await;
    crate::tiers::hold_units(&app, id, "u1", "GA", 3).await;
    let (status, _) = crate::tiers::reserve_units(&app, id, "u2", &[], &[("GA", 4)]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let after = scrape(&app).await;
    let moved = |name: &str| sample(&after, name, &[]) - sample(&before, name, &[]);
    // At least: the recorder is shared by the test process.
    assert!(moved("seatlock_tier_holds_attempted_total") >= 2.0);
    assert!(moved("seatlock_tier_units_requested_total") >= 7.0);
    assert!(moved("seatlock_tier_units_held_total") >= 3.0);
    assert!(
        moved("seatlock_hold_size_seats_sum") >= 7.0,
        "units in the size histogram"
    );
    assert!(after.contains("# HELP seatlock_tier_units_held_total"));
}
