//! Admission from a waiting room, and channels from credentials: with `admission.mode` on, a
//! hold needs a token for its event in `Seatlock-Admission` (checked before anything else: valid,
//! expired, another event's, tampered, another algorithm, `alg: none`), an AWS-style JWT or a
//! Queue-it token checked here against an HMAC made in the test; one admission has at most
//! `admission.max_live_holds` live holds, also under concurrency and in Postgres; admins and
//! `--no-admission` keys skip it. Channel seats follow an API key's `--channel` and a JWT's
//! `channels` claim.

use std::sync::Arc;

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::future::join_all;
use hmac::{KeyInit, Mac};
use seatlock::config::{AdmissionMode, Secret};
use seatlock::domain::access::{KeyRole, NewApiKey};
use seatlock::domain::holds::HoldStore;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::{RedisServer, TestApp, jwt, now_secs, redis_url, sign, token_mode};

const ADMISSION_SECRET: &str = "waiting-room-secret-of-at-least-32-bytes!";

/// An AWS Virtual Waiting Room style token for `event`, `sub` the request id.
fn admission(event: i64, sub: &str, extra: Value) -> String {
    let now = now_secs();
    let mut claims = json!({"aud": event.to_string(), "sub": sub, "token_use": "access",
        "iat": now, "nbf": now, "exp": now + 600, "iss": "https://queue.example"});
    if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    sign(&claims, ADMISSION_SECRET)
}

fn jwt_admission(s: &mut seatlock::config::Settings) {
    token_mode(s);
    s.admission.mode = AdmissionMode::Jwt;
    s.admission.jwt.hs256_secret = Secret::new(ADMISSION_SECRET);
}

async fn key(app: &TestApp, name: &str, role: KeyRole, channels: &[&str], skips: bool) -> String {
    let mut new = NewApiKey::new(name, role);
    new.channels = channels.iter().map(|c| c.to_string()).collect();
    new.skips_admission = skips || role == KeyRole::Admin;
    match app.state.seatlock.create_api_key(&new).await.expect("key") {
        seatlock::service::KeyCreated::Created(key) => key,
        other => panic!("{other:?}"),
    }
}

/// A reserve as `token`, with `admission` in `Seatlock-Admission` when given.
async fn reserve(
    app: &TestApp,
    token: &str,
    admission: Option<&str>,
    event: i64,
    body: Value,
) -> (StatusCode, Value) {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("authorization", auth.as_str())];
    if let Some(a) = admission {
        headers.push(("seatlock-admission", a));
    }
    let (status, _, bytes) = app
        .call_raw(
            "POST",
            &format!("/events/{event}/seats/reserve"),
            Some(body.to_string()),
            &headers,
        )
        .await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn seats(codes: &[&str]) -> Value {
    json!({"seatCodes": codes})
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn an_admission_token_is_checked_before_anything_else(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), jwt_admission);
    let admin = key(&app, "admin", KeyRole::Admin, &[], true).await;
    let id = app.create_event_as(&admin, 10).await;
    let buyer = jwt("b1", json!({}));
    let refused = |(status, body): (StatusCode, Value)| {
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("ADMISSION_REQUIRED")),
            "{body}"
        );
    };
    // None, and before a 404 of an unknown event or seat, and before a 400 of a bad seat list.
    refused(reserve(&app, &buyer, None, id, seats(&["S1"])).await);
    refused(reserve(&app, &buyer, None, 999_999, seats(&["S1"])).await);
    refused(reserve(&app, &buyer, None, id, seats(&["NOPE"])).await);
    // And before the body is read: a field of the wrong type, or no JSON at all.
    refused(reserve(&app, &buyer, None, id, json!({"seatCodes": 5})).await);
    refused(reserve(&app, &buyer, None, id, json!("not an object")).await);
    let good = admission(id, "req-1", json!({}));
    refused(
        reserve(
            &app,
            &buyer,
            Some(&admission(id, "r", json!({"exp": now_secs() - 120}))),
            id,
            seats(&["S1"]),
        )
        .await,
    );
    refused(
        reserve(
            &app,
            &buyer,
            Some(&admission(id + 1, "r", json!({}))),
            id,
            seats(&["S1"]),
        )
        .await,
    );
    refused(
        reserve(
            &app,
            &buyer,
            Some(&admission(id, "r", json!({"token_use": "id"}))),
            id,
            seats(&["S1"]),
        )
        .await,
    );
    refused(
        reserve(
            &app,
            &buyer,
            Some(&admission(id, "r", json!({"nbf": now_secs() + 600}))),
            id,
            seats(&["S1"]),
        )
        .await,
    );
    // Tampered: another event in the payload, the signature kept.
    let parts: Vec<&str> = good.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
    payload["sub"] = json!("someone-else");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    refused(reserve(&app, &buyer, Some(&forged), id, seats(&["S1"])).await);
    // `alg: none`, and another algorithm than the one configured (HS384 with the same secret).
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    refused(reserve(&app, &buyer, Some(&none), id, seats(&["S1"])).await);
    let hs384 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS384),
        &payload,
        &jsonwebtoken::EncodingKey::from_secret(ADMISSION_SECRET.as_bytes()).expect("key"),
    )
    .expect("sign");
    refused(reserve(&app, &buyer, Some(&hs384), id, seats(&["S1"])).await);
    refused(reserve(&app, &buyer, Some("not-a-token"), id, seats(&["S1"])).await);
    // The real one: held; with one for an unknown event, its 404 comes back.
    let (status, body) = reserve(&app, &buyer, Some(&good), id, seats(&["S1"])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let unknown = admission(999_999, "req-1", json!({}));
    let (status, _) = reserve(&app, &buyer, Some(&unknown), 999_999, seats(&["S1"])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Admins and `--no-admission` keys skip it; other service keys do not.
    let office = key(&app, "office", KeyRole::Service, &[], true).await;
    let checkout = key(&app, "checkout", KeyRole::Service, &[], false).await;
    let (status, body) = reserve(
        &app,
        &admin,
        None,
        id,
        json!({"userId": "a", "seatCodes": ["S2"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = reserve(
        &app,
        &office,
        None,
        id,
        json!({"userId": "o", "seatCodes": ["S3"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    refused(
        reserve(
            &app,
            &checkout,
            None,
            id,
            json!({"userId": "c", "seatCodes": ["S4"]}),
        )
        .await,
    );
    let (status, body) = reserve(
        &app,
        &checkout,
        Some(&admission(id, "req-9", json!({}))),
        id,
        json!({"userId": "c", "seatCodes": ["S4"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// One admission, one live hold (admission.max_live_holds = 1): 16 holds at once with the same
/// token take one; it frees its place when released; another admission is not affected. In
/// Redis and in Postgres.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn one_admission_has_at_most_its_live_holds(pg: PgPool) {
    for backend in [HoldStore::Redis, HoldStore::Postgres] {
        let app = Arc::new(TestApp::with(pg.clone(), &redis_url(), |s| {
            jwt_admission(s);
            s.holds.backend = backend;
        }));
        let admin = key(
            &app,
            &format!("admin-{backend:?}"),
            KeyRole::Admin,
            &[],
            true,
        )
        .await;
        let id = app.create_event_as(&admin, 40).await;
        let buyer = jwt("b1", json!({}));
        let pass = admission(id, "req-1", json!({}));
        let tries = (1..=16).map(|i| {
            let (app, buyer, pass) = (app.clone(), buyer.clone(), pass.clone());
            async move { reserve(&app, &buyer, Some(&pass), id, seats(&[&format!("S{i}")])).await }
        });
        let answers = join_all(tries).await;
        let held: Vec<&Value> = answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::OK)
            .map(|(_, b)| b)
            .collect();
        assert_eq!(held.len(), 1, "{backend:?}: {answers:?}");
        for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::OK) {
            assert_eq!(*status, StatusCode::CONFLICT, "{body}");
            assert_eq!(
                (
                    body["code"].as_str(),
                    body["cap"].as_str(),
                    body["limit"].as_u64()
                ),
                (
                    Some("USER_LIMIT_REACHED"),
                    Some("max_live_holds_per_admission"),
                    Some(1)
                ),
                "{body}"
            );
        }
        // Another admission (another buyer of the queue) holds.
        let other = admission(id, "req-2", json!({}));
        let (status, body) = reserve(&app, &buyer, Some(&other), id, seats(&["S30"])).await;
        assert_eq!(status, StatusCode::OK, "{backend:?} {body}");
        // Released: the same admission may hold again.
        let hold = held[0]["holdGroupId"].as_str().expect("id");
        let (status, _, body) = app
            .call_as(
                &buyer,
                "POST",
                &format!("/events/{id}/seats/release"),
                Some(json!({"holdGroupId": hold})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = reserve(&app, &buyer, Some(&pass), id, seats(&["S31"])).await;
        assert_eq!(status, StatusCode::OK, "{backend:?} {body}");
    }
}

/// A hold taken in Postgres during a Redis outage keeps its admission's place when Redis is back:
/// its copy into Redis enters the admission's live holds, so the same admission is still refused
/// a second hold.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn an_admissions_hold_from_an_outage_still_counts_when_redis_is_back(pg: PgPool) {
    let mut server = RedisServer::start();
    let app = TestApp::with(pg, &server.url(), |s| {
        jwt_admission(s);
        s.breaker.failure_threshold = 2;
        s.breaker.open_seconds = 1;
    });
    let admin = key(&app, "admin", KeyRole::Admin, &[], true).await;
    let id = app.create_event_as(&admin, 10).await;
    let buyer = jwt("b1", json!({}));
    let pass = admission(id, "req-1", json!({}));
    server.kill();
    let (status, body) = reserve(&app, &buyer, Some(&pass), id, seats(&["S1"])).await;
    assert_eq!(status, StatusCode::OK, "held in Postgres: {body}");
    server.restart();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // Another admission's hold brings holds back to Redis, which copies the Postgres hold.
    let (other_buyer, other) = (jwt("b2", json!({})), admission(id, "req-2", json!({})));
    let (status, body) = reserve(&app, &other_buyer, Some(&other), id, seats(&["S5"])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for _ in 0..100 {
        if app.redis_hold_count().await == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(app.redis_hold_count().await, 2, "the copy is in Redis");
    let (status, body) = reserve(&app, &buyer, Some(&pass), id, seats(&["S2"])).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["cap"], "max_live_holds_per_admission", "{body}");
}

/// A Queue-it KnownUser token: `e_<event>~q_<queue id>~ts_<expiry>~...~h_<HMAC-SHA256 hex>`,
/// made here with the hmac crate (the service's check is its own code).
fn queueit_token(secret: &str, event: &str, queue_id: &str, ts: i64) -> String {
    let body = format!("e_{event}~q_{queue_id}~ts_{ts}~ce_true~rt_queue");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body.as_bytes());
    let hash: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{body}~h_{hash}")
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_queueit_token_admits_to_its_event(pg: PgPool) {
    const SECRET: &str = "4e1deb5f-2bbb-4b5d-a7b0-ec4f2e9a0c55";
    for backend in [HoldStore::Redis, HoldStore::Postgres] {
        let app = TestApp::with(pg.clone(), &redis_url(), |s| {
            token_mode(s);
            s.admission.mode = AdmissionMode::Queueit;
            s.admission.queueit.secret_key = Secret::new(SECRET);
            s.holds.backend = backend;
        });
        let admin = key(
            &app,
            &format!("admin-{backend:?}"),
            KeyRole::Admin,
            &[],
            true,
        )
        .await;
        let id = app.create_event_as(&admin, 10).await;
        let buyer = jwt("b1", json!({}));
        let later = now_secs() + 600;
        let good = queueit_token(SECRET, &id.to_string(), "q-1", later);
        let (status, body) = reserve(&app, &buyer, Some(&good), id, seats(&["S1"])).await;
        assert_eq!(status, StatusCode::OK, "{backend:?} {body}");
        for bad in [
            queueit_token(SECRET, &id.to_string(), "q-2", now_secs() - 5),
            queueit_token(SECRET, &(id + 1).to_string(), "q-3", later),
            queueit_token("another-secret", &id.to_string(), "q-4", later),
            good.replace("q_q-1", "q_q-5"),
        ] {
            let (status, body) = reserve(&app, &buyer, Some(&bad), id, seats(&["S2"])).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (StatusCode::FORBIDDEN, Some("ADMISSION_REQUIRED")),
                "{backend:?} {bad}: {body}"
            );
        }
        // Another event's token is refused before the body and the event are looked at.
        let other_event = queueit_token(SECRET, &(id + 1).to_string(), "q-8", later);
        for (event, body) in [
            (id, json!({"seatCodes": "not a list"})),
            (id, json!({"seatCodes": ["S2"], "channel": "x"})),
            (id + 1_000_000, seats(&["S1"])),
        ] {
            let (status, answer) = reserve(&app, &buyer, Some(&other_event), event, body).await;
            assert_eq!(
                (status, answer["code"].as_str()),
                (StatusCode::FORBIDDEN, Some("ADMISSION_REQUIRED")),
                "{backend:?} event {event}: {answer}"
            );
        }
        // With a Queue-it event id, that name alone admits.
        let (status, _, body) = app
            .call_as(
                &admin,
                "PATCH",
                &format!("/events/{id}"),
                Some(json!({"queueitEventId": "gig2030"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let named = queueit_token(SECRET, "gig2030", "q-6", later);
        let (status, body) = reserve(&app, &buyer, Some(&named), id, seats(&["S3"])).await;
        assert_eq!(status, StatusCode::OK, "{backend:?} {body}");
        let by_id = queueit_token(SECRET, &id.to_string(), "q-7", later);
        let (status, body) = reserve(&app, &buyer, Some(&by_id), id, seats(&["S4"])).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("ADMISSION_REQUIRED")),
            "{backend:?} {body}"
        );
    }
}

/// Channel seats follow the caller's credentials: an API key's `--channel`, a JWT's `channels`
/// claim; a body `channel` is refused in token mode; admins hold any channel's seats.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn channels_come_from_keys_and_tokens(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), token_mode);
    let admin = key(&app, "admin", KeyRole::Admin, &[], true).await;
    let id = app.create_event_as(&admin, 8).await;
    let (status, _, body) = app
        .call_as(
            &admin,
            "PUT",
            &format!("/events/{id}/channels"),
            Some(json!({"channels": [{"code": "presale", "seatCodes": ["S1", "S2", "S3"]}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let public = jwt("p1", json!({}));
    let fan = jwt("f1", json!({"channels": ["presale"]}));
    let partner = key(&app, "partner", KeyRole::Service, &["presale"], false).await;
    let plain = key(&app, "plain", KeyRole::Service, &[], false).await;
    let (status, body) = reserve(&app, &public, None, id, seats(&["S1"])).await;
    assert_eq!(
        (status, body["seats"].clone()),
        (StatusCode::CONFLICT, json!(["S1"])),
        "{body}"
    );
    let (status, body) = reserve(&app, &fan, None, id, seats(&["S1"])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = reserve(
        &app,
        &plain,
        None,
        id,
        json!({"userId": "x", "seatCodes": ["S2"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = reserve(
        &app,
        &partner,
        None,
        id,
        json!({"userId": "y", "seatCodes": ["S2"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = reserve(
        &app,
        &admin,
        None,
        id,
        json!({"userId": "z", "seatCodes": ["S3"]}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "admins hold any channel's seats: {body}"
    );
    let (status, body) = reserve(
        &app,
        &public,
        None,
        id,
        json!({"seatCodes": ["S5"], "channel": "presale"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Buyers see no channel; keys do.
    let (_, _, map) = app
        .call_as(&public, "GET", &format!("/events/{id}/seats"), None)
        .await;
    assert!(map["seats"][0].get("channel").is_none(), "{map}");
    let (_, _, map) = app
        .call_as(&plain, "GET", &format!("/events/{id}/seats"), None)
        .await;
    assert_eq!(map["seats"][0]["channel"], "presale");
    let (_, _, e) = app
        .call_as(&public, "GET", &format!("/events/{id}"), None)
        .await;
    assert!(e.get("channels").is_none(), "{e}");
    // Buyers and service keys may not change channels or windows.
    for token in [&public, &plain] {
        let (status, _, _) = app
            .call_as(
                token,
                "PUT",
                &format!("/events/{id}/channels"),
                Some(json!({"channels": []})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _, _) = app
            .call_as(
                token,
                "PATCH",
                &format!("/events/{id}"),
                Some(json!({"salesStart": null})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // Who may comes before what was sent: a bad body is 403 too, not 400.
        for (method, path) in [
            ("PUT", format!("/events/{id}/channels")),
            ("PATCH", format!("/events/{id}")),
        ] {
            let (status, _, body) = app
                .call_as(token, method, &path, Some(json!({"nonsense": 1})))
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        }
    }
}
