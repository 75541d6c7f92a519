//! JWT verification: only the algorithms whose key is configured (HS256 with
//! `auth.jwt.hs256_secret`; RS256, ES256 or EdDSA with the PEM key of `auth.jwt.public_key_file`),
//! never `none`; `exp` required and `nbf` honoured (NumericDates, a fraction allowed), `iss` /
//! `aud` checked when configured, with `auth.jwt.leeway_seconds` of clock skew. The buyer is the
//! `sub` claim; `"role": "admin"` makes an admin token (which skips admission); a `channels`
//! claim (an array of channel codes) puts the caller in those sales channels, and a malformed one
//! refuses the token.

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::Context;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use super::AuthFailure;
use super::numeric_date::{TimeRefusal, window};
use crate::config::JwtSettings;
use crate::domain::access::{Caller, Role, check_channels};
use crate::domain::fields::validate_user_id;

/// Most verified tokens remembered; past it the memory starts over.
const MAX_REMEMBERED: usize = 50_000;

/// The configured keys, each with the one algorithm it verifies, and the tokens verified
/// recently: a buyer sends the same token with each request, and checking its signature again
/// costs more than looking it up (a token is remembered only while its `exp` / `nbf` window,
/// leeway included, holds).
pub(super) struct JwtVerifier {
    /// Each key with the validation of its one algorithm: jsonwebtoken refuses a validation
    /// that lists algorithms of another family than the key's, so HS256 beside a public key
    /// needs one validation each.
    keys: Vec<(Algorithm, DecodingKey, Validation)>,
    leeway: u64,
    verified: Mutex<HashMap<Box<str>, Verified>>,
}

struct Verified {
    caller: Caller,
    /// Usable from / until, in seconds since the epoch.
    from: u64,
    until: u64,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    role: Option<String>,
    /// Read as any JSON value, so a malformed claim is refused as a wrong claim.
    channels: Option<serde_json::Value>,
    /// NumericDates, a fraction allowed: checked by [`window`], not by jsonwebtoken.
    exp: Option<serde_json::Value>,
    nbf: Option<serde_json::Value>,
}

impl JwtVerifier {
    /// The verifier of the configured keys; None when no key is configured (then every JWT is
    /// refused and only API keys work).
    pub(super) fn new(settings: &JwtSettings) -> anyhow::Result<Option<Self>> {
        let mut keys = Vec::new();
        if settings.hs256_secret.is_set() {
            let key = DecodingKey::from_secret(settings.hs256_secret.expose().as_bytes())
                .context("auth.jwt.hs256_secret")?;
            keys.push((Algorithm::HS256, key));
        }
        if !settings.public_key_file.is_empty() {
            let path = &settings.public_key_file;
            let pem = std::fs::read(path)
                .with_context(|| format!("reading auth.jwt.public_key_file {path}"))?;
            keys.push(public_key(&pem).with_context(|| {
                format!(
                    "auth.jwt.public_key_file {path}: not an RSA, P-256 or Ed25519 PEM public key"
                )
            })?);
        }
        if keys.is_empty() {
            return Ok(None);
        }
        let mut validation = Validation::new(keys[0].0);
        validation.leeway = settings.leeway_seconds;
        // `exp` (required) and `nbf` are checked by `window`: jsonwebtoken refuses a fraction.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        // A configured issuer or audience is also a required claim: jsonwebtoken checks `iss`
        // and `aud` only when present unless told (RFC 8725, 3.9: a token that does not name
        // this service is not for it).
        let mut required = vec![];
        if settings.issuer.is_empty() {
            validation.iss = None;
        } else {
            validation.set_issuer(&[&settings.issuer]);
            required.push("iss");
        }
        if settings.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&[&settings.audience]);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        let keys = keys
            .into_iter()
            .map(|(alg, key)| {
                let mut own = validation.clone();
                own.algorithms = vec![alg];
                (alg, key, own)
            })
            .collect();
        Ok(Some(JwtVerifier {
            keys,
            leeway: settings.leeway_seconds,
            verified: Mutex::default(),
        }))
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Verified>> {
        // Only a cache: usable after a panic elsewhere.
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Verifies a token (or finds it verified and still within its window) and returns its
    /// caller.
    pub(super) fn verify(&self, token: &str) -> Result<Caller, AuthFailure> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(v) = self.remembered().get(token)
            && (v.from..v.until).contains(&now)
        {
            return Ok(v.caller.clone());
        }
        let (caller, claims) = self.check(token)?;
        let usable =
            window(claims.exp.as_ref(), claims.nbf.as_ref(), now, self.leeway).map_err(|why| {
                match why {
                    TimeRefusal::Claims => AuthFailure::Claims,
                    TimeRefusal::Expired => AuthFailure::Expired,
                    TimeRefusal::NotYetValid => AuthFailure::NotYetValid,
                }
            })?;
        let mut remembered = self.remembered();
        if remembered.len() >= MAX_REMEMBERED {
            remembered.clear();
        }
        let verified = Verified {
            caller: caller.clone(),
            from: usable.from,
            until: usable.until,
        };
        remembered.insert(token.into(), verified);
        Ok(caller)
    }

    /// The full check: header, signature, claims.
    fn check(&self, token: &str) -> Result<(Caller, Claims), AuthFailure> {
        let header = decode_header(token).map_err(|_| AuthFailure::Malformed)?;
        let (_, key, validation) = self
            .keys
            .iter()
            .find(|(alg, _, _)| *alg == header.alg)
            .ok_or(AuthFailure::Algorithm)?;
        let data = decode::<Claims>(token, key, validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthFailure::Expired,
            ErrorKind::ImmatureSignature => AuthFailure::NotYetValid,
            ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => AuthFailure::Claims,
            ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => {
                AuthFailure::Claims
            }
            ErrorKind::InvalidAlgorithm => AuthFailure::Algorithm,
            ErrorKind::InvalidSignature => AuthFailure::Signature,
            _ => AuthFailure::Malformed,
        })?;
        let claims = data.claims;
        let sub = claims
            .sub
            .as_deref()
            .and_then(|s| validate_user_id(Some(s)).ok())
            .ok_or(AuthFailure::Claims)?;
        let role = match claims.role.as_deref() {
            Some("admin") => Role::Admin,
            _ => Role::Buyer,
        };
        let channels = match &claims.channels {
            None => Vec::new(),
            Some(value) => serde_json::from_value::<Vec<String>>(value.clone())
                .ok()
                .and_then(|codes| check_channels(codes).ok())
                .ok_or(AuthFailure::Claims)?,
        };
        let caller = Caller {
            role,
            subject: Some(sub),
            key_name: None,
            channels,
            skips_admission: role == Role::Admin,
        };
        Ok((caller, claims))
    }
}

/// A PEM public key and the algorithm it verifies (admission tokens use it too).
pub(super) fn public_key(pem: &[u8]) -> anyhow::Result<(Algorithm, DecodingKey)> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok((Algorithm::RS256, key));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Ok((Algorithm::ES256, key));
    }
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        return Ok((Algorithm::EdDSA, key));
    }
    anyhow::bail!("unrecognised key")
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode, get_current_timestamp};
    use serde_json::{Value, json};

    use super::*;
    use crate::config::Secret;

    const SECRET: &str = "jwt-test-secret-0123456789abcdef-0123";

    fn verifier() -> JwtVerifier {
        let settings = JwtSettings {
            hs256_secret: Secret::new(SECRET),
            public_key_file: String::new(),
            issuer: String::new(),
            audience: String::new(),
            leeway_seconds: 30,
        };
        JwtVerifier::new(&settings)
            .expect("settings")
            .expect("a verifier")
    }

    fn token(extra: Value) -> String {
        let mut claims = json!({"sub": "u1", "exp": get_current_timestamp() + 600});
        for (k, v) in extra.as_object().expect("object") {
            claims[k] = v.clone();
        }
        let key = EncodingKey::from_secret(SECRET.as_bytes()).expect("key");
        encode(&Header::default(), &claims, &key).expect("sign")
    }

    #[test]
    fn the_channels_claim_puts_a_buyer_in_its_channels() {
        let v = verifier();
        let plain = v.verify(&token(json!({}))).expect("valid");
        assert!(plain.channels.is_empty());
        assert!(!plain.skips_admission, "buyers need admission");
        let fan = v
            .verify(&token(
                json!({"channels": ["presale", "fanclub", "presale"]}),
            ))
            .expect("valid");
        assert_eq!(fan.channels, ["presale", "fanclub"]);
        assert_eq!(fan.role, Role::Buyer);
        let admin = v
            .verify(&token(json!({"role": "admin", "channels": []})))
            .expect("valid");
        assert!(admin.skips_admission, "admins skip admission");
    }

    #[test]
    fn a_fractional_expiry_is_a_numeric_date() {
        let v = verifier();
        let now = get_current_timestamp() as f64;
        let caller = v
            .verify(&token(json!({"exp": now + 600.25, "nbf": now - 0.5})))
            .expect("valid");
        assert_eq!(caller.subject.as_deref(), Some("u1"));
        // Past the 30 s of leeway, and a remembered token is not reused past its window.
        assert_eq!(
            v.verify(&token(json!({"exp": now - 31.5}))),
            Err(AuthFailure::Expired)
        );
        assert_eq!(
            v.verify(&token(json!({"nbf": now + 31.5}))),
            Err(AuthFailure::NotYetValid)
        );
        for claims in [json!({"exp": "soon"}), json!({"exp": null})] {
            assert_eq!(v.verify(&token(claims)), Err(AuthFailure::Claims));
        }
    }

    #[test]
    fn a_malformed_channels_claim_refuses_the_token() {
        let v = verifier();
        let too_many: Vec<String> = (0..21).map(|i| format!("c{i}")).collect();
        for (what, channels) in [
            ("not an array", json!("presale")),
            ("not strings", json!([1, 2])),
            ("a bad code", json!(["has space"])),
            ("an empty code", json!([""])),
            ("too many", json!(too_many)),
        ] {
            assert_eq!(
                v.verify(&token(json!({ "channels": channels }))),
                Err(AuthFailure::Claims),
                "{what}"
            );
        }
    }
}
