//! The circuit breaker that decides whether calls go to Redis or holds to the Postgres fallback.
//! Pure state machine; the caller passes the clock, so tests drive it exactly. One per instance:
//! each seatlock process judges Redis by its own calls.
//!
//! Closed: every call goes to Redis; `failure_threshold` consecutive failures open it.
//! Open: no call goes to Redis for `open_for`; then the next call is let through as a probe
//! (half-open). Half-open: the probe's success closes the breaker, its failure re-opens it;
//! other calls keep using the fallback while the probe is out, and a probe that never reports
//! (its request was dropped) is replaced by another after `open_for`. Only a probe closes the
//! breaker: a slow call that started before it opened and succeeds late does not.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    state: State,
    failures: u32,
    opened_at: Option<Instant>,
    probe_out: Option<Instant>,
}

#[derive(Debug)]
pub struct Breaker {
    inner: Mutex<Inner>,
    threshold: u32,
    open_for: Duration,
}

/// What a call outcome did to the breaker, so the caller can log and react once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    Opened,
    Closed,
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Breaker {
            inner: Mutex::new(Inner {
                state: State::Closed,
                failures: 0,
                opened_at: None,
                probe_out: None,
            }),
            threshold: threshold.max(1),
            open_for,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the counters inconsistent enough to
        // matter; keep serving rather than poisoning every request.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn state(&self) -> State {
        self.lock().state
    }

    /// Whether the breaker is closed: Redis is taken to work. Read-only callers ask this, so
    /// they never use up the half-open probe.
    pub fn is_closed(&self) -> bool {
        self.state() == State::Closed
    }

    /// Admits a call to Redis: always while closed; while open, once `open_for` has passed, this
    /// call becomes the half-open probe (true) and others are refused until it reports. A caller
    /// admitted as the probe must report its outcome with `on_success` or `on_failure`.
    pub fn admit(&self, now: Instant) -> bool {
        let mut s = self.lock();
        let due =
            |since: Option<Instant>| since.is_none_or(|t| now.duration_since(t) >= self.open_for);
        let probe = match s.state {
            State::Closed => return true,
            State::Open => due(s.opened_at),
            State::HalfOpen => due(s.probe_out),
        };
        if probe {
            s.state = State::HalfOpen;
            s.probe_out = Some(now);
        }
        probe
    }

    pub fn on_success(&self) -> Transition {
        let mut s = self.lock();
        match s.state {
            State::Closed => {
                s.failures = 0;
                Transition::None
            }
            // A call that started before the breaker opened: it proves nothing now.
            State::Open => Transition::None,
            State::HalfOpen => {
                s.state = State::Closed;
                s.failures = 0;
                s.opened_at = None;
                s.probe_out = None;
                Transition::Closed
            }
        }
    }

    pub fn on_failure(&self, now: Instant) -> Transition {
        let mut s = self.lock();
        s.failures = s.failures.saturating_add(1);
        match s.state {
            State::Closed if s.failures >= self.threshold => {
                s.state = State::Open;
                s.opened_at = Some(now);
                Transition::Opened
            }
            State::HalfOpen => {
                s.state = State::Open;
                s.opened_at = Some(now);
                s.probe_out = None;
                Transition::None
            }
            _ => Transition::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_probes_after_the_period() {
        let b = Breaker::new(3, Duration::from_secs(5));
        let t0 = Instant::now();
        assert!(b.admit(t0));
        assert_eq!(b.on_failure(t0), Transition::None);
        assert_eq!(b.on_failure(t0), Transition::None);
        assert_eq!(b.on_failure(t0), Transition::Opened);
        assert!(!b.admit(t0 + Duration::from_secs(1)));
        // After the period exactly one probe goes through.
        let t1 = t0 + Duration::from_secs(5);
        assert!(b.admit(t1));
        assert_eq!(b.state(), State::HalfOpen);
        assert!(!b.admit(t1));
        assert_eq!(b.on_success(), Transition::Closed);
        assert!(b.admit(t1));
    }

    #[test]
    fn asking_whether_it_is_closed_does_not_take_the_probe() {
        let b = Breaker::new(1, Duration::from_secs(1));
        let t0 = Instant::now();
        b.on_failure(t0);
        assert!(!b.is_closed());
        let t1 = t0 + Duration::from_secs(1);
        assert!(!b.is_closed());
        assert_eq!(b.state(), State::Open, "still open: the probe is not out");
        assert!(b.admit(t1));
        assert_eq!(b.state(), State::HalfOpen);
    }

    #[test]
    fn a_failed_probe_reopens_for_another_period() {
        let b = Breaker::new(1, Duration::from_secs(2));
        let t0 = Instant::now();
        b.on_failure(t0);
        let t1 = t0 + Duration::from_secs(2);
        assert!(b.admit(t1));
        b.on_failure(t1);
        assert_eq!(b.state(), State::Open);
        assert!(!b.admit(t1 + Duration::from_secs(1)));
        assert!(b.admit(t1 + Duration::from_secs(2)));
    }

    #[test]
    fn a_probe_that_never_reports_is_replaced_after_the_period() {
        let b = Breaker::new(1, Duration::from_secs(2));
        let t0 = Instant::now();
        b.on_failure(t0);
        assert!(b.admit(t0 + Duration::from_secs(2)));
        // That probe's request was dropped: no success, no failure.
        assert!(!b.admit(t0 + Duration::from_secs(3)));
        assert!(b.admit(t0 + Duration::from_secs(4)));
        assert_eq!(b.on_success(), Transition::Closed);
    }

    #[test]
    fn a_late_success_does_not_close_an_open_breaker() {
        let b = Breaker::new(1, Duration::from_secs(5));
        let t0 = Instant::now();
        b.on_failure(t0);
        assert_eq!(b.on_success(), Transition::None);
        assert_eq!(b.state(), State::Open);
        assert!(!b.admit(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn successes_reset_the_failure_count() {
        let b = Breaker::new(2, Duration::from_secs(1));
        let t0 = Instant::now();
        b.on_failure(t0);
        b.on_success();
        assert_eq!(b.on_failure(t0), Transition::None);
        assert_eq!(b.state(), State::Closed);
    }
}
