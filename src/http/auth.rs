//! The gate of the API routes: who is calling (401 `UNAUTHENTICATED` with `WWW-Authenticate:
//! Bearer` otherwise), and whether its rate limit lets this request through (429 `RATE_LIMITED`
//! with `Retry-After` otherwise). Every answer of a limited caller carries the IETF
//! `RateLimit-Policy` and `RateLimit` headers. Health, readiness, metrics and the API document
//! are outside the gate.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, RATELIMIT, RATELIMIT_POLICY};
use super::state::AppState;
use crate::error::Error;
use crate::service::{AuthFailure, RateCheck};
use crate::telemetry::RateScope;

/// Authenticates the request, applies its caller's rate limit, and hands the [`Caller`] to the
/// handler through the request's extensions.
pub async fn gate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = bearer_token(req.headers());
    let caller = match state.seatlock.authenticate(token).await {
        Ok(caller) => caller,
        Err(AuthFailure::Unavailable) => {
            return Error::Unavailable { what: "postgres" }.into_response();
        }
        Err(failure) => {
            let token_sent = failure != AuthFailure::Missing;
            return ApiError::Unauthenticated { token_sent }.into_response();
        }
    };
    let (scope, identity) = match (&caller.key_name, &caller.subject) {
        (Some(name), _) => (RateScope::Key, name.clone()),
        (None, Some(sub)) => (RateScope::User, sub.clone()),
        // A trusted caller (`none` mode) is known by its address.
        (None, None) => {
            let peer = req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip());
            let address = client_address(peer, req.headers(), &state.trusted_proxies);
            let text = address.map_or_else(|| "unknown".to_string(), |a| a.to_string());
            (RateScope::Address, text)
        }
    };
    let check = state.seatlock.check_rate(scope, &identity).await;
    if let Some(check) = check.filter(|c| !c.verdict.allowed) {
        let (policy, state) = rate_headers(&check);
        let retry_after_s = check.verdict.retry_after.as_millis().div_ceil(1000).max(1) as u64;
        return ApiError::RateLimited {
            retry_after_s,
            policy,
            state,
        }
        .into_response();
    }
    req.extensions_mut().insert(caller);
    let mut response = next.run(req).await;
    if let Some(check) = check {
        let (policy, state) = rate_headers(&check);
        let headers = response.headers_mut();
        for (name, value) in [(RATELIMIT_POLICY, policy), (RATELIMIT, state)] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
    }
    response
}

/// The token of `Authorization: Bearer <token>` (the scheme is case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// `RateLimit-Policy: "<scope>";q=<burst>;w=<seconds to refill it>` and
/// `RateLimit: "<scope>";r=<remaining>;t=<seconds until whole again>`
/// (draft-ietf-httpapi-ratelimit-headers).
fn rate_headers(check: &RateCheck) -> (String, String) {
    let scope = check.scope.as_str();
    let window = check
        .rate
        .burst
        .div_ceil(check.rate.per_second.max(1))
        .max(1);
    let policy = format!("\"{scope}\";q={};w={window}", check.rate.burst);
    let wait = check.verdict.reset.max(check.verdict.retry_after);
    let reset = wait.as_millis().div_ceil(1000);
    let state = format!("\"{scope}\";r={};t={reset}", check.verdict.remaining);
    (policy, state)
}

/// The client's address: the peer's, unless the peer is a trusted proxy; then the right-most
/// address of `X-Forwarded-For` that is not a trusted proxy (the left-most if all are).
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = peer?;
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(forwarded.first())
        .copied()
        .or(Some(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "bearer  abc ")])),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Basic abc")])),
            None
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Bearer ")])),
            None
        );
        assert_eq!(bearer_token(&headers(&[])), None);
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let xff = headers(&[("x-forwarded-for", "1.1.1.1, 2.2.2.2, 10.0.0.7")]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &xff, &trusted),
            Some(ip("2.2.2.2"))
        );
        assert_eq!(
            client_address(Some(ip("9.9.9.9")), &xff, &trusted),
            Some(ip("9.9.9.9")),
            "an untrusted peer's header is ignored"
        );
        let all_trusted = headers(&[("x-forwarded-for", "10.1.1.1, 10.2.2.2")]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &all_trusted, &trusted),
            Some(ip("10.1.1.1"))
        );
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &headers(&[]), &trusted),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(client_address(None, &xff, &trusted), None);
    }
}
