//! The flush's ordering, case by case: what the stream and the pending rows say, and the groups
//! recorded.

use super::*;

fn redis_hold() -> HoldGroupId {
    HoldGroupId::new(crate::domain::events::EventId(7), HoldStore::Redis)
}

fn pg_hold() -> HoldGroupId {
    HoldGroupId::new(crate::domain::events::EventId(7), HoldStore::Postgres)
}

fn held(id: HoldGroupId, at: i64, exp: i64, seats: &[&str]) -> StreamEntry {
    StreamEntry {
        at_ms: at,
        hold: id,
        kind: EntryKind::Held {
            user_id: "u1".into(),
            expires_at_ms: exp,
            seats: seats.iter().map(|s| s.to_string()).collect(),
            tiers: vec![],
        },
    }
}

fn entry(id: HoldGroupId, at: i64, kind: EntryKind) -> StreamEntry {
    StreamEntry {
        at_ms: at,
        hold: id,
        kind,
    }
}

fn pending(
    id: HoldGroupId,
    change: Change,
    at: i64,
    seats: &[&str],
    rows: i64,
    early: bool,
) -> Pending {
    Pending {
        group: Group {
            change,
            hold: id,
            user_id: "u1".into(),
            at_ms: at,
            expires_at_ms: (change == Change::Held).then_some(at + 1000),
            seats: seats
                .iter()
                .map(|s| (s.to_string(), change.status()))
                .collect(),
            tiers: vec![],
            price_cents: 0,
            pending_ids: vec![rows],
            traceparent: None,
        },
        early,
    }
}

fn input(
    entries: Vec<StreamEntry>,
    pending: Vec<Pending>,
    open: Vec<OpenHold>,
    now: i64,
) -> FlushInput {
    FlushInput {
        entries,
        drained: true,
        redis_clock_ms: Some(now),
        pg_now_ms: now,
        pending,
        open,
        expire_through: None,
    }
}

fn changes(out: &FlushOutput) -> Vec<(Change, Vec<&str>)> {
    out.groups
        .iter()
        .map(|g| (g.change, g.seats.iter().map(|(s, _)| s.as_str()).collect()))
        .collect()
}

#[test]
fn a_hold_and_its_release_are_recorded_in_order_and_leave_nothing_open() {
    let x = redis_hold();
    let out = merge(input(
        vec![
            held(x, 10, 1000, &["A1", "A2"]),
            entry(x, 20, EntryKind::Released),
        ],
        vec![],
        vec![],
        30,
    ));
    assert_eq!(
        changes(&out),
        vec![
            (Change::Held, vec!["A1", "A2"]),
            (Change::Released, vec!["A1", "A2"])
        ]
    );
    assert_eq!(out.groups[0].expires_at_ms, Some(1000));
    assert!(out.open_upserts.is_empty() && out.open_deletes.is_empty());
}

#[test]
fn a_hold_stays_open_until_the_redis_clock_passes_its_end_then_expires_at_that_time() {
    let x = redis_hold();
    let out = merge(input(vec![held(x, 10, 1000, &["A1"])], vec![], vec![], 999));
    assert_eq!(changes(&out), vec![(Change::Held, vec!["A1"])]);
    assert_eq!(out.open_upserts.len(), 1);
    let open = out.open_upserts.clone();
    let out = merge(input(vec![], vec![], open.clone(), 1000));
    assert_eq!(changes(&out), vec![(Change::Expired, vec!["A1"])]);
    assert_eq!(out.groups[0].at_ms, 1000);
    assert_eq!(out.open_deletes, vec![x]);
    // Without a Redis time by which every entry was read (a pin may be unseen), a Redis hold
    // is not expired.
    let mut partial = input(vec![], vec![], open, 5000);
    partial.drained = false;
    partial.redis_clock_ms = None;
    assert!(merge(partial).groups.is_empty());
}

#[test]
fn a_page_of_expiries_records_none_past_its_last_hold() {
    let (x, y) = (redis_hold(), redis_hold());
    let taken = vec![held(x, 10, 900, &["A1"]), held(y, 20, 1000, &["A2"])];
    let open = merge(input(taken, vec![], vec![], 100)).open_upserts;
    let mut paged = input(vec![], vec![], open, 5000);
    paged.expire_through = Some((900, x.0));
    let out = merge(paged);
    assert_eq!(changes(&out), vec![(Change::Expired, vec!["A1"])]);
    assert_eq!(out.open_deletes, vec![x]);
}

#[test]
fn a_pin_moves_the_end_so_a_confirming_hold_does_not_expire() {
    let x = redis_hold();
    let out = merge(input(
        vec![
            held(x, 10, 1000, &["A1"]),
            entry(
                x,
                900,
                EntryKind::Pinned {
                    expires_at_ms: 30_900,
                },
            ),
        ],
        vec![],
        vec![],
        2000,
    ));
    assert_eq!(changes(&out), vec![(Change::Held, vec!["A1"])]);
    assert_eq!(out.open_upserts[0].expires_at_ms, 30_900);
}

#[test]
fn a_booking_is_recorded_at_its_marker_from_its_postgres_rows() {
    let x = redis_hold();
    let y = redis_hold();
    let out = merge(input(
        vec![
            held(x, 10, 1000, &["A1"]),
            entry(x, 50, EntryKind::Booked),
            held(y, 60, 1000, &["A2"]),
        ],
        vec![pending(x, Change::Booked, 40, &["A1"], 101, false)],
        vec![],
        70,
    ));
    assert_eq!(
        changes(&out),
        vec![
            (Change::Held, vec!["A1"]),
            (Change::Booked, vec!["A1"]),
            (Change::Held, vec!["A2"])
        ]
    );
    assert_eq!(out.groups[1].pending_ids, vec![101]);
    assert_eq!(out.groups[1].seats[0].1, Status::Booked);
}

#[test]
fn a_booking_whose_hold_is_not_recorded_yet_waits() {
    let x = redis_hold();
    let out = merge(input(
        vec![],
        vec![pending(x, Change::Booked, 40, &["A1"], 101, true)],
        vec![],
        50,
    ));
    assert!(out.groups.is_empty(), "the hold's entries come first");
    // ... unless its hold's entries are lost: after ORPHAN_AFTER_MS it is recorded anyway.
    let out = merge(input(
        vec![],
        vec![pending(x, Change::Booked, 40, &["A1"], 101, true)],
        vec![],
        40 + ORPHAN_AFTER_MS + 1,
    ));
    assert_eq!(changes(&out), vec![(Change::Booked, vec!["A1"])]);
}

#[test]
fn a_later_hold_on_a_seat_records_the_expiry_of_the_one_before_it_first() {
    let y = redis_hold();
    let x = redis_hold();
    let open = merge(input(
        vec![held(y, 10, 100, &["A1", "A2"])],
        vec![],
        vec![],
        50,
    ))
    .open_upserts;
    // X takes A1 at 150 (Y ran out at 100) in a batch read before the clock was checked.
    let mut batch = input(vec![held(x, 150, 1000, &["A1"])], vec![], open, 160);
    batch.drained = false;
    let out = merge(batch);
    assert_eq!(
        changes(&out),
        vec![
            (Change::Expired, vec!["A1", "A2"]),
            (Change::Held, vec!["A1"])
        ]
    );
    assert_eq!(out.groups[0].at_ms, 100);
    assert_eq!(out.open_deletes, vec![y]);
}

#[test]
fn a_cancelled_seat_is_recorded_free_before_the_hold_that_takes_it_again() {
    let b = redis_hold();
    let x = redis_hold();
    let out = merge(input(
        vec![
            entry(b, 100, EntryKind::Cancelled),
            held(x, 110, 1000, &["A1"]),
        ],
        vec![pending(b, Change::Cancelled, 90, &["A1"], 201, true)],
        vec![],
        120,
    ));
    assert_eq!(
        changes(&out),
        vec![(Change::Cancelled, vec!["A1"]), (Change::Held, vec!["A1"])]
    );
}

#[test]
fn an_expired_hold_whose_booking_committed_without_its_marker_is_recorded_booked() {
    let x = redis_hold();
    let open = merge(input(vec![held(x, 10, 100, &["A1"])], vec![], vec![], 20)).open_upserts;
    let out = merge(input(
        vec![],
        vec![pending(x, Change::Booked, 60, &["A1"], 301, false)],
        open,
        200,
    ));
    assert_eq!(changes(&out), vec![(Change::Booked, vec!["A1"])]);
}

#[test]
fn an_extension_moves_the_end_and_is_recorded() {
    let x = redis_hold();
    let out = merge(input(
        vec![
            held(x, 10, 100, &["A1"]),
            entry(x, 50, EntryKind::Extended { expires_at_ms: 400 }),
        ],
        vec![],
        vec![],
        200,
    ));
    assert_eq!(
        changes(&out),
        vec![(Change::Held, vec!["A1"]), (Change::Extended, vec!["A1"])]
    );
    assert_eq!(out.groups[1].expires_at_ms, Some(400));
    assert_eq!(out.open_upserts[0].expires_at_ms, 400);
}

#[test]
fn a_dropped_hold_releases_its_seats_except_those_sold_elsewhere() {
    let x = redis_hold();
    let out = merge(input(
        vec![
            held(x, 10, 1000, &["A1", "A2"]),
            entry(
                x,
                20,
                EntryKind::Dropped {
                    taken: vec!["A2".into()],
                },
            ),
        ],
        vec![],
        vec![],
        30,
    ));
    let dropped = &out.groups[1];
    assert_eq!(dropped.change, Change::Released);
    assert_eq!(
        dropped.seats,
        vec![
            ("A1".into(), Status::Available),
            ("A2".into(), Status::Booked)
        ]
    );
}

#[test]
fn postgres_holds_follow_their_rows_and_the_postgres_clock() {
    let x = pg_hold();
    let out = merge(input(
        vec![],
        vec![pending(x, Change::Held, 10, &["A1"], 1, true)],
        vec![],
        20,
    ));
    assert_eq!(changes(&out), vec![(Change::Held, vec!["A1"])]);
    assert_eq!(out.groups[0].pending_ids, vec![1]);
    let open = out.open_upserts;
    assert_eq!(open[0].expires_at_ms, 1010);
    let mut later = input(vec![], vec![], open, 1010);
    later.drained = false;
    later.redis_clock_ms = None;
    assert_eq!(changes(&merge(later)), vec![(Change::Expired, vec!["A1"])]);
}

#[test]
fn a_cancel_waits_for_its_booking_and_rows_read_late_wait_for_their_marker() {
    let x = pg_hold();
    let out = merge(input(
        vec![],
        vec![
            pending(x, Change::Held, 10, &["A1"], 1, true),
            pending(x, Change::Booked, 20, &["A1"], 2, true),
            pending(x, Change::Cancelled, 30, &["A1"], 3, true),
            pending(redis_hold(), Change::Booked, 35, &["A9"], 4, false),
        ],
        vec![],
        40,
    ));
    assert_eq!(
        changes(&out),
        vec![
            (Change::Held, vec!["A1"]),
            (Change::Booked, vec!["A1"]),
            (Change::Cancelled, vec!["A1"])
        ]
    );
    assert!(out.open_upserts.is_empty() && out.open_deletes.is_empty());
}

#[test]
fn a_cancel_whose_marker_never_came_is_recorded_before_the_hold_that_takes_its_seat() {
    let b = redis_hold();
    let x = redis_hold();
    let out = merge(input(
        vec![held(x, 110, 1000, &["A1"])],
        vec![pending(b, Change::Cancelled, 90, &["A1"], 5, false)],
        vec![],
        120,
    ));
    assert_eq!(
        changes(&out),
        vec![(Change::Cancelled, vec!["A1"]), (Change::Held, vec!["A1"])]
    );
}

#[test]
fn an_unblock_is_recorded_before_the_hold_that_takes_the_seat() {
    let nil = HoldGroupId(uuid::Uuid::nil());
    let x = redis_hold();
    let out = merge(input(
        vec![held(x, 110, 1000, &["A1"])],
        vec![
            pending(nil, Change::Blocked, 50, &["A1"], 7, true),
            pending(nil, Change::Unblocked, 90, &["A1"], 8, false),
        ],
        vec![],
        120,
    ));
    assert_eq!(
        changes(&out),
        vec![
            (Change::Blocked, vec!["A1"]),
            (Change::Unblocked, vec!["A1"]),
            (Change::Held, vec!["A1"])
        ]
    );
}

#[path = "merge_clock_tests.rs"]
mod clock;
