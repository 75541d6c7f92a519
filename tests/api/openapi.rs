//! The API document: served without a token, OpenAPI 3.1, and complete: every route of the
//! router (read from the `.route(...)` calls of `src/http/`) is in it, and every operation in it
//! is answered by the router; every event the seat-map stream writes (read from the `event:`
//! lines of `src/http/stream.rs`) is described in it. Swagger UI is served from the binary, with
//! no CDN.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

use crate::support::{TestApp, redis_url, token_mode};

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// (method, path) of every route declared in `src/http/*.rs`.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("src/http") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            // A module directory (src/http/serve/: the connection layer) declares no routes.
            continue;
        }
        let text = std::fs::read_to_string(path).expect("read");
        for (at, _) in text.match_indices(".route(") {
            let rest = &text[at + ".route(".len()..];
            let Some(path) = rest
                .trim_start()
                .strip_prefix('"')
                .and_then(|r| r.split('"').next())
            else {
                continue;
            };
            // The method router: up to the `)` that closes `.route(`.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(rest.len(), |(i, _)| i);
            let call = &rest[..end];
            for method in METHODS {
                let direct = format!(", {method}(");
                let chained = format!(".{method}(");
                if call.contains(&direct) || call.contains(&chained) {
                    routes.insert((method.to_string(), path.to_string()));
                }
            }
        }
        // Swagger UI and the document it serves.
        for (marker, method) in [
            ("SwaggerUi::new(\"", "get"),
            (".external_url_unchecked(\"", "get"),
        ] {
            for (at, _) in text.match_indices(marker) {
                let path = text[at + marker.len()..]
                    .split('"')
                    .next()
                    .unwrap_or_default();
                routes.insert((method.to_string(), path.to_string()));
            }
        }
    }
    routes
}

fn routes_in_document(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(*method).is_some() {
                routes.insert((method.to_string(), path.clone()));
            }
        }
    }
    routes
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn every_route_of_the_router_is_in_the_api_document(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), token_mode);
    let (status, headers, body) = app.call_raw("GET", "/openapi.json", None, &[]).await;
    assert_eq!(status, StatusCode::OK, "served without a token");
    assert!(
        headers["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/json")
    );
    let doc: Value = serde_json::from_slice(&body).expect("json");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));

    let declared = routes_in_source();
    assert!(
        declared.len() >= 14,
        "the route scan found too little: {declared:?}"
    );
    let documented = routes_in_document(&doc);
    let missing: Vec<_> = declared.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );

    // And every documented operation exists: the router answers it with something other than
    // "no such route" or "wrong method".
    for (method, path) in &documented {
        let concrete = path
            .replace("{event_id}", "1")
            .replace("{file}", "app.js")
            .replace("{booking_id}", "00000000-0000-0000-0000-000000000000");
        let body = (method == "post").then(|| "{}".to_string());
        let (status, _, bytes) = app
            .call_raw(&method.to_uppercase(), &concrete, body, &[])
            .await;
        let code = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .map(|b| b["code"].clone());
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_ne!(code, Some(Value::from("NOT_FOUND")), "{method} {path}");
    }

    // Every operation but the open ones needs the bearer token.
    let open = [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/",
        "/e/{event_id}",
        "/assets/{file}",
    ];
    for (method, path) in &documented {
        let security = &doc["paths"][path][method]["security"];
        if open.contains(&path.as_str()) {
            assert_eq!(security, &serde_json::json!([{}]), "{path} is open");
        } else {
            assert!(
                security.is_null(),
                "{method} {path} uses the global bearer requirement"
            );
        }
    }
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn swagger_ui_is_served_from_the_binary(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), token_mode);
    let (status, _, body) = app.call_raw("GET", "/docs/", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(body).expect("utf8");
    assert!(page.contains("swagger-ui-bundle.js"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no CDN: {page}"
    );
    let (status, _, js) = app
        .call_raw("GET", "/docs/swagger-ui-bundle.js", None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(js.len() > 100_000, "the bundle itself, vendored");
}

#[test]
fn the_document_carries_this_deployments_limits() {
    let mut settings = crate::support::test_settings(&redis_url());
    settings.events.max_seats = 1234;
    settings.events.max_tiers = 7;
    settings.events.max_tier_capacity = 4321;
    settings.holds.max_seats_per_hold = 6;
    let doc = seatlock::http::openapi::document(&settings);
    for (pointer, want) in [
        (
            "/components/schemas/CreateEventBody/properties/totalSeats/maximum",
            1234,
        ),
        (
            "/components/schemas/CreateEventBody/properties/seats/maxItems",
            1234,
        ),
        (
            "/components/schemas/CreateEventBody/properties/tiers/maxItems",
            7,
        ),
        (
            "/components/schemas/TierInput/properties/capacity/maximum",
            4321,
        ),
        (
            "/components/schemas/ReserveBody/properties/seatCodes/maxItems",
            6,
        ),
        (
            "/components/schemas/ReserveBody/properties/tiers/maxItems",
            6,
        ),
        (
            "/components/schemas/TierLineInput/properties/quantity/maximum",
            6,
        ),
        (
            "/components/schemas/BestAvailableInput/properties/count/maximum",
            6,
        ),
        (
            "/components/schemas/CreateEventBody/properties/rows/maxItems",
            1234,
        ),
        (
            "/components/schemas/RowInput/properties/seats/maximum",
            1234,
        ),
    ] {
        assert_eq!(doc.pointer(pointer), Some(&Value::from(want)), "{pointer}");
    }
}

/// Every operation that takes a body may answer 413 (a body over `server.max_body_bytes` is
/// refused before the handler), so the document says so for each of them: schemathesis found
/// `POST /events/{id}/seats/unblock` answering an undocumented 413.
#[test]
fn every_operation_with_a_body_documents_413() {
    let doc = seatlock::http::openapi::document(&crate::support::test_settings(&redis_url()));
    let paths = doc["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for (path, item) in paths {
        for method in ["post", "put", "patch"] {
            if let Some(op) = item.get(method)
                && op["responses"].get("413").is_none()
            {
                missing.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "operations without a documented 413: {missing:?}"
    );
}

/// What `src/http/stream.rs` writes into a stream: the `event:` names and the comments (`: name`),
/// read from the string literals that start a line of the stream with them.
fn stream_lines_in_source() -> (BTreeSet<String>, BTreeSet<String>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/stream.rs");
    let text = std::fs::read_to_string(path).expect("src/http/stream.rs");
    // A line of the stream starts a string literal, or follows a `\n` inside one.
    let starts_a_line = |at: usize| text[..at].ends_with('"') || text[..at].ends_with("\\n");
    let name_after = |rest: &str| -> String {
        rest.trim_start_matches(' ')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    };
    let mut events = BTreeSet::new();
    for (at, _) in text.match_indices("event:") {
        if !starts_a_line(at) {
            continue;
        }
        let name = name_after(&text[at + "event:".len()..]);
        assert!(
            !name.is_empty(),
            "src/http/stream.rs writes an `event:` line whose name is not a literal (write it \
             out, so that this test sees it): {}",
            text[at..].chars().take(40).collect::<String>()
        );
        events.insert(name);
    }
    let mut comments = BTreeSet::new();
    for (at, _) in text.match_indices(": ") {
        // Not the `": ` that follows a key in JSON text (`"data": ...`): a literal that opens.
        let opens_a_literal = text[..at].ends_with("b\"") || text[..at].ends_with("(\"");
        if opens_a_literal || text[..at].ends_with("\\n") {
            comments.insert(name_after(&text[at + 1..]));
        }
    }
    (events, comments)
}

/// Follows a `{"$ref": "#/components/schemas/..."}` to the schema it names.
fn resolve<'d>(doc: &'d Value, schema: &'d Value) -> &'d Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("a local reference");
            doc.pointer(pointer)
                .unwrap_or_else(|| panic!("{reference} is not in the document"))
        }
        None => schema,
    }
}

#[test]
fn the_document_describes_every_event_the_seat_map_stream_sends() {
    let (written, comments) = stream_lines_in_source();
    assert!(
        written.contains("snapshot") && written.contains("update"),
        "the scan of src/http/stream.rs found too little: {written:?}"
    );
    assert!(
        comments.contains("heartbeat"),
        "the scan found no heartbeat: {comments:?}"
    );

    let doc = seatlock::http::openapi::document(&crate::support::test_settings(&redis_url()));
    let response = &doc["paths"]["/events/{event_id}/stream"]["get"]["responses"]["200"];
    let media = &response["content"]["text/event-stream"];
    assert!(
        media["itemSchema"].is_null(),
        "a 3.1 document: `schema` describes one event (itemSchema is OpenAPI 3.2)"
    );
    let event = resolve(&doc, &media["schema"]);
    let variants = event["oneOf"]
        .as_array()
        .expect("one schema per event name");
    let mapping = event["discriminator"]["mapping"]
        .as_object()
        .expect("a discriminator on `event`");
    assert_eq!(event["discriminator"]["propertyName"], "event");

    let mut documented = BTreeSet::new();
    for variant in variants {
        let schema = resolve(&doc, variant);
        let name = schema["properties"]["event"]["const"]
            .as_str()
            .unwrap_or_else(|| panic!("an event schema without an `event` const: {schema}"))
            .to_string();
        assert_eq!(
            mapping.get(&name).and_then(Value::as_str),
            variant["$ref"].as_str(),
            "the discriminator maps `{name}` to its schema"
        );
        let required: Vec<&str> = schema["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for field in ["event", "id", "data"] {
            assert!(required.contains(&field), "`{name}` requires {field}");
        }
        let data = &schema["properties"]["data"];
        assert_eq!(data["type"], "string", "`{name}`: data is a line of text");
        assert_eq!(data["contentMediaType"], "application/json", "`{name}`");
        let content = resolve(&doc, &data["contentSchema"]);
        assert_eq!(content["type"], "object", "`{name}`: its data's schema");
        documented.insert(name);
    }
    assert_eq!(
        written, documented,
        "every `event:` that src/http/stream.rs writes has a schema in the document, and every \
         documented event is written"
    );

    // Comments are not events (no data): the description names them.
    let description = format!("{} {}", response["description"], event["description"]);
    for comment in &comments {
        assert!(
            description.contains(&format!(": {comment}")),
            "the stream's `: {comment}` comments are described: {description}"
        );
    }
}

#[test]
fn the_document_lists_every_error_code_and_the_headers_of_401_429_and_503() {
    let doc = seatlock::http::openapi::document(&crate::support::test_settings(&redis_url()));
    assert_eq!(
        doc.pointer("/components/schemas/ErrorBody/properties/code/$ref"),
        Some(&serde_json::json!("#/components/schemas/ErrorCode"))
    );
    let codes = doc
        .pointer("/components/schemas/ErrorCode/enum")
        .and_then(|c| c.as_array())
        .expect("an enum of codes");
    for code in [
        "UNAUTHENTICATED",
        "HOLD_EXPIRED",
        "SEATS_UNAVAILABLE",
        "RATE_LIMITED",
    ] {
        assert!(codes.contains(&serde_json::json!(code)), "{code}");
    }
    let reserve = "/paths/~1events~1{event_id}~1seats~1reserve/post/responses";
    for (status, header) in [
        ("401", "WWW-Authenticate"),
        ("429", "Retry-After"),
        ("429", "RateLimit-Policy"),
        ("429", "RateLimit"),
    ] {
        assert!(
            doc.pointer(&format!("{reserve}/{status}/headers/{header}"))
                .is_some(),
            "{status} {header}"
        );
    }
}
