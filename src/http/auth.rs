//! The gate of the API routes: who is calling (401 `UNAUTHENTICATED` with `WWW-Authenticate:
//! Bearer` otherwise), and whether its rate limit lets this request through (429 `RATE_LIMITED`
//! with `Retry-After` otherwise). Every answer of a limited caller carries the IETF
//! `RateLimit-Policy` and `RateLimit` headers. Health, readiness, metrics and the API document
//! are outside the gate.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, RATELIMIT, RATELIMIT_POLICY};
use super::state::AppState;
use crate::domain::limits::{DeferredCount, RateCheck, RateRequest, RateScope};
use crate::error::Error;
use crate::service::AuthFailure;

/// The route whose rate count the hold script makes, in the same round trip as the hold.
const COUNTED_BY_THE_HOLD: &str = "/events/{event_id}/seats/reserve";

/// The route that may carry its token in the query (`access_token`): a browser's EventSource
/// cannot set headers. The query is never logged (the request span has the route, not the URI).
const TOKEN_IN_QUERY: &str = "/events/{event_id}/stream";

/// Authenticates the request, applies its caller's rate limit, and hands the [`Caller`] to the
/// handler through the request's extensions.
pub async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    gated(&state, req, |req| next.run(req)).await
}

/// [`gate`] around any inner call: the middleware's, or the hold lane's.
pub async fn gated<F, Fut>(state: &AppState, mut req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let from_query = req
        .extensions()
        .get::<MatchedPath>()
        .filter(|p| p.as_str() == TOKEN_IN_QUERY)
        .and_then(|_| query_token(req.uri().query()?));
    let token = bearer_token(req.headers()).or(from_query);
    let caller = match state.seatlock.authenticate(token).await {
        Ok(caller) => caller,
        Err(AuthFailure::Unavailable) => {
            return Error::Unavailable { what: "postgres" }.into_response();
        }
        Err(AuthFailure::UnknownKey) => {
            // Unknown API keys are limited per client address (a buyer's quota), so guessing
            // keys cannot run at line rate (each unknown key costs a Postgres read). A missing
            // or invalid JWT costs no store work and is always answered 401.
            let attempts = RateRequest {
                scope: RateScope::Address,
                identity: format!("auth-failure:{}", address_of(&req, state)),
            };
            if let Some(check) = state.seatlock.check_rate(&attempts).await
                && !check.verdict.allowed
            {
                return check.refusal().into_response();
            }
            return ApiError::Unauthenticated { token_sent: true }.into_response();
        }
        Err(failure) => {
            let token_sent = failure != AuthFailure::Missing;
            return ApiError::Unauthenticated { token_sent }.into_response();
        }
    };
    let scope = match (&caller.key_name, &caller.subject) {
        (Some(_), _) => RateScope::Key,
        (None, Some(_)) => RateScope::User,
        // A trusted caller (`none` mode) is known by its address.
        (None, None) => RateScope::Address,
    };
    if !state.seatlock.is_rate_limited(scope) {
        // No limit applies to the caller: nothing to count, no headers.
        req.extensions_mut().insert(caller);
        return next(req).await;
    }
    let counted = RateRequest {
        scope,
        identity: match (&caller.key_name, &caller.subject) {
            (Some(name), _) => name.clone(),
            (None, Some(sub)) => sub.clone(),
            (None, None) => address_of(&req, state),
        },
    };
    req.extensions_mut().insert(caller);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    if route == Some(COUNTED_BY_THE_HOLD) && state.seatlock.counts_rate_in_holds() {
        // The hold script counts it; whatever does not reach the script is counted after.
        let deferred = Arc::new(DeferredCount::new(counted));
        req.extensions_mut().insert(deferred.clone());
        let response = next(req).await;
        let check = match deferred.counted() {
            Some(check) => Some(check),
            // Not counted on the way (refused before any store work: a bad body, another
            // buyer's userId): counted now, and refused if it was over the limit.
            None => match state.seatlock.check_rate(&deferred.caller).await {
                Some(check) if !check.verdict.allowed => {
                    return check.refusal().into_response();
                }
                other => other,
            },
        };
        let mut response = response;
        if let Some(check) = check {
            add_rate_headers(&mut response, &check);
        }
        return response;
    }
    let check = state.seatlock.check_rate(&counted).await;
    if let Some(check) = check.filter(|c| !c.verdict.allowed) {
        return check.refusal().into_response();
    }
    let mut response = next(req).await;
    if let Some(check) = check {
        add_rate_headers(&mut response, &check);
    }
    response
}

/// The client's address as text ("unknown" when the connection's peer is not known).
fn address_of(req: &Request, state: &AppState) -> String {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let address = client_address(peer, req.headers(), &state.trusted_proxies);
    address.map_or_else(|| "unknown".to_string(), |a| a.to_string())
}

fn add_rate_headers(response: &mut Response, check: &RateCheck) {
    let (policy, state) = check.headers();
    let headers = response.headers_mut();
    for (name, value) in [(RATELIMIT_POLICY, policy), (RATELIMIT, state)] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
}

/// The token of `Authorization: Bearer <token>` (the scheme is case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The `access_token` parameter of a query string.
fn query_token(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("access_token="))
        .filter(|t| !t.is_empty())
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
        .filter_map(|a| forwarded_ip(a.trim()))
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(forwarded.first())
        .copied()
        .or(Some(peer))
}

/// One `X-Forwarded-For` entry: an address, or an address with a port (`1.2.3.4:5678`,
/// `[::1]:80`).
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    entry
        .parse()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
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
    fn a_stream_token_is_read_from_the_query() {
        assert_eq!(query_token("access_token=abc"), Some("abc"));
        assert_eq!(query_token("x=1&access_token=a.b-c_d"), Some("a.b-c_d"));
        assert_eq!(query_token("access_token="), None);
        assert_eq!(query_token("token=abc"), None);
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
        let ported = headers(&[("x-forwarded-for", "1.1.1.1:1000, 2.2.2.2:2000, [::1]:80")]);
        let with_ports: Vec<ipnet::IpNet> = vec![
            "10.0.0.0/8".parse().expect("net"),
            "::1/128".parse().expect("net"),
        ];
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &ported, &with_ports),
            Some(ip("2.2.2.2")),
            "entries with ports count"
        );
    }
}
