//! Token mode: who may do what. Every token the service must refuse is refused with 401 and a
//! Bearer challenge; buyers act only as themselves; keys act for the buyers they name; events
//! are created by admins only; another buyer's booking is not even revealed.

use axum::http::StatusCode;
use seatlock::domain::access::KeyRole;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::{JWT_SECRET, TestApp, jwt, now_secs, redis_url, sign, token_mode};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn sign_with(alg: jsonwebtoken::Algorithm, key_file: &str, claims: &Value) -> String {
    let pem = std::fs::read(fixture(key_file)).expect("key");
    let key = match alg {
        jsonwebtoken::Algorithm::RS256 => jsonwebtoken::EncodingKey::from_rsa_pem(&pem),
        jsonwebtoken::Algorithm::ES256 => jsonwebtoken::EncodingKey::from_ec_pem(&pem),
        _ => jsonwebtoken::EncodingKey::from_ed_pem(&pem),
    }
    .expect("encoding key");
    jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), claims, &key).expect("sign")
}

fn token_app(pg: PgPool) -> TestApp {
    TestApp::with(pg, &redis_url(), token_mode)
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn every_bad_token_is_401_with_a_bearer_challenge(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        token_mode(s);
        s.auth.jwt.audience = "seatlock".into();
        s.auth.jwt.issuer = "https://id.example".into();
    });
    let good = |extra: Value| {
        let mut claims = json!({"sub": "u1", "exp": now_secs() + 600, "aud": "seatlock", "iss": "https://id.example"});
        for (k, v) in extra.as_object().expect("object") {
            claims[k] = v.clone();
        }
        claims
    };
    // The well-formed token works.
    let ok = sign(&good(json!({})), JWT_SECRET);
    assert_eq!(
        app.call_as(&ok, "GET", "/events", None).await.0,
        StatusCode::OK
    );

    // No token at all: a bare challenge.
    let (status, headers, body) = app.call_raw("GET", "/events", None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer");
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["code"], "UNAUTHENTICATED");

    let encode = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let unsigned = {
        format!(
            "{}.{}.",
            encode(r#"{"alg":"none","typ":"JWT"}"#),
            encode(&good(json!({})).to_string())
        )
    };
    let forged = {
        let mut parts: Vec<String> = ok.split('.').map(String::from).collect();
        parts[1] = encode(&good(json!({"sub": "admin", "role": "admin"})).to_string());
        parts.join(".")
    };
    let bad = [
        ("forged payload", forged),
        ("alg none", unsigned),
        (
            "wrong key",
            sign(&good(json!({})), "another-secret-another-secret-another!"),
        ),
        (
            "expired",
            sign(&good(json!({"exp": now_secs() - 3600})), JWT_SECRET),
        ),
        (
            "not yet valid",
            sign(&good(json!({"nbf": now_secs() + 3600})), JWT_SECRET),
        ),
        (
            "wrong audience",
            sign(&good(json!({"aud": "someone-else"})), JWT_SECRET),
        ),
        (
            "wrong issuer",
            sign(&good(json!({"iss": "https://evil.example"})), JWT_SECRET),
        ),
        (
            "no exp",
            sign(
                &json!({"sub": "u1", "aud": "seatlock", "iss": "https://id.example"}),
                JWT_SECRET,
            ),
        ),
        (
            "no sub",
            sign(
                &json!({"exp": now_secs() + 60, "aud": "seatlock", "iss": "https://id.example"}),
                JWT_SECRET,
            ),
        ),
        (
            "RS256 with no RSA key configured",
            sign_with(
                jsonwebtoken::Algorithm::RS256,
                "rs256.key",
                &good(json!({})),
            ),
        ),
        ("garbage", "not-a-token".to_string()),
        ("unknown API key", format!("sl_{}", "x".repeat(43))),
    ];
    for (what, token) in bad {
        let (status, headers, body) = app.call_as(&token, "GET", "/events", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(
            headers["www-authenticate"], "Bearer error=\"invalid_token\"",
            "{what}"
        );
        assert_eq!(body["code"], "UNAUTHENTICATED", "{what}");
    }
    // Within the leeway, a token just expired still works.
    let recent = sign(&good(json!({"exp": now_secs() - 5})), JWT_SECRET);
    assert_eq!(
        app.call_as(&recent, "GET", "/events", None).await.0,
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn public_keys_verify_their_own_algorithm_only(pg: PgPool) {
    for (alg, private, public) in [
        (jsonwebtoken::Algorithm::ES256, "es256.key", "es256.pub"),
        (jsonwebtoken::Algorithm::EdDSA, "ed25519.key", "ed25519.pub"),
        (jsonwebtoken::Algorithm::RS256, "rs256.key", "rs256.pub"),
    ] {
        let app = TestApp::with(pg.clone(), &redis_url(), |s| {
            s.auth.mode = seatlock::config::AuthMode::Token;
            s.auth.jwt.public_key_file = fixture(public);
        });
        let claims = json!({"sub": "u1", "exp": now_secs() + 600});
        let token = sign_with(alg, private, &claims);
        assert_eq!(
            app.call_as(&token, "GET", "/events", None).await.0,
            StatusCode::OK,
            "{alg:?}"
        );
        // HS256 is not configured here: even a token signed with the public key as a secret
        // (the classic key-confusion attack) is refused.
        let pem = std::fs::read_to_string(fixture(public)).expect("pem");
        let confused = sign(&claims, &pem);
        assert_eq!(
            app.call_as(&confused, "GET", "/events", None).await.0,
            StatusCode::UNAUTHORIZED,
            "{alg:?}"
        );
    }
}

/// RFC 8725, 3.9: with an audience (or issuer) configured, a token that does not name one at
/// all is not for this service, exactly like a token that names another.
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_configured_audience_or_issuer_is_a_required_claim(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        token_mode(s);
        s.auth.jwt.public_key_file = fixture("es256.pub");
        s.auth.jwt.audience = "seatlock".into();
        s.auth.jwt.issuer = "https://id.example".into();
    });
    let full = json!({"sub": "u1", "exp": now_secs() + 600, "aud": "seatlock", "iss": "https://id.example"});
    let without = |claim: &str| {
        let mut claims = full.clone();
        claims.as_object_mut().expect("object").remove(claim);
        claims
    };
    type Signer = fn(&Value) -> String;
    let signers: [(&str, Signer); 2] = [
        ("HS256", |c| sign(c, JWT_SECRET)),
        ("ES256", |c| {
            sign_with(jsonwebtoken::Algorithm::ES256, "es256.key", c)
        }),
    ];
    for (alg, signer) in signers {
        assert_eq!(
            app.call_as(&signer(&full), "GET", "/events", None).await.0,
            StatusCode::OK,
            "{alg}: the token naming both"
        );
        for claim in ["aud", "iss"] {
            let (status, headers, body) = app
                .call_as(&signer(&without(claim)), "GET", "/events", None)
                .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{alg} without {claim}: {body}"
            );
            assert_eq!(
                headers["www-authenticate"], "Bearer error=\"invalid_token\"",
                "{alg} without {claim}"
            );
            assert_eq!(body["code"], "UNAUTHENTICATED", "{alg} without {claim}");
        }
    }
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn only_admins_create_events_and_anyone_with_a_token_reads(pg: PgPool) {
    let app = token_app(pg);
    let body =
        json!({"name": "Gig", "date": "2030-01-10T18:00:00Z", "location": "Hall", "totalSeats": 5});
    let (status, _) = app.post("/events", body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "anonymous event creation");
    let buyer = jwt("u1", json!({}));
    let service = app.api_key("checkout", KeyRole::Service).await;
    for token in [&buyer, &service] {
        let (status, _, body) = app
            .call_as(token, "POST", "/events", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["code"], "FORBIDDEN");
    }
    // Who may comes first: a buyer's malformed body is still 403.
    let (status, _, _) = app
        .call_as(
            &buyer,
            "POST",
            "/events",
            Some(json!(["not", "an", "object"])),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let admin_key = app.api_key("ops", KeyRole::Admin).await;
    let id = app.create_event_as(&admin_key, 5).await;
    let admin_jwt = jwt("ops-person", json!({"role": "admin"}));
    app.create_event_as(&admin_jwt, 5).await;
    for token in [&buyer, &service, &admin_key] {
        assert_eq!(
            app.call_as(token, "GET", &format!("/events/{id}"), None)
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            app.call_as(token, "GET", &format!("/events/{id}/seats"), None)
                .await
                .0,
            StatusCode::OK
        );
    }
    // Health, readiness and metrics stay open.
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(app.get(path).await.0, StatusCode::OK, "{path}");
    }
    assert_eq!(app.get("/readyz").await.1["auth"], "token");
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_buyer_acts_only_as_itself(pg: PgPool) {
    let app = token_app(pg);
    let admin = app.api_key("ops", KeyRole::Admin).await;
    let id = app.create_event_as(&admin, 10).await;
    let (a, b) = (jwt("alice", json!({})), jwt("bob", json!({})));
    let path = |op: &str| format!("/events/{id}/seats/{op}");

    // userId may be left out (the token's sub is used) or given equal to it.
    let (status, _, held) = app
        .call_as(
            &b,
            "POST",
            &path("reserve"),
            Some(json!({"seatCodes": ["S1"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{held}");
    let bobs_hold = held["holdGroupId"].as_str().expect("id").to_string();
    let (status, _, _) = app
        .call_as(
            &a,
            "POST",
            &path("reserve"),
            Some(json!({"userId": "alice", "seatCodes": ["S2"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Alice naming Bob: 403 USER_MISMATCH; Alice on Bob's hold as herself: 403 NOT_HOLD_OWNER.
    let (status, _, body) = app
        .call_as(
            &a,
            "POST",
            &path("reserve"),
            Some(json!({"userId": "bob", "seatCodes": ["S3"]})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("USER_MISMATCH"))
    );
    for op in ["confirm", "release"] {
        let (status, _, body) = app
            .call_as(
                &a,
                "POST",
                &path(op),
                Some(json!({"userId": "bob", "holdGroupId": bobs_hold})),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("USER_MISMATCH")),
            "{op}"
        );
        let (status, _, body) = app
            .call_as(
                &a,
                "POST",
                &path(op),
                Some(json!({"holdGroupId": bobs_hold})),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("NOT_HOLD_OWNER")),
            "{op}"
        );
    }

    // Bob confirms his own hold; Alice cannot see or cancel his booking.
    let (status, _, _) = app
        .call_as(
            &b,
            "POST",
            &path("confirm"),
            Some(json!({"holdGroupId": bobs_hold})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let booking = format!("/bookings/{bobs_hold}");
    assert_eq!(
        app.call_as(&b, "GET", &booking, None).await.0,
        StatusCode::OK
    );
    let (status, _, body) = app.call_as(&a, "GET", &booking, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("BOOKING_NOT_FOUND"))
    );
    let cancel = format!("{booking}/cancel");
    let (status, _, _) = app
        .call_as(&a, "POST", &cancel, Some(json!({"userId": "bob"})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = app.call_as(&a, "POST", &cancel, Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = app.call_as(&b, "POST", &cancel, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "the owner cancels");
    assert!(app.booked_in_postgres(id).await.is_empty());
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_service_key_acts_for_the_buyer_it_names(pg: PgPool) {
    let app = token_app(pg);
    let admin = app.api_key("ops", KeyRole::Admin).await;
    let id = app.create_event_as(&admin, 10).await;
    let key = app.api_key("checkout-eu", KeyRole::Service).await;
    let path = |op: &str| format!("/events/{id}/seats/{op}");
    let (status, _, body) = app
        .call_as(
            &key,
            "POST",
            &path("reserve"),
            Some(json!({"seatCodes": ["S1"]})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("VALIDATION_FAILED")),
        "userId is required for keys"
    );
    let (status, _, body) = app
        .call_as(
            &key,
            "POST",
            &path("reserve"),
            Some(json!({"userId": "carol", "seatCodes": ["S1"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hold = body["holdGroupId"].as_str().expect("id").to_string();
    let (status, _, body) = app
        .call_as(
            &key,
            "POST",
            &path("confirm"),
            Some(json!({"userId": "carol", "holdGroupId": hold})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The booking is Carol's: she sees it with her own token, and so does the key.
    let (status, _, body) = app
        .call_as(&key, "GET", &format!("/bookings/{hold}"), None)
        .await;
    assert_eq!(
        (status, body["userId"].as_str()),
        (StatusCode::OK, Some("carol"))
    );
    let carol = jwt("carol", json!({}));
    assert_eq!(
        app.call_as(&carol, "GET", &format!("/bookings/{hold}"), None)
            .await
            .0,
        StatusCode::OK
    );
    // The key cancels for the owner only.
    let cancel = format!("/bookings/{hold}/cancel");
    let (status, _, _) = app
        .call_as(&key, "POST", &cancel, Some(json!({"userId": "dave"})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = app
        .call_as(&key, "POST", &cancel, Some(json!({"userId": "carol"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    // Its last use is recorded (off the request path, so give it a moment).
    let mut used: Option<chrono::DateTime<chrono::Utc>> = None;
    for _ in 0..100 {
        used = sqlx::query_scalar("SELECT last_used_at FROM api_keys WHERE name = 'checkout-eu'")
            .fetch_one(&app.pg)
            .await
            .expect("key row");
        if used.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(used.is_some());
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_revoked_key_is_refused_within_the_cache_time(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), |s| {
        token_mode(s);
        s.auth.key_cache_seconds = 1;
    });
    let key = app.api_key("short-lived", KeyRole::Service).await;
    assert_eq!(
        app.call_as(&key, "GET", "/events", None).await.0,
        StatusCode::OK
    );
    assert!(
        app.state
            .seatlock
            .revoke_api_key("short-lived")
            .await
            .expect("revoke")
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        app.call_as(&key, "GET", "/events", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The name is free for a new key; the old one stays dead.
    let new = app.api_key("short-lived", KeyRole::Service).await;
    assert_eq!(
        app.call_as(&new, "GET", "/events", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.call_as(&key, "GET", "/events", None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn the_key_commands_print_a_key_once_and_keep_only_its_digest(pg: PgPool) {
    let db = crate::support::database_url(&pg);
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_seatlock"))
            .args(args)
            .env("DATABASE_URL", &db)
            .env("APP__DATABASE__CREATE_IF_MISSING", "false")
            .output()
            .expect("run seatlock")
    };
    let out = run(&["keys", "create", "--name", "box-office", "--role", "admin"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    let key = stdout.trim_end();
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the key on stdout: {stdout:?}"
    );
    assert!(key.starts_with("sl_") && key.len() >= 35, "{key}");
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT key_digest FROM api_keys WHERE name = 'box-office'")
            .fetch_one(&pg)
            .await
            .expect("row");
    assert_eq!(stored.len(), 32);
    assert!(!String::from_utf8_lossy(&stored).contains(&key[3..]));
    // The key works for an instance on that database.
    let app = TestApp::with(pg.clone(), &redis_url(), token_mode);
    app.create_event_as(key, 2).await;
    let out = run(&["keys", "create", "--name", "box-office", "--role", "admin"]);
    assert_eq!(out.status.code(), Some(1), "a live name is not reused");
    let listed = String::from_utf8(run(&["keys", "list"]).stdout).expect("utf8");
    assert!(listed.contains("box-office\tadmin"), "{listed}");
    assert!(!listed.contains(key), "list never shows a key");
    assert_eq!(
        run(&["keys", "revoke", "box-office"]).status.code(),
        Some(0)
    );
    assert_eq!(
        run(&["keys", "revoke", "box-office"]).status.code(),
        Some(1)
    );
    let out = run(&["keys", "create", "--name", "x", "--role", "root"]);
    assert_eq!(out.status.code(), Some(2), "a bad role is a usage error");
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_key_created_with_channels_and_no_admission_is_listed_and_used_with_them(pg: PgPool) {
    let db = crate::support::database_url(&pg);
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_seatlock"))
            .args(args)
            .env("DATABASE_URL", &db)
            .env("APP__DATABASE__CREATE_IF_MISSING", "false")
            .output()
            .expect("run seatlock")
    };
    let create = |args: &[&str]| {
        let out = run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_string()
    };
    let partner = create(&[
        "keys",
        "create",
        "--name",
        "partner",
        "--role",
        "service",
        "--channel",
        "presale",
        "--no-admission",
    ]);
    let shop = create(&["keys", "create", "--name", "shop", "--role", "service"]);
    let ops = create(&["keys", "create", "--name", "ops", "--role", "admin"]);
    let listed = String::from_utf8(run(&["keys", "list"]).stdout).expect("utf8");
    assert!(
        listed.starts_with("NAME\tROLE\tCHANNELS\tSKIPS ADMISSION\t"),
        "{listed}"
    );
    assert!(
        listed.contains("\npartner\tservice\tpresale\tyes\t"),
        "{listed}"
    );
    assert!(listed.contains("\nshop\tservice\t-\tno\t"), "{listed}");
    assert!(
        listed.contains("\nops\tadmin\t-\tyes\t"),
        "admin keys skip admission: {listed}"
    );
    let stored: (Vec<String>, bool) =
        sqlx::query_as("SELECT channels, skips_admission FROM api_keys WHERE name = 'partner'")
            .fetch_one(&pg)
            .await
            .expect("row");
    assert_eq!(stored, (vec!["presale".to_string()], true));

    // An instance on that database sees each key's channels and admission.
    let app = TestApp::with(pg.clone(), &redis_url(), token_mode);
    let seatlock = &app.state.seatlock;
    let caller = seatlock
        .authenticate(Some(&partner))
        .await
        .expect("partner");
    assert_eq!(caller.channels, ["presale"]);
    assert!(caller.skips_admission);
    let caller = seatlock.authenticate(Some(&shop)).await.expect("shop");
    assert!(caller.channels.is_empty());
    assert!(!caller.skips_admission);
    assert!(
        seatlock
            .authenticate(Some(&ops))
            .await
            .expect("ops")
            .skips_admission
    );

    // A bad channel code is a usage error, and nothing is stored.
    let out = run(&[
        "keys",
        "create",
        "--name",
        "bad",
        "--role",
        "service",
        "--channel",
        "no spaces",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let bad: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE name = 'bad'")
        .fetch_one(&pg)
        .await
        .expect("count");
    assert_eq!(bad, 0);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn secrets_tokens_and_keys_never_reach_the_logs(pg: PgPool) {
    use std::io::Read;
    let db = crate::support::database_url(&pg);
    let key = {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_seatlock"))
            .args(["keys", "create", "--name", "logged", "--role", "admin"])
            .env("DATABASE_URL", &db)
            .output()
            .expect("keys create");
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_string()
    };
    let port = crate::support::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_seatlock"))
        .env("DATABASE_URL", &db)
        .env("REDIS_URL", redis_url())
        .env("PORT", port.to_string())
        .env(
            "APP__REDIS__KEY_PREFIX",
            format!("test:{}", uuid::Uuid::new_v4().simple()),
        )
        .env("APP__AUTH__MODE", "token")
        .env("APP__AUTH__JWT__HS256_SECRET", JWT_SECRET)
        .env("APP__LOG__FORMAT", "json")
        .env("APP__WEBHOOKS__ALLOW_PRIVATE_NETWORKS", "true")
        .env("APP__HISTORY__FLUSH_MS", "200")
        // Everything the service and its libraries log, at the most talkative level.
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn seatlock");
    // Read as they come: a full pipe would block the service's logging, and with it the service.
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    })
    .collect();
    let buyer = jwt("logged-buyer", json!({}));
    let forged = sign(
        &json!({"sub": "x", "exp": now_secs() + 60}),
        "not-the-secret-not-the-secret-not-the-secret",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let up = crate::support::http(
            port,
            "GET",
            "/healthz",
            None,
            &[],
            std::time::Duration::from_secs(1),
        )
        .await;
        if matches!(up, crate::support::Outcome::Status(200, _)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "seatlock did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for token in [&key, &buyer, &forged] {
        let auth = format!("Bearer {token}");
        let _ = crate::support::http(
            port,
            "GET",
            "/events",
            None,
            &[("authorization", &auth)],
            std::time::Duration::from_secs(2),
        )
        .await;
    }
    // A webhook endpoint: its secret, a rotated one, and the signatures sent with them.
    let receiver = crate::webhooks::Receiver::start(vec![]).await;
    let admin = [("authorization", format!("Bearer {key}"))];
    let admin: Vec<(&str, &str)> = admin.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let call = |method: &'static str, path: String, body: Value| {
        let admin = admin.clone();
        async move {
            match crate::support::http(
                port,
                method,
                &path,
                Some(&body),
                &admin,
                std::time::Duration::from_secs(5),
            )
            .await
            {
                crate::support::Outcome::Status(_, b) => b,
                other => panic!("{method} {path}: {other:?}"),
            }
        }
    };
    let created = call("POST", "/webhooks".into(), json!({"url": receiver.url()})).await;
    let endpoint = created["id"].as_str().expect("endpoint").to_string();
    let first_secret = created["secret"].as_str().expect("secret").to_string();
    let rotated = call(
        "POST",
        format!("/webhooks/{endpoint}/rotate-secret"),
        json!({}),
    )
    .await;
    let second_secret = rotated["secret"].as_str().expect("secret").to_string();
    let event = call(
        "POST",
        "/events".into(),
        json!({"name": "Logs", "date": "2030-01-01T20:00:00Z", "location": "L", "totalSeats": 2}),
    )
    .await;
    let event = event["eventId"].as_i64().expect("event");
    call(
        "POST",
        format!("/events/{event}/seats/reserve"),
        json!({"userId": "u1", "seatCodes": ["S1"]}),
    )
    .await;
    let got = receiver
        .wait_for(1, std::time::Duration::from_secs(10))
        .await;
    let signatures = got[0].header("webhook-signature").to_string();
    assert_eq!(
        signatures.split(' ').count(),
        2,
        "both secrets sign during a rotation"
    );
    let _ = child.kill();
    let _ = child.wait();
    let logs: String = readers
        .into_iter()
        .map(|r| r.join().expect("log reader"))
        .collect();
    assert!(
        logs.contains("request finished"),
        "the service did log: {}",
        &logs[..logs.len().min(500)]
    );
    let bare = |s: &str| s.trim_start_matches("whsec_").to_string();
    for secret in [JWT_SECRET, key.as_str(), buyer.as_str(), forged.as_str()]
        .into_iter()
        .map(String::from)
        .chain([bare(&first_secret), bare(&second_secret)])
        .chain(
            signatures
                .split(' ')
                .map(|s| s.trim_start_matches("v1,").to_string()),
        )
    {
        assert!(
            !logs.contains(&secret),
            "a secret or a signature reached the logs"
        );
    }
    assert!(
        !logs.to_lowercase().contains("bearer "),
        "an Authorization header reached the logs"
    );
}
