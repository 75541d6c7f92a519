//! Tests of admission JWTs (the Queue-it tokens are tested in `queueit.rs`): every token the
//! verifier must refuse, refused for the right reason.

use jsonwebtoken::{EncodingKey, Header, encode, get_current_timestamp};
use serde_json::{Value, json};

use super::*;
use crate::config::{AdmissionJwtSettings, QueueitSettings, Secret};

const SECRET: &str = "admission-test-secret-0123456789abcdef";
const EVENT: &str = "42";

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn settings(hs256: &str, public_key_file: &str, issuer: &str) -> AdmissionSettings {
    AdmissionSettings {
        mode: AdmissionMode::Jwt,
        leeway_seconds: 30,
        max_live_holds: 1,
        jwt: AdmissionJwtSettings {
            public_key_file: public_key_file.into(),
            hs256_secret: Secret::new(hs256),
            issuer: issuer.into(),
        },
        queueit: QueueitSettings {
            secret_key: Secret::default(),
        },
    }
}

fn verifier(settings: &AdmissionSettings) -> AdmissionVerifier {
    AdmissionVerifier::new(settings)
        .expect("settings")
        .expect("a verifier")
}

fn hs256_only() -> AdmissionVerifier {
    verifier(&settings(SECRET, "", ""))
}

fn es256_only() -> AdmissionVerifier {
    verifier(&settings("", &fixture("es256.pub"), ""))
}

fn now() -> u64 {
    get_current_timestamp()
}

/// The claims of an AWS Virtual Waiting Room token for event 42, with `extra` merged in (a
/// null removes a claim).
fn claims(extra: Value) -> Value {
    let mut c = json!({
        "aud": EVENT, "sub": "req-7f3a", "token_use": "access", "iat": now(),
        "nbf": now(), "exp": now() + 600, "iss": "https://waitingroom.example",
    });
    for (k, v) in extra.as_object().expect("object") {
        if v.is_null() {
            c.as_object_mut().expect("object").remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn hs256(claims: &Value) -> String {
    let key = EncodingKey::from_secret(SECRET.as_bytes()).expect("key");
    encode(&Header::new(Algorithm::HS256), claims, &key).expect("sign")
}

fn es256(claims: &Value) -> String {
    let pem = std::fs::read(fixture("es256.key")).expect("key");
    let key = EncodingKey::from_ec_pem(&pem).expect("encoding key");
    encode(&Header::new(Algorithm::ES256), claims, &key).expect("sign")
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[test]
fn a_waiting_room_token_for_the_event_admits_its_subject() {
    let admitted = Ok(Admission {
        buyer: "req-7f3a".into(),
        queueit_event: None,
    });
    assert_eq!(
        hs256_only().verify(&hs256(&claims(json!({}))), EVENT),
        admitted
    );
    assert_eq!(
        es256_only().verify(&es256(&claims(json!({}))), EVENT),
        admitted
    );
    // token_use, nbf and iss may be left out; a token just expired is within the leeway.
    let minimal = claims(json!({"token_use": null, "nbf": null, "iss": null, "exp": now() - 5}));
    assert_eq!(hs256_only().verify(&hs256(&minimal), EVENT), admitted);
    // An audience list that names the event.
    let listed = claims(json!({"aud": ["7", EVENT]}));
    assert_eq!(hs256_only().verify(&hs256(&listed), EVENT), admitted);
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused() {
    let v = hs256_only();
    let expired = hs256(&claims(json!({"exp": now() - 3600})));
    assert_eq!(v.verify(&expired, EVENT), Err(AdmissionRefused::Expired));
    let early = hs256(&claims(json!({"nbf": now() + 3600})));
    assert_eq!(v.verify(&early, EVENT), Err(AdmissionRefused::NotYetValid));
    let no_exp = hs256(&claims(json!({"exp": null})));
    assert_eq!(v.verify(&no_exp, EVENT), Err(AdmissionRefused::Claims));
}

#[test]
fn fractional_time_claims_are_numeric_dates() {
    let v = hs256_only();
    let at = now() as f64;
    let fine = hs256(&claims(json!({"exp": at + 600.5, "nbf": at - 0.25})));
    assert!(v.verify(&fine, EVENT).is_ok());
    let expired = hs256(&claims(json!({"exp": at - 3600.5})));
    assert_eq!(v.verify(&expired, EVENT), Err(AdmissionRefused::Expired));
    let early = hs256(&claims(json!({"nbf": at + 3600.5})));
    assert_eq!(v.verify(&early, EVENT), Err(AdmissionRefused::NotYetValid));
    let text = hs256(&claims(json!({"exp": "tomorrow"})));
    assert_eq!(v.verify(&text, EVENT), Err(AdmissionRefused::Claims));
}

#[test]
fn a_token_for_another_event_or_for_none_is_refused() {
    let v = hs256_only();
    let other = hs256(&claims(json!({"aud": "43"})));
    assert_eq!(v.verify(&other, EVENT), Err(AdmissionRefused::WrongEvent));
    let none = hs256(&claims(json!({"aud": null})));
    assert_eq!(v.verify(&none, EVENT), Err(AdmissionRefused::Claims));
    let good = hs256(&claims(json!({})));
    assert_eq!(v.verify(&good, "43"), Err(AdmissionRefused::WrongEvent));
}

#[test]
fn a_changed_payload_is_refused() {
    let v = hs256_only();
    let token = hs256(&claims(json!({})));
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    parts[1] = b64(&claims(json!({"sub": "someone-else"})).to_string());
    assert_eq!(
        v.verify(&parts.join("."), EVENT),
        Err(AdmissionRefused::Signature)
    );
    let other_secret =
        EncodingKey::from_secret(b"another-secret-another-secret-another").expect("key");
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &claims(json!({})),
        &other_secret,
    )
    .expect("sign");
    assert_eq!(v.verify(&forged, EVENT), Err(AdmissionRefused::Signature));
}

#[test]
fn only_the_algorithm_of_a_configured_key_is_accepted() {
    let es = es256(&claims(json!({})));
    assert_eq!(
        hs256_only().verify(&es, EVENT),
        Err(AdmissionRefused::Algorithm)
    );
    let hs = hs256(&claims(json!({})));
    assert_eq!(
        es256_only().verify(&hs, EVENT),
        Err(AdmissionRefused::Algorithm)
    );
    // The public key's own bytes as an HS256 secret (the old algorithm confusion).
    let pem = std::fs::read(fixture("es256.pub")).expect("pub");
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &claims(json!({})),
        &EncodingKey::from_secret(&pem).expect("key"),
    )
    .expect("sign");
    assert_eq!(
        es256_only().verify(&confused, EVENT),
        Err(AdmissionRefused::Algorithm)
    );
    // Both keys configured: each verifies its own algorithm.
    let both = verifier(&settings(SECRET, &fixture("es256.pub"), ""));
    assert!(both.verify(&es, EVENT).is_ok());
    assert!(both.verify(&hs, EVENT).is_ok());
}

#[test]
fn an_unsigned_token_is_refused() {
    let unsigned = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&claims(json!({})).to_string())
    );
    for v in [hs256_only(), es256_only()] {
        assert!(
            matches!(
                v.verify(&unsigned, EVENT),
                Err(AdmissionRefused::Malformed | AdmissionRefused::Algorithm)
            ),
            "alg none is never accepted"
        );
    }
    assert_eq!(
        hs256_only().verify("not-a-token", EVENT),
        Err(AdmissionRefused::Malformed)
    );
}

#[test]
fn token_use_must_be_access_and_sub_is_required() {
    let v = hs256_only();
    for (what, extra) in [
        ("an id token", json!({"token_use": "id"})),
        ("a refresh token", json!({"token_use": "refresh"})),
        ("token_use not a string", json!({"token_use": 1})),
        ("no sub", json!({"sub": null})),
        ("empty sub", json!({"sub": ""})),
        ("sub too long", json!({"sub": "x".repeat(129)})),
        ("sub not a string", json!({"sub": 7})),
    ] {
        let token = hs256(&claims(extra));
        assert_eq!(
            v.verify(&token, EVENT),
            Err(AdmissionRefused::Claims),
            "{what}"
        );
    }
    let longest = hs256(&claims(json!({"sub": "x".repeat(128)})));
    assert!(v.verify(&longest, EVENT).is_ok());
}

#[test]
fn a_configured_issuer_is_required() {
    let v = verifier(&settings(SECRET, "", "https://waitingroom.example"));
    assert!(v.verify(&hs256(&claims(json!({}))), EVENT).is_ok());
    let wrong = hs256(&claims(json!({"iss": "https://evil.example"})));
    assert_eq!(v.verify(&wrong, EVENT), Err(AdmissionRefused::Claims));
    let missing = hs256(&claims(json!({"iss": null})));
    assert_eq!(v.verify(&missing, EVENT), Err(AdmissionRefused::Claims));
}

#[test]
fn an_oversized_token_is_refused_unread() {
    let huge = hs256(&claims(
        json!({"pad": "x".repeat(MAX_ADMISSION_TOKEN_BYTES)}),
    ));
    assert_eq!(
        hs256_only().verify(&huge, EVENT),
        Err(AdmissionRefused::TooLong)
    );
}

#[test]
fn the_mode_decides_the_verifier() {
    let mut s = settings("", "", "");
    assert!(AdmissionVerifier::new(&s).is_err(), "jwt without a key");
    s.jwt.public_key_file = fixture("does-not-exist.pub");
    assert!(
        AdmissionVerifier::new(&s).is_err(),
        "an unreadable key file"
    );
    s.mode = AdmissionMode::Off;
    assert!(matches!(AdmissionVerifier::new(&s), Ok(None)));
    s.mode = AdmissionMode::Queueit;
    assert!(AdmissionVerifier::new(&s).is_err(), "queueit without a key");
    s.queueit.secret_key = Secret::new("queueit-secret");
    assert!(matches!(AdmissionVerifier::new(&s), Ok(Some(_))));
}
