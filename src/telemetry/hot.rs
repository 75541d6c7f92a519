//! Metric handles of the hot path, resolved once (issue 24): `counter!` / `histogram!` build the
//! metric's key (labels allocated) and look it up in the recorder's registry on every call; a
//! hold paid that half a dozen times. The handles are taken at the first call after the recorder
//! is installed, so none is ever a handle of no recorder; before that (or where the process never
//! installs one) these functions fall back to the macros. Every series here is registered at zero
//! when the recorder is installed, so /metrics shows exactly what it did before.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use metrics::{Counter, Histogram, counter, histogram};

use super::catalogue::{
    HOLD_SIZE, HOLDS_ACQUIRED, HOLDS_ATTEMPTED, HOLDS_REFUSED, HTTP_DURATION, HTTP_REQUESTS,
    REDIS_DURATION, REDIS_ERRORS, TIER_HOLDS_ATTEMPTED, TIER_UNITS_HELD, TIER_UNITS_REQUESTED,
    recorder_installed,
};
use super::labels::{HoldRefusal, RedisOp};

struct Hot {
    holds_attempted: Counter,
    holds_acquired: Counter,
    hold_size: Histogram,
    /// By `HoldRefusal as usize`.
    refused: Vec<Counter>,
    /// By `RedisOp as usize`.
    redis: Vec<Histogram>,
    http: HttpHandles,
}

static HOT: OnceLock<Hot> = OnceLock::new();

fn take() -> Hot {
    Hot {
        holds_attempted: counter!(HOLDS_ATTEMPTED),
        holds_acquired: counter!(HOLDS_ACQUIRED),
        hold_size: histogram!(HOLD_SIZE),
        refused: HoldRefusal::ALL
            .iter()
            .map(|r| counter!(HOLDS_REFUSED, "reason" => r.as_str()))
            .collect(),
        redis: RedisOp::ALL
            .iter()
            .map(|op| histogram!(REDIS_DURATION, "op" => op.as_str()))
            .collect(),
        http: HttpHandles::default(),
    }
}

/// The handles, once the recorder is installed.
fn hot() -> Option<&'static Hot> {
    if !recorder_installed() {
        return None;
    }
    Some(HOT.get_or_init(take))
}

/// The HTTP series of each (route, method, status class) met so far. Routes are the router's
/// templates (a bounded set); only the standard methods are kept, so a client inventing methods
/// cannot grow this map (its requests take the macros' path).
#[derive(Default)]
struct HttpHandles {
    routes: RwLock<HashMap<Box<str>, Vec<HttpSeries>>>,
}

struct HttpSeries {
    method: &'static str,
    class: &'static str,
    requests: Counter,
    duration: Histogram,
}

impl HttpHandles {
    /// Counts one request and records its duration; false when the method is not a standard
    /// one (not counted: the caller counts it).
    pub fn record(&self, route: &str, method: &str, class: &'static str, secs: f64) -> bool {
        let Some(method) = standard_method(method) else {
            return false;
        };
        let find = |series: &[HttpSeries]| {
            series
                .iter()
                .find(|s| s.method == method && s.class == class)
                .map(|s| {
                    s.requests.increment(1);
                    s.duration.record(secs);
                })
        };
        {
            let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
            if routes.get(route).and_then(|s| find(s)).is_some() {
                return true;
            }
        }
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        let series = routes.entry(route.into()).or_default();
        if find(series).is_none() {
            let s = HttpSeries {
                method,
                class,
                requests: counter!(HTTP_REQUESTS, "route" => route.to_string(), "method" => method, "status" => class),
                duration: histogram!(HTTP_DURATION, "route" => route.to_string(), "method" => method),
            };
            s.requests.increment(1);
            s.duration.record(secs);
            series.push(s);
        }
        true
    }
}

fn standard_method(method: &str) -> Option<&'static str> {
    Some(match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => return None,
    })
}

pub fn record_redis(op: RedisOp, took: Duration, ok: bool) {
    match hot().and_then(|h| h.redis.get(op as usize)) {
        Some(h) => h.record(took.as_secs_f64()),
        None => histogram!(REDIS_DURATION, "op" => op.as_str()).record(took.as_secs_f64()),
    }
    if !ok {
        counter!(REDIS_ERRORS, "op" => op.as_str()).increment(1);
    }
}

/// A hold request of `units` (seats plus tier units), `tier_units` of them tier units.
pub fn record_hold_attempt(units: u64, tier_units: u64) {
    match hot() {
        Some(h) => {
            h.holds_attempted.increment(1);
            h.hold_size.record(units as f64);
        }
        None => {
            counter!(HOLDS_ATTEMPTED).increment(1);
            histogram!(HOLD_SIZE).record(units as f64);
        }
    }
    if tier_units > 0 {
        counter!(TIER_HOLDS_ATTEMPTED).increment(1);
        counter!(TIER_UNITS_REQUESTED).increment(tier_units);
    }
}

/// A hold taken, `tier_units` of its units tier units.
pub fn record_hold_acquired(tier_units: u64) {
    match hot() {
        Some(h) => h.holds_acquired.increment(1),
        None => counter!(HOLDS_ACQUIRED).increment(1),
    }
    if tier_units > 0 {
        counter!(TIER_UNITS_HELD).increment(tier_units);
    }
}

pub fn record_hold_refused(reason: HoldRefusal) {
    super::trace::record_refusal_reason(reason.as_str());
    match hot().and_then(|h| h.refused.get(reason as usize)) {
        Some(c) => c.increment(1),
        None => counter!(HOLDS_REFUSED, "reason" => reason.as_str()).increment(1),
    }
}

pub fn record_http(route: &str, method: &str, status: u16, took: Duration) {
    let class = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    if let Some(h) = hot()
        && h.http.record(route, method, class, took.as_secs_f64())
    {
        return;
    }
    counter!(HTTP_REQUESTS, "route" => route.to_string(), "method" => method.to_string(), "status" => class)
        .increment(1);
    histogram!(HTTP_DURATION, "route" => route.to_string(), "method" => method.to_string())
        .record(took.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_series_are_kept_once_per_route_method_and_class_and_odd_methods_are_not_kept() {
        let http = HttpHandles::default();
        for _ in 0..3 {
            assert!(http.record("/events/{event_id}/seats/reserve", "POST", "2xx", 0.001));
        }
        assert!(http.record("/events/{event_id}/seats/reserve", "POST", "4xx", 0.001));
        assert!(http.record("/healthz", "GET", "2xx", 0.001));
        assert!(!http.record("unmatched", "BREW", "4xx", 0.001));
        let routes = http.routes.read().expect("lock");
        assert_eq!(routes.len(), 2);
        let reserve = &routes["/events/{event_id}/seats/reserve"];
        let kept: Vec<_> = reserve.iter().map(|s| (s.method, s.class)).collect();
        assert_eq!(kept, [("POST", "2xx"), ("POST", "4xx")]);
    }
}
