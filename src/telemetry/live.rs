//! The live seat map's metrics: open streams, updates and snapshot resends sent, and the lag
//! from a change to the update that carries it leaving this instance.

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

pub const STREAM_CONNECTIONS: &str = "seatlock_stream_connections";
pub const STREAM_UPDATES: &str = "seatlock_stream_updates_sent_total";
pub const STREAM_SNAPSHOTS: &str = "seatlock_stream_snapshots_sent_total";
pub const STREAM_RESENDS: &str = "seatlock_stream_snapshot_resends_total";
pub const STREAM_LAG: &str = "seatlock_stream_update_lag_seconds";

pub(super) fn describe() {
    describe_gauge!(
        STREAM_CONNECTIONS,
        "Open seat-map streams (GET /events/{id}/stream) on this instance."
    );
    describe_counter!(STREAM_UPDATES, "Update events sent to seat-map streams.");
    describe_counter!(
        STREAM_SNAPSHOTS,
        "Snapshot events sent to seat-map streams (one per connection, plus resends)."
    );
    describe_counter!(
        STREAM_RESENDS,
        "Snapshots sent again to a stream that fell more than stream.buffer updates behind."
    );
    describe_histogram!(
        STREAM_LAG,
        Unit::Seconds,
        "From a change (the store's clock when it was made, or a hold's end) to the update \
         carrying it being written to a stream."
    );
}

pub(super) fn register_at_zero() {
    let _ = histogram!(STREAM_LAG);
    gauge!(STREAM_CONNECTIONS).set(0.0);
    for name in [STREAM_UPDATES, STREAM_SNAPSHOTS, STREAM_RESENDS] {
        counter!(name).absolute(0);
    }
}

pub fn record_stream_connections(open: usize) {
    gauge!(STREAM_CONNECTIONS).set(open as f64);
}

pub fn record_stream_snapshot() {
    counter!(STREAM_SNAPSHOTS).increment(1);
}

pub fn record_stream_snapshot_resent() {
    counter!(STREAM_RESENDS).increment(1);
}

/// An update written to a stream, `lag_ms` after the oldest change it carries.
pub fn record_stream_update(lag_ms: Option<i64>) {
    counter!(STREAM_UPDATES).increment(1);
    if let Some(ms) = lag_ms {
        histogram!(STREAM_LAG).record(ms.max(0) as f64 / 1000.0);
    }
}
