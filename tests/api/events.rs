//! Events and seat maps.

use axum::http::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::support::TestApp;

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn creating_an_event_returns_201_and_numbers_its_seats(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(3).await;
    let e = app.event(id).await;
    assert_eq!(e["id"], id);
    assert_eq!(e["name"], "Test gig");
    assert_eq!(e["date"], "2030-01-10T18:00:00Z");
    assert_eq!(e["location"], "Hall");
    assert_eq!(e["totalSeats"], 3);
    assert_eq!(
        (
            e["confirmedSeats"].as_i64(),
            e["heldSeats"].as_i64(),
            e["availableSeats"].as_i64()
        ),
        (Some(0), Some(0), Some(3))
    );
    let seats = app.seat_statuses(id).await;
    assert_eq!(seats.len(), 3);
    assert!(["S1", "S2", "S3"].iter().all(|c| seats[*c] == "AVAILABLE"));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn listed_seats_keep_their_order_types_and_prices(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let (status, body) = app
        .post(
            "/events",
            json!({"name": "Opera", "date": "2030-05-01T19:30:00+02:00", "location": "House",
                   "seats": [{"code": "VIP-1", "type": "VIP", "price": 150.5}, {"code": "A-1"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["eventId"].as_i64().expect("id");
    let (_, map) = app.get(&format!("/events/{id}/seats")).await;
    assert_eq!(map["eventId"], id);
    assert_eq!(
        map["seats"],
        json!([
            {"code": "VIP-1", "type": "VIP", "price": 150.5, "status": "AVAILABLE", "secondsRemaining": null,
             "row": null, "number": null},
            {"code": "A-1", "type": "STANDARD", "price": 0.0, "status": "AVAILABLE", "secondsRemaining": null,
             "row": null, "number": null}
        ])
    );
    assert_eq!(app.event(id).await["date"], "2030-05-01T17:30:00Z");
}

/// A house bigger than one insert statement (10,000 seats each): every seat is stored, in the
/// order it was created (rows first, then the seats listed one by one).
#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn a_big_house_keeps_every_seat_in_creation_order(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let rows: Vec<_> = (1..=230)
        .map(|r| json!({"name": format!("R{r}-"), "seats": 100}))
        .collect();
    let (status, body) = app
        .post(
            "/events",
            json!({"name": "Arena", "date": "2030-05-01T19:30:00Z", "location": "Hall",
                   "rows": rows, "seats": [{"code": "BOX-1", "type": "VIP"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["eventId"].as_i64().expect("id");
    let (_, map) = app.get(&format!("/events/{id}/seats")).await;
    let codes: Vec<&str> = map["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .map(|s| s["code"].as_str().expect("code"))
        .collect();
    let want: Vec<String> = (1..=230)
        .flat_map(|r| (1..=100).map(move |n| format!("R{r}-{n}")))
        .chain(["BOX-1".to_string()])
        .collect();
    assert_eq!(codes, want);
    assert_eq!(app.event(id).await["totalSeats"], 23_001);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn invalid_events_are_refused_with_400_and_nothing_is_stored(pg: PgPool) {
    let app = TestApp::new(pg.clone()).await;
    let base =
        json!({"name": "Gig", "date": "2030-01-10T18:00:00Z", "location": "Hall", "totalSeats": 5});
    let variants = [
        ("name", json!("   ")),
        ("date", json!("next friday")),
        ("totalSeats", json!(0)),
        ("totalSeats", json!(100_001)),
        ("totalSeats", json!("ten")),
        (
            "seats",
            json!([{"code": "A"}, {"code": "B"}, {"code": "A"}]),
        ),
        ("seats", json!([])),
    ];
    for (field, value) in variants {
        let mut body = base.clone();
        body[field] = value.clone();
        if field == "seats" {
            body.as_object_mut().expect("object").remove("totalSeats");
        }
        let (status, resp) = app.post("/events", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}={value}: {resp}");
        assert_eq!(resp["code"], "VALIDATION_FAILED", "{resp}");
        assert!(resp["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let (status, resp) = app
        .post(
            "/events",
            json!({"date": "2030-01-10T18:00:00Z", "totalSeats": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        resp["error"]
            .as_str()
            .expect("error")
            .contains("name is required"),
        "{resp}"
    );
    // A field of the wrong type is named by its path, in the API's words.
    let mut body = base.clone();
    body["seats"] = json!([5]);
    let (status, resp) = app.post("/events", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        resp["error"], "seats[0]: invalid type: integer `5`, expected an object",
        "{resp}"
    );
    let (status, _, raw) = app
        .call_raw("POST", "/events", Some("{\"name\":".into()), &[])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let resp: serde_json::Value = serde_json::from_slice(&raw).expect("JSON error body");
    assert_eq!(resp["code"], "INVALID_JSON");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pg)
        .await
        .expect("count");
    assert_eq!(events, 0);
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn the_event_list_shows_events_newest_first(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let first = app.create_event(1).await;
    let second = app.create_event(2).await;
    let (status, list) = app.get("/events").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<i64> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, vec![second, first]);
    assert_eq!(list[0]["totalSeats"], 2);
    let (_, page) = app.get("/events?limit=1&offset=1").await;
    assert_eq!(page.as_array().map(Vec::len), Some(1));
    assert_eq!(page[0]["id"], first);
    for bad in ["limit=-3", "limit=0", "limit=1001", "offset=x"] {
        let (status, body) = app.get(&format!("/events?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn unknown_events_are_404(pg: PgPool) {
    let app = TestApp::new(pg).await;
    for path in [
        "/events/999",
        "/events/abc",
        "/events/999/seats",
        "/events/0",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["code"], "EVENT_NOT_FOUND", "{path}: {body}");
    }
    let (status, body) = app.reserve(999, "u1", &["S1"]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "EVENT_NOT_FOUND");
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn the_seat_map_shows_held_and_booked_seats_with_time_left(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let id = app.create_event(4).await;
    let booked = app.hold(id, "u1", &["S1"]).await;
    assert_eq!(app.confirm(id, "u1", &booked).await.0, StatusCode::OK);
    app.hold(id, "u2", &["S2", "S3"]).await;
    let (_, map) = app.get(&format!("/events/{id}/seats")).await;
    let seats = map["seats"].as_array().expect("seats");
    assert_eq!(seats[0]["status"], "BOOKED");
    assert_eq!(seats[0]["secondsRemaining"], json!(null));
    for held in &seats[1..3] {
        assert_eq!(held["status"], "HELD");
        let left = held["secondsRemaining"].as_i64().expect("secondsRemaining");
        assert!((299..=300).contains(&left), "{left}");
    }
    assert_eq!(seats[3]["status"], "AVAILABLE");
    assert_eq!(app.counts(id).await, (1, 2, 1));
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn unknown_routes_and_methods_answer_json(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let (status, body) = app.get("/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "NOT_FOUND");
    let (status, body) = app.call("DELETE", "/events", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
    // The hold route too (its stack is a handler of its own, see `reserve_lane`).
    let (status, body) = app.get("/events/1/seats/reserve").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
    let (status, body) = app.get("/healthz").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["redis"], "up");
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn dates_are_answered_as_they_are_accepted_within_years_1_to_9999(pg: PgPool) {
    let app = TestApp::new(pg).await;
    let create =
        |date: &str| json!({"name": "Gig", "date": date, "location": "Hall", "totalSeats": 1});
    for date in ["9999-12-31T23:30:00-01:00", "0000-01-01T00:30:00+01:00"] {
        let (status, body) = app.post("/events", create(date)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{date}: {body}");
    }
    let (status, body) = app
        .post("/events", create("9999-12-31T22:30:00-01:00"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let event = app.event(body["eventId"].as_i64().expect("id")).await;
    assert_eq!(event["date"], "9999-12-31T23:30:00Z");
}
