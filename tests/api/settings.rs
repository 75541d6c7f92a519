//! Configuration: layering, conventional variables, and errors that name the key.

use std::collections::HashMap;

use seatlock::config::{AdmissionMode, LogFormat, Settings};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_match_the_documented_values() {
    let s = Settings::from_env(HashMap::new()).expect("defaults");
    assert_eq!(s.server.port, 8080);
    assert_eq!(s.holds.ttl_seconds, 300);
    assert_eq!(s.holds.max_seats_per_hold, 10);
    assert_eq!(s.events.max_seats, 100_000);
    assert_eq!(s.server.max_body_bytes, 65_536);
    assert_eq!(s.log.format, LogFormat::Text);
}

#[test]
fn app_variables_and_conventional_variables_override_the_file() {
    let s = Settings::from_env(env(&[
        ("APP__HOLDS__TTL_SECONDS", "120"),
        ("APP__LOG__FORMAT", "json"),
        ("APP__REDIS__KEY_PREFIX", "blue"),
        ("DATABASE_URL", "postgres://db.example/x"),
        ("REDIS_URL", "redis://cache.example:6380"),
        ("PORT", "9999"),
        ("APP__SERVER__PORT", "7777"),
    ]))
    .expect("valid");
    assert_eq!(s.holds.ttl_seconds, 120);
    assert_eq!(s.log.format, LogFormat::Json);
    assert_eq!(s.redis.key_prefix, "blue");
    assert_eq!(s.database.url, "postgres://db.example/x");
    assert_eq!(s.redis.url, "redis://cache.example:6380");
    assert_eq!(s.server.port, 9999, "PORT wins over APP__SERVER__PORT");
}

#[test]
fn a_bad_value_is_refused_with_a_message_naming_the_key() {
    for (var, value, key) in [
        ("APP__SERVER__PORT", "eighty", "server.port"),
        ("APP__HOLDS__TTL_SECONDS", "0", "holds.ttl_seconds"),
        (
            "APP__HOLDS__MAX_SEATS_PER_HOLD",
            "-1",
            "holds.max_seats_per_hold",
        ),
        ("APP__LOG__FORMAT", "xml", "log.format"),
        ("APP__EVENTS__MAX_SEATS", "0", "events.max_seats"),
        (
            "APP__HOLDS__SWEEP_INTERVAL_SECONDS",
            "0",
            "holds.sweep_interval_seconds",
        ),
        ("APP__IDEMPOTENCY__TTL_HOURS", "0", "idempotency.ttl_hours"),
        (
            "APP__IDEMPOTENCY__LEASE_SECONDS",
            "0",
            "idempotency.lease_seconds",
        ),
        (
            "APP__BREAKER__FAILURE_THRESHOLD",
            "0",
            "breaker.failure_threshold",
        ),
        ("APP__BREAKER__OPEN_SECONDS", "0", "breaker.open_seconds"),
    ] {
        let err = Settings::from_env(env(&[(var, value)]))
            .expect_err(var)
            .to_string();
        assert!(err.contains(key), "{var}={value}: {err}");
    }
}

#[test]
fn admission_is_off_by_default_and_each_mode_needs_its_key() {
    let s = Settings::from_env(HashMap::new()).expect("defaults");
    assert_eq!(s.admission.mode, AdmissionMode::Off);
    assert_eq!(s.admission.leeway_seconds, 30);
    assert_eq!(s.admission.max_live_holds, 1);
    let s = Settings::from_env(env(&[
        ("APP__ADMISSION__MODE", "queueit"),
        ("APP__ADMISSION__QUEUEIT__SECRET_KEY", "queueit-secret"),
        ("APP__ADMISSION__MAX_LIVE_HOLDS", "2"),
        ("APP__ADMISSION__JWT__ISSUER", "https://waitingroom.example"),
    ]))
    .expect("valid");
    assert_eq!(s.admission.mode, AdmissionMode::Queueit);
    assert_eq!(s.admission.queueit.secret_key.expose(), "queueit-secret");
    assert_eq!(s.admission.max_live_holds, 2);
    assert_eq!(s.admission.jwt.issuer, "https://waitingroom.example");
    assert!(
        !format!("{s:?}").contains("queueit-secret"),
        "the secret key never shows in Debug output"
    );
    for (vars, key) in [
        (
            &[("APP__ADMISSION__MODE", "jwt")][..],
            "admission.jwt.public_key_file",
        ),
        (
            &[
                ("APP__ADMISSION__MODE", "jwt"),
                ("APP__ADMISSION__JWT__HS256_SECRET", "too-short"),
            ][..],
            "admission.jwt.hs256_secret",
        ),
        (
            &[("APP__ADMISSION__MODE", "queueit")][..],
            "admission.queueit.secret_key",
        ),
        (
            &[("APP__ADMISSION__MAX_LIVE_HOLDS", "0")][..],
            "admission.max_live_holds",
        ),
        (&[("APP__ADMISSION__MODE", "fifo")][..], "admission.mode"),
    ] {
        let err = Settings::from_env(env(vars)).expect_err(key).to_string();
        assert!(err.contains(key), "{vars:?}: {err}");
    }
}

#[test]
fn the_binary_refuses_to_start_on_a_bad_value() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_seatlock"))
        .env("APP__HOLDS__TTL_SECONDS", "forever")
        .output()
        .expect("run seatlock");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("holds.ttl_seconds"), "{stderr}");
    // A key file that is missing is a bad setting too: exit 2 naming the key, before any store
    // is asked (the database here does not exist).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_seatlock"))
        .env("APP__AUTH__MODE", "token")
        .env("APP__AUTH__JWT__PUBLIC_KEY_FILE", "/nonexistent/key.pem")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
        .output()
        .expect("run seatlock");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("auth.jwt.public_key_file"), "{stderr}");
}

#[test]
fn cluster_mode_takes_its_seed_nodes_from_a_comma_separated_variable() {
    use seatlock::config::RedisMode;
    let s = Settings::from_env(HashMap::new()).expect("defaults");
    assert_eq!(s.redis.mode, RedisMode::Standalone);
    assert!(s.redis.cluster_urls.is_empty());
    let s = Settings::from_env(env(&[
        ("APP__REDIS__MODE", "cluster"),
        (
            "APP__REDIS__CLUSTER_URLS",
            "redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://:pw@127.0.0.1:7103",
        ),
    ]))
    .expect("valid");
    assert_eq!(s.redis.mode, RedisMode::Cluster);
    assert_eq!(
        s.redis.cluster_urls,
        [
            "redis://127.0.0.1:7101",
            "redis://127.0.0.1:7102",
            "redis://:pw@127.0.0.1:7103"
        ]
    );
    // The seed URLs' passwords stay out of the settings' Debug output.
    let shown = format!("{:?}", s.redis);
    assert!(!shown.contains("pw@"), "{shown}");
    let err =
        Settings::from_env(env(&[("APP__REDIS__MODE", "cluster")])).expect_err("no seed nodes");
    assert!(err.to_string().contains("redis.cluster_urls"), "{err}");
    let err = Settings::from_env(env(&[
        ("APP__REDIS__MODE", "cluster"),
        ("APP__REDIS__CLUSTER_URLS", "127.0.0.1:7101"),
    ]))
    .expect_err("not a URL");
    assert!(err.to_string().contains("redis.cluster_urls"), "{err}");
    let err = Settings::from_env(env(&[("APP__REDIS__MODE", "sharded")])).expect_err("mode");
    assert!(err.to_string().contains("mode"), "{err}");
}

#[test]
fn list_variables_take_one_value_spaces_and_empty() {
    let schedule = |v: &str| {
        Settings::from_env(env(&[("APP__WEBHOOKS__RETRY_SCHEDULE_SECONDS", v)]))
            .map(|s| s.webhooks.retry_schedule_seconds)
    };
    assert_eq!(schedule("5").expect("one value"), [5]);
    assert_eq!(schedule("5,300,1800").expect("three"), [5, 300, 1800]);
    assert_eq!(schedule(" 5, 300 ,1800 ").expect("spaces"), [5, 300, 1800]);
    assert!(schedule("").expect("empty").is_empty());
    let err = schedule("5,soon").expect_err("not a number");
    assert!(
        err.to_string().contains("webhooks.retry_schedule_seconds"),
        "{err}"
    );
    let s = Settings::from_env(env(&[("APP__SERVER__TRUSTED_PROXIES", "10.0.0.0/8")]))
        .expect("one proxy");
    assert_eq!(s.server.trusted_proxies.len(), 1);
}
