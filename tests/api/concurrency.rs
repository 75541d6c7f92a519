//! Concurrency: one winner per seat in Redis, no partial holds, and the Postgres guard when two
//! Redis views disagree (as after Redis lost data between two holds).

use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use futures::future::join_all;
use sqlx::PgPool;

use crate::support::TestApp;

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn fifty_concurrent_holds_on_the_same_seats_give_exactly_one_winner(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(10).await;
    let tasks = (0..50).map(|i| {
        let router = app.router.clone();
        tokio::spawn(async move {
            let probe = TestAppRef(router);
            probe.reserve(id, &format!("user{i}"), &["S3", "S4"]).await
        })
    });
    let results: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let conflicts = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .count();
    assert_eq!((ok, conflicts), (1, 49), "{results:?}");
    for (status, body) in &results {
        if *status == StatusCode::CONFLICT {
            assert_eq!(body["seats"], serde_json::json!(["S3", "S4"]));
        }
    }
    assert_eq!(app.counts(id).await, (0, 2, 8));
}

/// A bare router handle that can move into a spawned task.
struct TestAppRef(axum::Router);

impl TestAppRef {
    async fn reserve(
        &self,
        event: i64,
        user: &str,
        seats: &[&str],
    ) -> (StatusCode, serde_json::Value) {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let body = serde_json::json!({"userId": user, "seatCodes": seats}).to_string();
        let req = axum::http::Request::post(format!("/events/{event}/seats/reserve"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .expect("request");
        let resp = self.0.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (status, serde_json::from_slice(&bytes).expect("json"))
    }
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn overlapping_multi_seat_holds_leave_no_partial_holds(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(8).await;
    // 60 users, each asking for 3 of 8 seats in a fixed pseudo-random pattern.
    let requests: Vec<Vec<String>> = (0..60u32)
        .map(|i| {
            let mut seats: Vec<String> = Vec::new();
            let mut x = i.wrapping_mul(2_654_435_761).rotate_left(7);
            while seats.len() < 3 {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let code = format!("S{}", (x >> 16) % 8 + 1);
                if !seats.contains(&code) {
                    seats.push(code);
                }
            }
            seats
        })
        .collect();
    let calls = requests.iter().enumerate().map(|(i, seats)| {
        let refs: Vec<&str> = seats.iter().map(String::as_str).collect();
        let app = &app;
        async move { (app.reserve(id, &format!("u{i}"), &refs).await, i) }
    });
    let results = join_all(calls).await;
    let winners: Vec<(usize, String)> = results
        .iter()
        .filter(|((s, _), _)| *s == StatusCode::OK)
        .map(|((_, body), i)| (*i, body["holdGroupId"].as_str().expect("id").to_string()))
        .collect();
    assert!(!winners.is_empty());
    // Winners are pairwise disjoint, and exactly their seats are held.
    let mut held: HashSet<String> = HashSet::new();
    for (i, _) in &winners {
        for code in &requests[*i] {
            assert!(held.insert(code.clone()), "seat {code} held twice");
        }
    }
    let statuses = app.seat_statuses(id).await;
    let shown: HashSet<String> = statuses
        .iter()
        .filter(|(_, s)| *s == "HELD")
        .map(|(c, _)| c.clone())
        .collect();
    assert_eq!(shown, held, "held seats must be exactly the winners' seats");
    // Every winner can confirm exactly its seats.
    for (i, hold) in &winners {
        let (status, body) = app.confirm(id, &format!("u{i}"), hold).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let mut want = requests[*i].clone();
        want.sort_by_key(|c| c[1..].parse::<u32>().unwrap_or(0));
        assert_eq!(body["seatCodes"], serde_json::json!(want));
    }
    let mut booked = app.booked_in_postgres(id).await;
    booked.sort();
    let mut expected: Vec<String> = held.into_iter().collect();
    expected.sort();
    assert_eq!(booked, expected);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn when_redis_forgot_a_hold_the_postgres_guard_lets_exactly_one_confirm_win(pg: PgPool) {
    // Two apps over one Postgres with separate Redis key spaces: each one's Redis knows nothing of
    // the other's holds, as after a wipe or failover between two holds of the same seat.
    let a = TestApp::new(pg.clone()).await;
    let b = TestApp::new(pg.clone()).await;
    let id = a.create_event(41).await;
    for round in 0..20 {
        let (s1, s2, s3) = (
            format!("S{}", 2 * round + 1),
            format!("S{}", 2 * round + 2),
            format!("S{}", 2 * round + 3),
        );
        let hold_a = a.hold(id, "alice", &[&s1, &s2]).await;
        let hold_b = b.hold(id, "bob", &[&s2, &s3]).await;
        let ((sa, ba), (sb, bb)) = tokio::join!(
            a.confirm(id, "alice", &hold_a),
            b.confirm(id, "bob", &hold_b)
        );
        let outcomes = [sa, sb];
        assert_eq!(
            outcomes.iter().filter(|s| **s == StatusCode::OK).count(),
            1,
            "round {round}: {ba} {bb}"
        );
        assert_eq!(
            outcomes
                .iter()
                .filter(|s| **s == StatusCode::CONFLICT)
                .count(),
            1,
            "round {round}: {ba} {bb}"
        );
        let loser = if sa == StatusCode::CONFLICT { &ba } else { &bb };
        assert_eq!(loser["code"], "SEATS_ALREADY_BOOKED");
        assert!(
            loser["seats"]
                .as_array()
                .is_some_and(|s| s.iter().any(|c| c == s2.as_str())),
            "{loser}"
        );
        // The loser's Redis learned the seat is booked: its next hold on it fails fast.
        let loser_app = if sa == StatusCode::CONFLICT { &a } else { &b };
        let (status, _) = loser_app.reserve(id, "carol", &[&s2]).await;
        assert_eq!(status, StatusCode::CONFLICT);
        // Clean the winner's surplus seat for the next round so rounds stay independent.
        let winner_hold = if sa == StatusCode::OK {
            &hold_a
        } else {
            &hold_b
        };
        let winner_user = if sa == StatusCode::OK { "alice" } else { "bob" };
        let (status, _) = a
            .post(
                &format!("/bookings/{winner_hold}/cancel"),
                serde_json::json!({"userId": winner_user}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    // Never two active bookings for one seat.
    let dupes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT seat_code FROM booking_seats WHERE active GROUP BY seat_code HAVING count(*) > 1) d",
    )
    .fetch_one(&pg)
    .await
    .expect("query");
    assert_eq!(dupes, 0);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_hammer_of_holds_and_confirms_from_two_redis_views_never_sells_a_seat_twice(pg: PgPool) {
    let views = [
        TestApp::new(pg.clone()).await,
        TestApp::new(pg.clone()).await,
    ];
    let id = views[0].create_event(12).await;
    let attempts = (0..120u32).map(|i| {
        let app = &views[(i % 2) as usize];
        let first = (i * 7) % 12 + 1;
        let second = (i * 5 + 3) % 12 + 1;
        async move {
            let user = format!("u{i}");
            let (s1, s2) = (format!("S{first}"), format!("S{second}"));
            let seats: Vec<&str> = if first == second {
                vec![&s1]
            } else {
                vec![&s1, &s2]
            };
            let (status, body) = app.reserve(id, &user, &seats).await;
            if status != StatusCode::OK {
                return None;
            }
            let hold = body["holdGroupId"].as_str().expect("id").to_string();
            let (status, body) = app.confirm(id, &user, &hold).await;
            assert!(
                status == StatusCode::OK || status == StatusCode::CONFLICT,
                "{status} {body}"
            );
            (status == StatusCode::OK).then(|| {
                let seats: Vec<String> = seats.iter().map(|s| s.to_string()).collect();
                (hold, seats)
            })
        }
    });
    let confirmed: Vec<(String, Vec<String>)> =
        join_all(attempts).await.into_iter().flatten().collect();
    // Every acknowledged booking is in Postgres with exactly its seats, and no seat twice.
    let rows: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT booking_group_id, seat_code FROM booking_seats WHERE active")
            .fetch_all(&pg)
            .await
            .expect("query");
    let mut by_booking: HashMap<String, Vec<String>> = HashMap::new();
    let mut seen = HashSet::new();
    for (booking, seat) in rows {
        assert!(seen.insert(seat.clone()), "seat {seat} sold twice");
        by_booking
            .entry(booking.to_string())
            .or_default()
            .push(seat);
    }
    assert_eq!(by_booking.len(), confirmed.len());
    for (hold, mut seats) in confirmed {
        let mut stored = by_booking
            .remove(&hold)
            .expect("acknowledged booking present");
        stored.sort();
        seats.sort();
        assert_eq!(stored, seats);
    }
}
