//! The flush's two clocks: a Postgres row waits for the stream to be read to its time.

use super::*;

/// Seen in an expiry wave on a loaded machine: the breaker sent a buyer's retry to Postgres
/// while the stream still had the Redis hold that took the seat first. A Postgres row (or a
/// Postgres hold's end) is not recorded before the stream has been read to its time.
#[test]
fn a_postgres_hold_waits_for_the_stream_to_be_read_to_its_time() {
    let (r, p) = (redis_hold(), pg_hold());
    let mut backlog = input(
        vec![held(redis_hold(), 500, 9000, &["B1"])],
        vec![pending(p, Change::Held, 5000, &["A1"], 1, true)],
        vec![],
        0,
    );
    backlog.drained = false;
    backlog.redis_clock_ms = Some(500);
    backlog.pg_now_ms = 7000;
    let out = merge(backlog);
    assert_eq!(changes(&out), vec![(Change::Held, vec!["B1"])]);
    // The next flush reads the Redis hold of A1 (ended at 4000), then reaches the stream's end.
    let mut rest = input(
        vec![held(r, 1000, 4000, &["A1"])],
        vec![pending(p, Change::Held, 5000, &["A1"], 1, true)],
        vec![],
        8000,
    );
    rest.pg_now_ms = 8000;
    let out = merge(rest);
    assert_eq!(
        out.groups
            .iter()
            .map(|g| (g.change, g.hold))
            .collect::<Vec<_>>(),
        vec![
            (Change::Held, r),
            (Change::Expired, r),
            (Change::Held, p),
            (Change::Expired, p)
        ]
    );
    // Redis not read (the Postgres-only mode, or an outage): nothing waits, so Postgres holds
    // are recorded while Redis is down.
    let mut outage = input(
        vec![],
        vec![pending(p, Change::Held, 5000, &["A1"], 1, true)],
        vec![],
        8000,
    );
    outage.drained = false;
    outage.redis_clock_ms = None;
    assert_eq!(
        changes(&merge(outage)),
        vec![(Change::Held, vec!["A1"]), (Change::Expired, vec!["A1"])]
    );
}
