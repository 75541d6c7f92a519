//! Tests of the new-event rules and an event's counts.
use super::*;

const LIMITS: EventLimits = EventLimits {
    max_seats: 10,
    max_tiers: 3,
    max_tier_capacity: 100,
};

fn event(date: &str, total_seats: Option<i64>, seats: Option<Vec<RawSeat>>) -> RawEvent {
    RawEvent {
        name: "Gig".into(),
        date: date.into(),
        location: "Hall".into(),
        total_seats,
        seats,
        rows: None,
        tiers: None,
        ..RawEvent::default()
    }
}

#[test]
fn rows_become_seats_numbered_from_one_before_listed_seats() {
    let mut raw = event("2030-01-10T18:00:00Z", None, None);
    raw.rows = Some(vec![
        RawRow {
            name: "A".into(),
            seats: Some(3),
            price: Some(10.0),
            ..RawRow::default()
        },
        RawRow {
            name: "B".into(),
            seats: Some(2),
            ..RawRow::default()
        },
    ]);
    raw.seats = Some(vec![RawSeat {
        code: "BOX1".into(),
        ..RawSeat::default()
    }]);
    let e = validate_new_event(raw.clone(), LIMITS).expect("valid");
    let Seats::Listed(list) = e.seats else {
        panic!("listed")
    };
    let codes: Vec<&str> = list.iter().map(|s| s.code.as_str()).collect();
    assert_eq!(codes, ["A1", "A2", "A3", "B1", "B2", "BOX1"]);
    assert_eq!(
        (list[2].row.as_deref(), list[2].number, list[2].price_cents),
        (Some("A"), Some(3), 1000)
    );
    raw.rows = Some(vec![RawRow {
        name: "C D".into(),
        seats: Some(2),
        ..RawRow::default()
    }]);
    assert!(
        validate_new_event(raw.clone(), LIMITS).is_err(),
        "whitespace"
    );
    raw.rows = Some(vec![RawRow {
        name: "C".into(),
        seats: Some(11),
        ..RawRow::default()
    }]);
    assert!(
        validate_new_event(raw, LIMITS).is_err(),
        "over events.max_seats"
    );
}

#[test]
fn an_event_needs_seats_or_tiers_and_may_have_both() {
    let tier = |code: &str| RawTier {
        code: code.into(),
        capacity: Some(50),
        ..RawTier::default()
    };
    let mut raw = event("2030-01-10T18:00:00Z", None, None);
    assert!(validate_new_event(raw.clone(), LIMITS).is_err());
    raw.tiers = Some(vec![tier("FLOOR")]);
    let only_tiers = validate_new_event(raw.clone(), LIMITS).expect("tiers only");
    assert_eq!((only_tiers.seats.count(), only_tiers.tiers.len()), (0, 1));
    raw.total_seats = Some(4);
    let both = validate_new_event(raw.clone(), LIMITS).expect("both");
    assert_eq!((both.seats.count(), both.tiers.len()), (4, 1));
    raw.tiers = Some(vec![tier("A"), tier("B"), tier("C"), tier("D")]);
    assert!(
        validate_new_event(raw, LIMITS).is_err(),
        "more than max_tiers"
    );
}

#[test]
fn numbered_event_within_limits_is_accepted() {
    let e =
        validate_new_event(event("2030-01-10T18:00:00Z", Some(5), None), LIMITS).expect("valid");
    assert_eq!(e.seats.count(), 5);
}

#[test]
fn dates_stay_within_years_1_to_9999_in_utc() {
    let check = |date| validate_new_event(event(date, Some(1), None), LIMITS);
    assert!(check("9999-12-31T22:30:00-01:00").is_ok());
    assert!(check("9999-12-31T23:30:00-01:00").is_err());
    assert!(check("0000-01-01T00:30:00+01:00").is_err());
    assert!(check("0001-01-01T00:00:00Z").is_ok());
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut raw = event("yesterday", Some(0), None);
    raw.name = " ".into();
    let err = validate_new_event(raw, LIMITS).expect_err("invalid");
    assert_eq!(err.len(), 3, "{err:?}");
}

#[test]
fn duplicate_seat_codes_are_refused() {
    let seats = ["A1", "A2", "A1"]
        .iter()
        .map(|c| RawSeat {
            code: c.to_string(),
            seat_type: None,
            price: None,
            ..RawSeat::default()
        })
        .collect();
    let err = validate_new_event(event("2030-01-10T18:00:00Z", None, Some(seats)), LIMITS)
        .expect_err("duplicates");
    assert!(err[0].contains("A1"), "{err:?}");
}

#[test]
fn prices_are_kept_in_cents() {
    let seats = vec![RawSeat {
        code: "V1".into(),
        seat_type: Some("VIP".into()),
        price: Some(99.99),
        row: Some("B".into()),
        number: Some(7),
    }];
    let e = validate_new_event(
        event("2030-01-10T18:00:00+02:00", None, Some(seats)),
        LIMITS,
    )
    .expect("valid");
    let Seats::Listed(list) = e.seats else {
        panic!("listed")
    };
    assert_eq!(list[0].price_cents, 9999);
    assert_eq!(
        (list[0].row.as_deref(), list[0].number),
        (Some("B"), Some(7))
    );
    let bad = |row: Option<&str>, number: Option<i64>| {
        let seat = RawSeat {
            code: "X".into(),
            row: row.map(str::to_string),
            number,
            ..RawSeat::default()
        };
        validate_new_event(
            event("2030-01-10T18:00:00Z", None, Some(vec![seat])),
            LIMITS,
        )
        .is_err()
    };
    assert!(bad(Some(" "), Some(1)));
    assert!(bad(Some("B 2"), Some(1)), "no whitespace in a row name");
    assert!(bad(Some(&"R".repeat(17)), Some(1)));
    assert!(bad(Some("A"), Some(0)));
    assert!(bad(Some("A"), None), "a row needs a number");
    assert!(bad(None, Some(3)), "a number needs a row");
    assert!(!bad(Some("AA"), Some(100_000)));
}

#[test]
fn available_seats_never_go_negative() {
    let event = Event {
        id: EventId(1),
        name: "Gig".into(),
        starts_at: DateTime::<Utc>::MIN_UTC,
        location: "Hall".into(),
        total_seats: 10,
        policy: EventPolicy::default(),
    };
    let summary = |confirmed_seats, held_seats, blocked_seats| EventSummary {
        event: event.clone(),
        confirmed_seats,
        held_seats,
        blocked_seats,
        has_channels: false,
        tiers: vec![],
    };
    assert_eq!(summary(3, 2, 0).available_seats(), 5);
    assert_eq!(summary(3, 2, 1).available_seats(), 4);
    assert_eq!(summary(8, 4, 0).available_seats(), 0);
}
