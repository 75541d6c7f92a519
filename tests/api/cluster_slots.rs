//! Redis Cluster: an event's slot moved to another master under load (resharding). While the
//! keys move, scripts meet `ASK` and `TRYAGAIN`; afterwards `MOVED`. The client follows the
//! redirects and refreshes its slot map; a call that still fails goes to the Postgres fallback.
//! Checked: no seat sold twice, every acknowledged booking in Postgres, holds taken in Redis on
//! the new master after the move, and no request failing from 2 s after the move (an instance
//! whose breaker opened during the move probes Redis again after `breaker.open_seconds`, 1 s here).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::PgPool;

use crate::cluster::{History, RedisCluster, assert_sold_once_and_kept, client, post, redis_cli};
use crate::support::{Outcome, Seatlock};

/// Node id and port of every master, from `CLUSTER NODES` asked of `port`.
fn masters(port: u16) -> Vec<(String, u16)> {
    redis_cli(port, &["cluster", "nodes"])
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 || !f[2].contains("master") || f[2].contains("fail") {
                return None;
            }
            let port = f[1].split(['@', ':']).nth(1)?.parse().ok()?;
            Some((f[0].to_string(), port))
        })
        .collect()
}

/// Moves `slot` from the master on `from` to the one on `to`, the way `redis-cli --cluster
/// reshard` does: IMPORTING / MIGRATING, MIGRATE of the keys in batches, then the new owner
/// announced to every master. Returns how many keys moved.
fn move_slot(slot: u32, from: u16, to: u16) -> usize {
    let ids: HashMap<u16, String> = masters(from)
        .into_iter()
        .map(|(id, port)| (port, id))
        .collect();
    let (from_id, to_id) = (ids[&from].clone(), ids[&to].clone());
    let slot_s = slot.to_string();
    let ok = |out: String| assert!(out.trim() == "OK", "{out}");
    ok(redis_cli(
        to,
        &["cluster", "setslot", &slot_s, "importing", &from_id],
    ));
    ok(redis_cli(
        from,
        &["cluster", "setslot", &slot_s, "migrating", &to_id],
    ));
    let mut moved = 0;
    loop {
        let keys = redis_cli(from, &["cluster", "getkeysinslot", &slot_s, "2"]);
        let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
        if keys.is_empty() {
            break;
        }
        let to_port = to.to_string();
        let mut args = vec!["migrate", "127.0.0.1", &to_port, "", "0", "5000", "KEYS"];
        args.extend(keys.iter().copied());
        let out = redis_cli(from, &args);
        assert!(
            out.trim() == "OK" || out.contains("NOKEY"),
            "MIGRATE: {out}"
        );
        moved += keys.len();
        // Let the load run between batches, so requests meet a half-moved slot.
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(redis_cli(
        to,
        &["cluster", "setslot", &slot_s, "node", &to_id],
    ));
    ok(redis_cli(
        from,
        &["cluster", "setslot", &slot_s, "node", &to_id],
    ));
    for (_, port) in masters(to) {
        if port != from && port != to {
            redis_cli(port, &["cluster", "setslot", &slot_s, "node", &to_id]);
        }
    }
    moved
}

#[sqlx::test]
async fn an_events_slot_moved_to_another_master_under_load_sells_no_seat_twice(pg: PgPool) {
    let cluster = RedisCluster::start();
    let env = cluster.instance_env(&pg, "reshard");
    let instances: Vec<Seatlock> = (0..3).map(|_| Seatlock::start(&env)).collect();
    let ports: Vec<u16> = instances.iter().map(|s| s.port).collect();
    let body = json!({"name": "Reshard", "date": "2030-01-10T18:00:00Z", "location": "Hall", "totalSeats": 60});
    let Outcome::Status(201, b) = post(ports[0], "/events", &body, None).await else {
        panic!("event not created");
    };
    let event = b["eventId"].as_i64().expect("eventId");
    let key = format!("reshard:{{e:{event}}}:seats");
    let from = cluster.master_of(&key, None);
    let slot: u32 = redis_cli(from, &["cluster", "keyslot", &key])
        .trim()
        .parse()
        .expect("slot");
    let to = masters(from)
        .into_iter()
        .map(|(_, p)| p)
        .find(|p| *p != from)
        .expect("another master");

    // Holds left standing on seats the clients never ask for (S41..S59): they move with the slot
    // and must be confirmable on the new master.
    let mut parked = Vec::new();
    for i in 41..60 {
        let body = json!({"userId": format!("parked{i}"), "seatCodes": [format!("S{i}")]});
        let path = format!("/events/{event}/seats/reserve");
        let Outcome::Status(200, b) = post(ports[i % 3], &path, &body, None).await else {
            panic!("parked hold S{i} not taken");
        };
        parked.push((i, b["holdGroupId"].as_str().expect("hold").to_string()));
    }
    let history = Arc::new(Mutex::new(History::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|i| {
            tokio::spawn(client(
                i,
                event,
                ports.clone(),
                stop.clone(),
                history.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let moved = tokio::task::spawn_blocking(move || move_slot(slot, from, to))
        .await
        .expect("move");
    let move_took = started.elapsed();
    let done_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client");
    }
    assert_eq!(cluster.master_of(&key, None), to, "the slot did not move");
    assert!(moved > 0, "no key moved");

    // The holds that moved with the slot are confirmed on the new master.
    let mut parked_confirmed = 0;
    for (i, hold) in &parked {
        let body = json!({"userId": format!("parked{i}"), "holdGroupId": hold});
        let path = format!("/events/{event}/seats/confirm");
        // A client retries a 503 (it comes with Retry-After): an instance whose breaker opened
        // during the move cannot check a Redis hold until its next probe.
        let mut outcome = post(ports[(i + 1) % 3], &path, &body, None).await;
        for _ in 0..20 {
            if !matches!(outcome, Outcome::Status(503, _)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            outcome = post(ports[(i + 1) % 3], &path, &body, None).await;
        }
        assert!(
            matches!(outcome, Outcome::Status(200, _)),
            "parked hold S{i} after the move: {outcome:?}"
        );
        parked_confirmed += 1;
    }
    // A hold now is taken in Redis, on the new master.
    let hold = json!({"userId": "after", "seatCodes": ["S60"]});
    let Outcome::Status(200, b) = post(
        ports[1],
        &format!("/events/{event}/seats/reserve"),
        &hold,
        None,
    )
    .await
    else {
        panic!("no hold after the move");
    };
    let id: uuid::Uuid = b["holdGroupId"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    assert_eq!(
        id.as_bytes()[6] & 1,
        0,
        "the hold after the move was not taken in Redis"
    );

    let confirmed = history
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .confirmed
        .clone();
    assert_sold_once_and_kept(&pg, event, &confirmed).await;
    let h = history.lock().unwrap_or_else(|e| e.into_inner());
    let failed = |c: &&crate::cluster::Call| !matches!(c.status, Some(s) if s < 500);
    let during = h
        .calls
        .iter()
        .filter(|c| c.at >= started && c.at < done_at)
        .count();
    let failed_during = h
        .calls
        .iter()
        .filter(|c| c.at >= started && c.at < done_at)
        .filter(failed)
        .count();
    let failed_after: Vec<_> = h
        .calls
        .iter()
        .filter(|c| c.at >= done_at + Duration::from_secs(2))
        .filter(failed)
        .collect();
    eprintln!(
        "slot {slot} moved from :{from} to :{to}: {moved} keys in {move_took:?}; {during} calls during the move, {failed_during} failed; {} bookings acknowledged; {parked_confirmed} holds taken before the move confirmed after it",
        h.confirmed.len()
    );
    assert!(
        failed_after.is_empty(),
        "requests failing after the move: {failed_after:?}"
    );
    drop(instances);
}
