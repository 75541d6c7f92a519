//! The history's and the webhooks' metrics: changes recorded and flush time; deliveries by
//! outcome and their duration, messages waiting and the age of the oldest, endpoints disabled.

use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

use super::labels::WebhookOutcome;

pub const HISTORY_CHANGES: &str = "seatlock_history_changes_recorded_total";
pub const HISTORY_FLUSH_DURATION: &str = "seatlock_history_flush_duration_seconds";
pub const WEBHOOK_DELIVERIES: &str = "seatlock_webhook_deliveries_total";
pub const WEBHOOK_DURATION: &str = "seatlock_webhook_delivery_duration_seconds";
pub const WEBHOOK_PENDING: &str = "seatlock_webhook_messages_pending";
pub const WEBHOOK_OLDEST: &str = "seatlock_webhook_oldest_pending_seconds";
pub const WEBHOOK_DISABLED: &str = "seatlock_webhook_endpoints_disabled";

pub(super) fn describe() {
    describe_counter!(
        HISTORY_CHANGES,
        "Seat and tier changes numbered into the history (GET /events/{id}/changes)."
    );
    describe_histogram!(
        HISTORY_FLUSH_DURATION,
        Unit::Seconds,
        "One history flush of one event: copying its Redis stream into Postgres and numbering."
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        format!(
            "Webhook delivery attempts by outcome: {}.",
            WebhookOutcome::list()
        )
    );
    describe_histogram!(
        WEBHOOK_DURATION,
        Unit::Seconds,
        "One webhook delivery attempt, from connecting to the end of the answer read."
    );
    describe_gauge!(
        WEBHOOK_PENDING,
        "Webhook messages waiting for delivery to enabled endpoints (retries included)."
    );
    describe_gauge!(
        WEBHOOK_OLDEST,
        Unit::Seconds,
        "Age of the oldest webhook message waiting for an enabled endpoint (0: none)."
    );
    describe_gauge!(
        WEBHOOK_DISABLED,
        "Webhook endpoints disabled (410 Gone, failing too long, or by an administrator)."
    );
}

pub(super) fn register_at_zero() {
    counter!(HISTORY_CHANGES).absolute(0);
    let _ = histogram!(HISTORY_FLUSH_DURATION);
    let _ = histogram!(WEBHOOK_DURATION);
    for o in WebhookOutcome::ALL {
        counter!(WEBHOOK_DELIVERIES, "outcome" => o.as_str()).absolute(0);
    }
    for g in [WEBHOOK_PENDING, WEBHOOK_OLDEST, WEBHOOK_DISABLED] {
        gauge!(g).set(0.0);
    }
}

/// One history flush of an event: the changes it recorded, and how long it took.
pub fn record_history_flush(changes: u64, took: Duration) {
    counter!(HISTORY_CHANGES).increment(changes);
    histogram!(HISTORY_FLUSH_DURATION).record(took.as_secs_f64());
}

/// One delivery attempt.
pub fn record_webhook_attempt(outcome: WebhookOutcome, took: Duration) {
    counter!(WEBHOOK_DELIVERIES, "outcome" => outcome.as_str()).increment(1);
    histogram!(WEBHOOK_DURATION).record(took.as_secs_f64());
}

/// Messages waiting, the oldest's age, endpoints disabled.
pub fn record_webhook_backlog(pending: i64, oldest_s: f64, disabled: i64) {
    gauge!(WEBHOOK_PENDING).set(pending as f64);
    gauge!(WEBHOOK_OLDEST).set(oldest_s);
    gauge!(WEBHOOK_DISABLED).set(disabled as f64);
}
