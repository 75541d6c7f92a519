//! Admission from a waiting room: the token a buyer brings from the AWS Virtual Waiting Room (a
//! JWT whose `aud` is the event) or from Queue-it (a KnownUser token, see [`queueit`]),
//! verified with the configured keys only and turned into the buyer it admits. No I/O; a token
//! is never logged.
//!
//! A JWT is verified with the one algorithm of each configured key (HS256 with
//! `admission.jwt.hs256_secret`; RS256, ES256 or EdDSA with the PEM key of
//! `admission.jwt.public_key_file`), never `none`; `aud` (the event id), `exp` and `sub` are
//! required, `nbf` honoured (NumericDates, a fraction allowed), `iss` required and checked when `admission.jwt.issuer` is set,
//! `token_use` must be `access` when present; `admission.leeway_seconds` of clock skew.

mod queueit;

use anyhow::Context;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use self::queueit::QueueitKey;
use super::jwt::public_key;
use super::numeric_date::{TimeRefusal, window};
use crate::config::{AdmissionJwtSettings, AdmissionMode, AdmissionSettings};
use crate::domain::fields::validate_user_id;

/// Longest accepted admission token, in bytes.
pub const MAX_ADMISSION_TOKEN_BYTES: usize = 4096;

/// What an admission token admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// Who was admitted: a JWT's `sub` (the waiting room's request id), a Queue-it token's `q`.
    pub buyer: String,
    /// A Queue-it token's `e`: the hold checks it against the event's `queueitEventId` (or
    /// its id). None for a JWT, whose `aud` was checked here.
    pub queueit_event: Option<String>,
}

/// Why an admission token was refused. The messages never quote the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionRefused {
    /// `admission.mode` is `off`: no token is verified.
    #[error("admission tokens are not in use")]
    Off,
    #[error("the admission token is longer than {MAX_ADMISSION_TOKEN_BYTES} bytes")]
    TooLong,
    /// Not a token of the configured kind at all.
    #[error("the admission token is malformed")]
    Malformed,
    /// A JWT signed with an algorithm that has no configured key (`none` included).
    #[error("the admission token's algorithm is not accepted")]
    Algorithm,
    /// The signature (JWT) or hash (Queue-it) does not verify.
    #[error("the admission token's signature does not verify")]
    Signature,
    #[error("the admission token has expired")]
    Expired,
    #[error("the admission token is not valid yet")]
    NotYetValid,
    /// A JWT whose `aud` is another event.
    #[error("the admission token is for another event")]
    WrongEvent,
    /// A required claim or field missing or wrong: `aud`, `sub`, `iss`, `token_use`, `q`, `e`.
    #[error("the admission token's claims are missing or wrong")]
    Claims,
}

impl AdmissionRefused {
    /// A short reason, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            AdmissionRefused::Off => "off",
            AdmissionRefused::TooLong => "too_long",
            AdmissionRefused::Malformed => "malformed",
            AdmissionRefused::Algorithm => "algorithm",
            AdmissionRefused::Signature => "signature",
            AdmissionRefused::Expired => "expired",
            AdmissionRefused::NotYetValid => "not_yet_valid",
            AdmissionRefused::WrongEvent => "wrong_event",
            AdmissionRefused::Claims => "claims",
        }
    }
}

/// The verifier of the configured admission mode.
pub struct AdmissionVerifier {
    kind: Kind,
}

enum Kind {
    /// Each key with the validation of its one algorithm (the audience is set per event).
    Jwt(Vec<(Algorithm, DecodingKey, Validation)>),
    Queueit(QueueitKey),
}

/// Read as any JSON values, so a claim of the wrong type is refused as a wrong claim.
#[derive(Deserialize)]
struct Claims {
    sub: Option<serde_json::Value>,
    token_use: Option<serde_json::Value>,
    /// NumericDates, a fraction allowed: checked by [`window`], not by jsonwebtoken.
    exp: Option<serde_json::Value>,
    nbf: Option<serde_json::Value>,
}

impl AdmissionVerifier {
    /// The verifier of `settings.mode`; None when admission is off. Fails on a key that cannot
    /// be read or used (start-up stops).
    pub fn new(settings: &AdmissionSettings) -> anyhow::Result<Option<Self>> {
        let kind = match settings.mode {
            AdmissionMode::Off => return Ok(None),
            AdmissionMode::Jwt => Kind::Jwt(jwt_keys(&settings.jwt, settings.leeway_seconds)?),
            AdmissionMode::Queueit => {
                let secret = &settings.queueit.secret_key;
                anyhow::ensure!(secret.is_set(), "admission.queueit.secret_key is not set");
                Kind::Queueit(QueueitKey::new(secret.expose())?)
            }
        };
        Ok(Some(AdmissionVerifier { kind }))
    }

    /// Verifies an admission token for the event `event_id` (its id as text: a JWT's `aud`
    /// must be it) and returns whom it admits.
    pub fn verify(&self, token: &str, event_id: &str) -> Result<Admission, AdmissionRefused> {
        if token.len() > MAX_ADMISSION_TOKEN_BYTES {
            return Err(AdmissionRefused::TooLong);
        }
        match &self.kind {
            Kind::Jwt(keys) => verify_jwt(keys, token, event_id),
            Kind::Queueit(key) => key.verify(token, jsonwebtoken::get_current_timestamp()),
        }
    }
}

/// The configured keys, each with a validation of its one algorithm: jsonwebtoken refuses a
/// validation that lists algorithms of another family than the key's.
fn jwt_keys(
    settings: &AdmissionJwtSettings,
    leeway: u64,
) -> anyhow::Result<Vec<(Algorithm, DecodingKey, Validation)>> {
    let mut keys = Vec::new();
    if settings.hs256_secret.is_set() {
        let key = DecodingKey::from_secret(settings.hs256_secret.expose().as_bytes())
            .context("admission.jwt.hs256_secret")?;
        keys.push((Algorithm::HS256, key));
    }
    if !settings.public_key_file.is_empty() {
        let path = &settings.public_key_file;
        let pem = std::fs::read(path)
            .with_context(|| format!("reading admission.jwt.public_key_file {path}"))?;
        keys.push(public_key(&pem).with_context(|| {
            format!(
                "admission.jwt.public_key_file {path}: not an RSA, P-256 or Ed25519 PEM public key"
            )
        })?);
    }
    anyhow::ensure!(
        !keys.is_empty(),
        "admission.mode is jwt but neither admission.jwt.public_key_file nor \
         admission.jwt.hs256_secret is set"
    );
    Ok(keys
        .into_iter()
        .map(|(alg, key)| {
            let mut validation = Validation::new(alg);
            validation.leeway = leeway;
            // `exp` (required) and `nbf` are checked by `window`: jsonwebtoken refuses a
            // fraction.
            validation.validate_exp = false;
            validation.validate_nbf = false;
            // jsonwebtoken checks `aud` and `iss` only when present unless they are required.
            let mut required = vec!["aud", "sub"];
            if settings.issuer.is_empty() {
                validation.iss = None;
            } else {
                validation.set_issuer(&[&settings.issuer]);
                required.push("iss");
            }
            validation.set_required_spec_claims(&required);
            (alg, key, validation)
        })
        .collect())
}

fn verify_jwt(
    keys: &[(Algorithm, DecodingKey, Validation)],
    token: &str,
    event_id: &str,
) -> Result<Admission, AdmissionRefused> {
    let header = decode_header(token).map_err(|_| AdmissionRefused::Malformed)?;
    let (_, key, validation) = keys
        .iter()
        .find(|(alg, _, _)| *alg == header.alg)
        .ok_or(AdmissionRefused::Algorithm)?;
    let mut validation = validation.clone();
    validation.set_audience(&[event_id]);
    let claims = decode::<Claims>(token, key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AdmissionRefused::Expired,
            ErrorKind::ImmatureSignature => AdmissionRefused::NotYetValid,
            ErrorKind::InvalidAudience => AdmissionRefused::WrongEvent,
            ErrorKind::InvalidIssuer
            | ErrorKind::InvalidSubject
            | ErrorKind::MissingRequiredClaim(_)
            | ErrorKind::InvalidClaimFormat(_) => AdmissionRefused::Claims,
            ErrorKind::InvalidAlgorithm => AdmissionRefused::Algorithm,
            ErrorKind::InvalidSignature => AdmissionRefused::Signature,
            _ => AdmissionRefused::Malformed,
        })?
        .claims;
    let now = jsonwebtoken::get_current_timestamp();
    window(
        claims.exp.as_ref(),
        claims.nbf.as_ref(),
        now,
        validation.leeway,
    )
    .map_err(|why| match why {
        TimeRefusal::Claims => AdmissionRefused::Claims,
        TimeRefusal::Expired => AdmissionRefused::Expired,
        TimeRefusal::NotYetValid => AdmissionRefused::NotYetValid,
    })?;
    match &claims.token_use {
        None => {}
        Some(serde_json::Value::String(s)) if s == "access" => {}
        Some(_) => return Err(AdmissionRefused::Claims),
    }
    let buyer = claims
        .sub
        .as_ref()
        .and_then(serde_json::Value::as_str)
        .and_then(|s| validate_user_id(Some(s)).ok())
        .ok_or(AdmissionRefused::Claims)?;
    Ok(Admission {
        buyer,
        queueit_event: None,
    })
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
