//! Traces: the real binary exports its spans over OTLP/HTTP (protobuf) to a fake collector in
//! this process, continuing the caller's `traceparent` down to the Redis and Postgres calls;
//! every response names its span in a `traceparent` header, export or not; and a collector that
//! cannot be reached never slows a hold.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use sqlx::PgPool;

use crate::support::{Outcome, Seatlock, TestApp, database_url, free_port, http, redis_url};

const CALL: Duration = Duration::from_secs(5);
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// One received span with the `service.name` of its resource.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    instance: String,
    span: Span,
}

/// A fake OTLP/HTTP collector on a port of its own: keeps every span posted to `/v1/traces`.
async fn collector() -> (u16, Arc<Mutex<Vec<Received>>>) {
    collector_on(0).await
}

/// [`collector`] on `port` (0: any free port).
async fn collector_on(port: u16) -> (u16, Arc<Mutex<Vec<Received>>>) {
    async fn accept(State(spans): State<Arc<Mutex<Vec<Received>>>>, body: Bytes) -> StatusCode {
        let Ok(request) = ExportTraceServiceRequest::decode(body) else {
            return StatusCode::BAD_REQUEST;
        };
        let mut spans = spans.lock().expect("lock");
        for resource_spans in request.resource_spans {
            let attrs = resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default();
            let service = string_attr(&attrs, "service.name").unwrap_or_default();
            let instance = string_attr(&attrs, "service.instance.id").unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push(Received {
                        service: service.clone(),
                        instance: instance.clone(),
                        span,
                    });
                }
            }
        }
        StatusCode::OK
    }
    let spans = Arc::new(Mutex::new(Vec::new()));
    // `/hook`: a webhook receiver beside the collector (see the delivery test).
    let app = Router::new()
        .route("/v1/traces", post(accept))
        .route("/hook", post(|| async { StatusCode::NO_CONTENT }))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, spans)
}

fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            AnyValue::IntValue(i) => Some(i.to_string()),
            _ => None,
        }
    })
}

/// An attribute that must be exported as an integer (the semantic conventions' type), not text.
fn int_attr(attrs: &[KeyValue], key: &str) -> Option<i64> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::IntValue(i) => Some(*i),
            _ => None,
        }
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn env(pg: &PgPool, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("DATABASE_URL", database_url(pg)),
        ("REDIS_URL", redis_url()),
        (
            "APP__REDIS__KEY_PREFIX",
            format!("traces-{}", uuid::Uuid::new_v4().simple()),
        ),
        // Export does not depend on the log level.
        ("APP__LOG__LEVEL", "warn".to_string()),
        // The SDK's batch delay (5 s by default), short for the test.
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_string()),
    ];
    env.extend(extra.iter().cloned());
    env
}

/// The setting that exports to a collector on a local port.
fn endpoint(port: u16) -> (&'static str, String) {
    (
        "APP__TELEMETRY__OTLP__ENDPOINT",
        format!("http://127.0.0.1:{port}"),
    )
}

async fn create_event(port: u16) -> i64 {
    let body = json!({"name": "Traced", "date": "2030-01-01T20:00:00Z", "location": "Lab",
                      "totalSeats": 4});
    match http(port, "POST", "/events", Some(&body), &[], CALL).await {
        Outcome::Status(201, b) => b["eventId"].as_i64().expect("id"),
        other => panic!("create event: {other:?}"),
    }
}

/// Whether `span`'s parent chain, within `spans`, reaches the span id `root`.
fn descends_from(span: &Span, spans: &[Span], root: &str) -> bool {
    let mut parent = hex(&span.parent_span_id);
    for _ in 0..16 {
        if parent == root {
            return true;
        }
        match spans.iter().find(|s| hex(&s.span_id) == parent) {
            Some(p) => parent = hex(&p.parent_span_id),
            None => return false,
        }
    }
    false
}

/// A hold on one instance and its confirm on another, both under the caller's `traceparent`:
/// one trace, each instance's request span a child of the caller's, the Redis and Postgres spans
/// and the hold decision's below them; a refused hold's decision names its reason.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_hold_and_its_confirm_are_exported_under_the_callers_trace(pg: PgPool) {
    let (collector_port, received) = collector().await;
    let shared = env(&pg, &[endpoint(collector_port)]);
    let (first, second) = (Seatlock::start(&shared), Seatlock::start(&shared));
    let event = create_event(first.port).await;
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let headers = [
        ("traceparent", traceparent.as_str()),
        ("tracestate", "checkout=7f3a,other=1"),
    ];
    let hold = json!({"userId": "u1", "seatCodes": ["S1"]});
    let reserve = format!("/events/{event}/seats/reserve");
    let hold_id = match http(first.port, "POST", &reserve, Some(&hold), &headers, CALL).await {
        Outcome::Status(200, b) => b["holdGroupId"].as_str().expect("hold").to_string(),
        other => panic!("hold: {other:?}"),
    };
    let confirm = json!({"userId": "u1", "holdGroupId": hold_id});
    let path = format!("/events/{event}/seats/confirm");
    let outcome = http(second.port, "POST", &path, Some(&confirm), &headers, CALL).await;
    assert!(matches!(outcome, Outcome::Status(200, _)), "{outcome:?}");
    let again = json!({"userId": "u2", "seatCodes": ["S1"]});
    let outcome = http(first.port, "POST", &reserve, Some(&again), &headers, CALL).await;
    assert!(matches!(outcome, Outcome::Status(409, _)), "{outcome:?}");

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let all = received.lock().expect("lock").clone();
        let ours: Vec<Span> = all
            .iter()
            .filter(|r| hex(&r.span.trace_id) == TRACE_ID)
            .map(|r| r.span.clone())
            .collect();
        let attr = |s: &Span, k: &str| string_attr(&s.attributes, k);
        let of_system = |system: &str| {
            ours.iter()
                .filter(|s| attr(s, "db.system.name").as_deref() == Some(system))
                .filter(|s| descends_from(s, &ours, PARENT_ID))
                .count()
        };
        let requests = ours
            .iter()
            .filter(|s| hex(&s.parent_span_id) == PARENT_ID)
            .filter(|s| attr(s, "http.route").is_some())
            .count();
        let decisions: Vec<&Span> = ours
            .iter()
            .filter(|s| s.name == "seatlock.hold")
            .filter(|s| descends_from(s, &ours, PARENT_ID))
            .collect();
        if requests >= 3
            && of_system("redis") >= 1
            && of_system("postgresql") >= 1
            && decisions.len() >= 2
        {
            let instances: std::collections::HashSet<&str> = all
                .iter()
                .filter(|r| hex(&r.span.trace_id) == TRACE_ID)
                .inspect(|r| assert_eq!(r.service, "seatlock"))
                .map(|r| r.instance.as_str())
                .collect();
            assert_eq!(instances.len(), 2, "two instances: {instances:?}");
            assert!(instances.iter().all(|i| uuid::Uuid::parse_str(i).is_ok()));
            let redis = ours
                .iter()
                .find(|s| attr(s, "db.system.name").as_deref() == Some("redis"))
                .expect("redis span");
            assert!(attr(redis, "seatlock.script").is_some(), "{redis:?}");
            let pg_span = ours
                .iter()
                .find(|s| attr(s, "db.system.name").as_deref() == Some("postgresql"))
                .expect("postgres span");
            assert!(attr(pg_span, "db.operation.name").is_some(), "{pg_span:?}");
            assert_eq!(int_attr(&pg_span.attributes, "seatlock.retries"), Some(0));
            let request = ours
                .iter()
                .find(|s| attr(s, "http.route").is_some())
                .expect("request span");
            assert_eq!(
                attr(request, "http.request.method").as_deref(),
                Some("POST")
            );
            // The caller's vendor state travels with its trace.
            assert_eq!(request.trace_state, "checkout=7f3a,other=1");
            let statuses: Vec<i64> = ours
                .iter()
                .filter_map(|s| int_attr(&s.attributes, "http.response.status_code"))
                .collect();
            assert!(statuses.contains(&200), "{statuses:?}");
            assert!(statuses.contains(&409), "{statuses:?}");
            let decision = |outcome: &str| {
                decisions
                    .iter()
                    .find(|s| attr(s, "seatlock.hold.outcome").as_deref() == Some(outcome))
                    .unwrap_or_else(|| panic!("no {outcome} decision: {decisions:#?}"))
            };
            let held = decision("held");
            assert_eq!(int_attr(&held.attributes, "seatlock.hold.seats"), Some(1));
            assert_eq!(attr(held, "seatlock.hold.reason"), None);
            let refused = decision("refused");
            assert_eq!(
                attr(refused, "seatlock.hold.reason").as_deref(),
                Some("booked")
            );
            assert_eq!(
                attr(refused, "seatlock.hold.code").as_deref(),
                Some("SEATS_UNAVAILABLE")
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "spans of the trace not all received: {ours:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Redis call that fails is a failed span (status ERROR, `error.type`): the trace of a 503
/// names the store that failed, not only the request.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_failed_redis_call_is_an_error_span(pg: PgPool) {
    let (collector_port, received) = collector().await;
    let no_redis = format!("redis://127.0.0.1:{}", free_port());
    let instance = Seatlock::start(&env(
        &pg,
        &[
            endpoint(collector_port),
            ("REDIS_URL", no_redis),
            ("APP__HOLDS__FALLBACK", "reject".to_string()),
        ],
    ));
    let event = create_event(instance.port).await;
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let hold = json!({"userId": "u1", "seatCodes": ["S1"]});
    let reserve = format!("/events/{event}/seats/reserve");
    let headers = [("traceparent", traceparent.as_str())];
    let outcome = http(instance.port, "POST", &reserve, Some(&hold), &headers, CALL).await;
    assert!(matches!(outcome, Outcome::Status(503, _)), "{outcome:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let failed = received.lock().expect("lock").iter().find_map(|r| {
            let redis = string_attr(&r.span.attributes, "db.system.name");
            (hex(&r.span.trace_id) == TRACE_ID && redis.as_deref() == Some("redis"))
                .then(|| r.span.clone())
        });
        if let Some(span) = failed {
            let status = span.status.as_ref().map(|s| s.code);
            // STATUS_CODE_ERROR
            assert_eq!(status, Some(2), "{span:?}");
            assert_eq!(
                string_attr(&span.attributes, "error.type").as_deref(),
                Some("connection"),
                "{span:?}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no Redis span reached the collector"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn every_response_carries_a_traceparent_without_an_exporter(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let event = app.create_event(2).await;
    let sent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let body = json!({"userId": "u1", "seatCodes": ["S1"]}).to_string();
    let path = format!("/events/{event}/seats/reserve");
    let (status, headers, _) = app
        .call_raw("POST", &path, Some(body), &[("traceparent", &sent)])
        .await;
    assert_eq!(status, StatusCode::OK);
    let got = headers["traceparent"].to_str().expect("ascii").to_string();
    assert!(
        got.starts_with(&format!("00-{TRACE_ID}-")) && got.ends_with("-01"),
        "{got}"
    );
    assert!(
        !got.contains(PARENT_ID),
        "the response names its own span: {got}"
    );
    for path in ["/healthz", "/no/such/route", &format!("/events/{event}")] {
        let (_, headers, _) = app.call_raw("GET", path, None, &[]).await;
        let got = headers["traceparent"].to_str().expect("ascii");
        let parts: Vec<&str> = got.split('-').collect();
        assert_eq!(parts.len(), 4, "{path}: {got}");
        assert_eq!((parts[0], parts[1].len(), parts[2].len()), ("00", 32, 16));
    }
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn an_unreachable_collector_never_slows_a_hold(pg: PgPool) {
    let closed = free_port();
    let instance = Seatlock::start(&env(&pg, &[endpoint(closed)]));
    let event = create_event(instance.port).await;
    let path = format!("/events/{event}/seats/reserve");
    for seat in ["S1", "S2", "S3", "S4"] {
        let started = Instant::now();
        let body = json!({"userId": format!("u-{seat}"), "seatCodes": [seat]});
        let outcome = http(instance.port, "POST", &path, Some(&body), &[], CALL).await;
        assert!(matches!(outcome, Outcome::Status(200, _)), "{outcome:?}");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let metrics = metrics_text(instance.port);
    assert!(
        metrics.contains("seatlock_otel_spans_dropped_total"),
        "the drop counter is registered from the start"
    );
}

/// After a failed export no spans are made (a back-off of 1 s, doubling): the requests pay
/// nothing for a collector that cannot take them, and still answer with a `traceparent`. When
/// the collector comes back, the first export after the back-off reaches it and spans flow again.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn export_pauses_while_the_collector_is_down_and_resumes_when_it_is_back(pg: PgPool) {
    let port = free_port();
    let instance = Seatlock::start(&env(&pg, &[endpoint(port)]));
    let event = create_event(instance.port).await;
    let path = format!("/events/{event}/seats/reserve");
    let hold = |seat: &str| json!({"userId": format!("u-{seat}"), "seatCodes": [seat]});
    let (status, tp) = raw(instance.port, "POST", &path, Some(&hold("S1")));
    assert_eq!((status, tp.len()), (200, 55), "{tp}");
    // The export of that hold's spans fails (nothing listens): paused, counted.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = metrics_text(instance.port);
        if metric(&m, "seatlock_otel_export_failures_total") >= 1.0
            && metric(&m, "seatlock_otel_export_paused") == 1.0
        {
            break;
        }
        assert!(Instant::now() < deadline, "no failed export seen:\n{m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Paused: a hold still answers at once with a well-formed traceparent of its own.
    let started = Instant::now();
    let (status, tp) = raw(instance.port, "POST", &path, Some(&hold("S2")));
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(
        tp.split('-').map(str::len).collect::<Vec<_>>(),
        [2, 32, 16, 2]
    );
    // The collector comes up on that port: after the back-off, a hold's spans reach it.
    let (_, received) = collector_on(port).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seat = 3;
    loop {
        if !received.lock().expect("lock").is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no span after the collector came back"
        );
        if seat <= 4 {
            let (status, _) = raw(
                instance.port,
                "POST",
                &path,
                Some(&hold(&format!("S{seat}"))),
            );
            assert_eq!(status, 200);
            seat += 1;
        } else {
            let _ = raw(instance.port, "GET", &format!("/events/{event}"), None);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let m = metrics_text(instance.port);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut paused = metric(&m, "seatlock_otel_export_paused");
    while paused != 0.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        paused = metric(&metrics_text(instance.port), "seatlock_otel_export_paused");
    }
    assert_eq!(paused, 0.0, "a successful export ends the pause");
}

/// One request over a fresh connection: the status and the `traceparent` header ("" if none).
fn raw(port: u16, method: &str, path: &str, body: Option<&serde_json::Value>) -> (u16, String) {
    let out = exchange(port, method, path, body);
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let tp = out
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("traceparent")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, tp)
}

/// One HTTP/1.1 exchange over a fresh connection (blocking): the whole answer, head and body.
fn exchange(port: u16, method: &str, path: &str, body: Option<&serde_json::Value>) -> String {
    use std::io::{Read, Write};
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(CALL)).expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The value of an unlabelled metric in a Prometheus text page (NaN when absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// The text of `GET /metrics`.
fn metrics_text(port: u16) -> String {
    exchange(port, "GET", "/metrics", None)
}

/// An instance exporting to the collector on `collector_port` that delivers webhooks to local
/// receivers and flushes its history every 200 ms.
fn delivering(pg: &PgPool, collector_port: u16) -> Seatlock {
    Seatlock::start(&env(
        pg,
        &[
            endpoint(collector_port),
            ("APP__WEBHOOKS__ALLOW_PRIVATE_NETWORKS", "true".to_string()),
            ("APP__HISTORY__FLUSH_MS", "200".to_string()),
        ],
    ))
}

/// A webhook delivery is a client span of its own, with the endpoint, the message and the
/// receiver's status (a hold's message: the root of its own trace).
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_webhook_delivery_is_exported_as_a_client_span(pg: PgPool) {
    let (collector_port, received) = collector().await;
    let instance = delivering(&pg, collector_port);
    let hook = json!({"url": format!("http://127.0.0.1:{collector_port}/hook")});
    let endpoint = match http(instance.port, "POST", "/webhooks", Some(&hook), &[], CALL).await {
        Outcome::Status(201, b) => b["id"].as_str().expect("id").to_string(),
        other => panic!("create webhook: {other:?}"),
    };
    let event = create_event(instance.port).await;
    let hold = json!({"userId": "u1", "seatCodes": ["S1"]});
    let path = format!("/events/{event}/seats/reserve");
    let outcome = http(instance.port, "POST", &path, Some(&hold), &[], CALL).await;
    assert!(matches!(outcome, Outcome::Status(200, _)), "{outcome:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let all = received.lock().expect("lock").clone();
        let delivered = all.iter().map(|r| &r.span).find(|s| {
            string_attr(&s.attributes, "seatlock.webhook.endpoint").as_deref()
                == Some(endpoint.as_str())
        });
        if let Some(span) = delivered {
            assert_eq!(span.name, "POST webhook");
            assert_eq!(
                int_attr(&span.attributes, "http.response.status_code"),
                Some(204),
                "{span:?}"
            );
            assert!(string_attr(&span.attributes, "seatlock.webhook.message").is_some());
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no webhook span in {} spans",
            all.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A booking's webhook continues the trace of the confirm that made it: each delivery attempt's
/// span descends from the caller's span through the confirm's, and the receiver gets a
/// `traceparent` naming that attempt's span.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_bookings_webhook_continues_the_confirms_trace(pg: PgPool) {
    type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;
    async fn hook(
        State(seen): State<Seen>,
        headers: axum::http::HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let kind = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|b| b["type"].as_str().map(str::to_string))
            .unwrap_or_default();
        let traceparent = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        seen.lock().expect("lock").push((kind, traceparent));
        StatusCode::NO_CONTENT
    }
    let seen: Seen = Arc::default();
    let receiver = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let receiver_port = receiver.local_addr().expect("addr").port();
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(receiver, app).await });

    let (collector_port, received) = collector().await;
    let instance = delivering(&pg, collector_port);
    let hook = json!({"url": format!("http://127.0.0.1:{receiver_port}/hook"),
                      "types": ["booking.confirmed"]});
    let outcome = http(instance.port, "POST", "/webhooks", Some(&hook), &[], CALL).await;
    assert!(matches!(outcome, Outcome::Status(201, _)), "{outcome:?}");
    let event = create_event(instance.port).await;
    let hold = json!({"userId": "u1", "seatCodes": ["S1"]});
    let reserve = format!("/events/{event}/seats/reserve");
    let hold_id = match http(instance.port, "POST", &reserve, Some(&hold), &[], CALL).await {
        Outcome::Status(200, b) => b["holdGroupId"].as_str().expect("hold").to_string(),
        other => panic!("hold: {other:?}"),
    };
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let confirm = json!({"userId": "u1", "holdGroupId": hold_id});
    let path = format!("/events/{event}/seats/confirm");
    let headers = [("traceparent", traceparent.as_str())];
    let outcome = http(instance.port, "POST", &path, Some(&confirm), &headers, CALL).await;
    assert!(matches!(outcome, Outcome::Status(200, _)), "{outcome:?}");

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ours: Vec<Span> = received
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| hex(&r.span.trace_id) == TRACE_ID)
            .map(|r| r.span.clone())
            .collect();
        let delivery = ours.iter().find(|s| s.name == "POST webhook");
        let sent = seen.lock().expect("lock").clone();
        if let (Some(delivery), Some((kind, header))) = (delivery, sent.first()) {
            assert!(descends_from(delivery, &ours, PARENT_ID), "{ours:#?}");
            let confirm_request = ours
                .iter()
                .find(|s| string_attr(&s.attributes, "http.route").is_some())
                .expect("the confirm's request span");
            assert!(
                descends_from(delivery, &ours, &hex(&confirm_request.span_id)),
                "the delivery is below the confirm's request: {ours:#?}"
            );
            assert_eq!(
                int_attr(&delivery.attributes, "http.response.status_code"),
                Some(204)
            );
            assert_eq!(kind, "booking.confirmed");
            let expected = format!("00-{TRACE_ID}-{}-01", hex(&delivery.span_id));
            assert_eq!(header.as_deref(), Some(expected.as_str()), "{sent:?}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no delivery span in the confirm's trace: {ours:#?}, received {sent:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
