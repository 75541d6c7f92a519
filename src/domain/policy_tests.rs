//! Tests of the sales policy rules.
use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("a timestamp")
        .with_timezone(&Utc)
}

#[test]
fn a_window_opens_at_its_start_and_closes_at_its_end() {
    let w = SalesWindow {
        start: Some(at("2030-01-01T10:00:00Z")),
        end: Some(at("2030-01-01T12:00:00Z")),
    };
    let before = at("2030-01-01T09:59:59.999Z");
    assert_eq!(
        w.state(before),
        WindowState::NotOpen(w.start.expect("start"))
    );
    assert_eq!(w.state(at("2030-01-01T10:00:00Z")), WindowState::Open);
    assert_eq!(w.state(at("2030-01-01T11:59:59.999Z")), WindowState::Open);
    let end = at("2030-01-01T12:00:00Z");
    assert_eq!(w.state(end), WindowState::Closed(end));
    assert_eq!(SalesWindow::default().state(end), WindowState::Open);
}

#[test]
fn a_channel_takes_the_bounds_it_leaves_out_from_its_event() {
    let event = SalesWindow {
        start: Some(at("2030-01-02T10:00:00Z")),
        end: Some(at("2030-01-09T00:00:00Z")),
    };
    let presale = SalesWindow {
        start: Some(at("2030-01-01T10:00:00Z")),
        end: None,
    };
    let w = presale.within(event);
    assert_eq!(w.start, presale.start);
    assert_eq!(w.end, event.end);
}

#[test]
fn not_open_wins_over_closed_and_names_the_latest_opening() {
    let now = at("2030-01-05T00:00:00Z");
    let late = SalesWindow {
        start: Some(at("2030-01-07T00:00:00Z")),
        end: None,
    };
    let soon = SalesWindow {
        start: Some(at("2030-01-06T00:00:00Z")),
        end: None,
    };
    let closed = SalesWindow {
        start: None,
        end: Some(at("2030-01-01T00:00:00Z")),
    };
    assert_eq!(
        windows_verdict([soon, closed, late], now),
        WindowState::NotOpen(at("2030-01-07T00:00:00Z"))
    );
    assert_eq!(
        windows_verdict([closed, SalesWindow::default()], now),
        WindowState::Closed(at("2030-01-01T00:00:00Z"))
    );
    assert_eq!(windows_verdict([], now), WindowState::Open);
}

#[test]
fn a_patch_keeps_what_it_leaves_out_and_removes_what_it_nulls() {
    let policy = EventPolicy {
        window: SalesWindow {
            start: Some(at("2030-01-01T00:00:00Z")),
            end: Some(at("2030-02-01T00:00:00Z")),
        },
        queueit_event_id: Some("q1".into()),
    };
    let patch = EventPolicyPatch {
        sales_start: Some(None),
        ..Default::default()
    };
    let next = policy.patched(&patch).expect("valid");
    assert_eq!(next.window.start, None);
    assert_eq!(next.window.end, policy.window.end);
    assert_eq!(next.queueit_event_id.as_deref(), Some("q1"));
    let backwards = EventPolicyPatch {
        sales_start: Some(Some(at("2030-03-01T00:00:00Z"))),
        ..Default::default()
    };
    assert!(policy.patched(&backwards).is_err());
    let bad_id = EventPolicyPatch {
        queueit_event_id: Some(Some("has space".into())),
        ..Default::default()
    };
    assert!(policy.patched(&bad_id).is_err());
}

#[test]
fn a_plain_event_has_no_policy_fields() {
    assert!(PolicySnapshot::default().script_fields().is_empty());
    let snapshot = PolicySnapshot {
        policy: EventPolicy {
            window: SalesWindow {
                start: Some(at("1970-01-01T00:00:01Z")),
                end: None,
            },
            queueit_event_id: Some("q".into()),
        },
        channels: vec![(
            "pre".into(),
            SalesWindow {
                start: None,
                end: Some(at("1970-01-01T00:00:02Z")),
            },
        )],
        seats: vec![("A1".into(), "pre".into())],
        tiers: vec![
            ("pre".into(), "GA".into(), 4),
            ("vip".into(), "GA".into(), 2),
            ("pre".into(), "VIP".into(), 1),
        ],
        version: 3,
    };
    let fields = snapshot.script_fields();
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("s", "1000"),
            ("e:pre", "2000"),
            ("c", "1"),
            ("ta:GA", "pre=4,vip=2"),
            ("ta:VIP", "pre=1"),
            ("q", "q")
        ]
    );
}

#[test]
fn the_script_reads_channels_between_commas() {
    let caller = HoldCaller {
        channels: vec!["presale".to_string(), "vip".to_string()],
        ..HoldCaller::default()
    };
    assert_eq!(caller.script_channels(), ",presale,vip,");
    assert_eq!(HoldCaller::default().script_channels(), ",");
    let office = HoldCaller::box_office();
    assert_eq!(office.script_channels(), "*");
    assert!(caller.may_hold(Some("vip")) && caller.may_hold(None));
    assert!(!caller.may_hold(Some("partner")) && office.may_hold(Some("partner")));
}

#[test]
fn a_queueit_token_names_the_events_queueit_id_or_else_its_id() {
    assert!(queueit_names("flash-2030", Some("flash-2030"), 7));
    assert!(!queueit_names("7", Some("flash-2030"), 7));
    assert!(queueit_names("7", None, 7));
    assert!(!queueit_names("8", None, 7));
}
