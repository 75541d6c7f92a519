//! Load on the live seat map: SUBSCRIBERS streams of one event while a hold storm runs, and the
//! lag from each hold (its request sent) to each subscriber receiving the update that shows the
//! seat held. Run by `bench/stream.sh`, which starts the service; usage:
//!
//! ```text
//! stream_load HOST:PORT EVENT_ID SEATS SUBSCRIBERS HOLDS HOLDS_PER_SECOND
//! ```
//!
//! Prints one JSON line: subscribers connected, holds sent and taken, lag samples and their
//! p50/p90/p99/max in milliseconds, updates received, and snapshots resent (a subscriber that
//! fell behind). Plain HTTP/1.1 over tokio TCP (chunked transfer decoding included), so the
//! client costs little next to the service.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

type Sent = Arc<Mutex<HashMap<String, Instant>>>;

/// What one subscriber saw: per seat, when it first saw it HELD; updates and resends.
#[derive(Default)]
struct Seen {
    held_at: HashMap<String, Instant>,
    updates: u64,
    snapshots: u64,
}

async fn read_line(reader: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Err(std::io::Error::other("closed"));
    }
    Ok(line)
}

/// Opens one stream and reads it until `stop`, noting when each seat was first seen held.
async fn subscribe(addr: String, event: i64, stop: Instant) -> std::io::Result<Seen> {
    let mut conn = TcpStream::connect(&addr).await?;
    let head = format!(
        "GET /events/{event}/stream HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await?;
    let mut reader = BufReader::new(conn);
    let status = read_line(&mut reader).await?;
    if !status.contains(" 200 ") {
        return Err(std::io::Error::other(format!("stream answered {status}")));
    }
    while read_line(&mut reader).await? != "\r\n" {}
    let mut seen = Seen::default();
    let mut text = String::new();
    loop {
        let left = stop.saturating_duration_since(Instant::now());
        let size = match tokio::time::timeout(left, read_line(&mut reader)).await {
            Ok(line) => usize::from_str_radix(line?.trim(), 16).unwrap_or(0),
            Err(_) => return Ok(seen),
        };
        if size == 0 {
            return Ok(seen);
        }
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).await?;
        text.push_str(&String::from_utf8_lossy(&chunk[..size]));
        let now = Instant::now();
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let name = block
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map(str::trim);
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .collect();
            match name {
                Some("snapshot") => seen.snapshots += 1,
                Some("update") => seen.updates += 1,
                _ => continue,
            }
            let Ok(data) = serde_json::from_str::<Value>(&data) else {
                continue;
            };
            for seat in data["seats"].as_array().into_iter().flatten() {
                if seat["status"] == "HELD"
                    && let Some(code) = seat["code"].as_str()
                {
                    seen.held_at.entry(code.to_string()).or_insert(now);
                }
            }
        }
    }
}

/// Sends `holds` one-seat holds at `rate` per second over a few keep-alive connections; notes
/// when each request was sent. Returns how many were taken (200).
async fn storm(addr: String, event: i64, holds: usize, rate: f64, sent: Sent) -> usize {
    let workers = 8;
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (addr, sent) = (addr.clone(), sent.clone());
            tokio::spawn(async move {
                let Ok(conn) = TcpStream::connect(&addr).await else {
                    return 0;
                };
                let mut reader = BufReader::new(conn);
                let started = Instant::now();
                let mut taken = 0;
                for i in (w..holds).step_by(workers) {
                    let due = started + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                    let code = format!("S{}", i + 1);
                    let body = format!(r#"{{"userId":"storm{i}","seatCodes":["{code}"]}}"#);
                    let request = format!(
                        "POST /events/{event}/seats/reserve HTTP/1.1\r\nHost: {addr}\r\n\
                         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    sent.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(code, Instant::now());
                    if reader
                        .get_mut()
                        .write_all(request.as_bytes())
                        .await
                        .is_err()
                    {
                        break;
                    }
                    let Ok(status) = read_line(&mut reader).await else {
                        break;
                    };
                    let mut length = 0;
                    loop {
                        let Ok(line) = read_line(&mut reader).await else {
                            return taken;
                        };
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).await.is_err() {
                        break;
                    }
                    if status.contains(" 200 ") {
                        taken += 1;
                    }
                }
                taken
            })
        })
        .collect();
    let mut taken = 0;
    for task in tasks {
        taken += task.await.unwrap_or(0);
    }
    taken
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 7,
        "usage: stream_load HOST:PORT EVENT_ID SEATS SUBSCRIBERS HOLDS HOLDS_PER_SECOND"
    );
    let addr = args[1].clone();
    let event: i64 = args[2].parse()?;
    let seats: usize = args[3].parse()?;
    let subscribers: usize = args[4].parse()?;
    let holds: usize = args[5].parse::<usize>()?.min(seats);
    let rate: f64 = args[6].parse()?;
    let storm_time = Duration::from_secs_f64(holds as f64 / rate);
    let stop = Instant::now() + Duration::from_secs(10) + storm_time + Duration::from_secs(3);

    let readers: Vec<_> = (0..subscribers)
        .map(|_| tokio::spawn(subscribe(addr.clone(), event, stop)))
        .collect();
    // Let every stream connect and take its snapshot before the storm.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let sent: Sent = Arc::default();
    let taken = storm(addr.clone(), event, holds, rate, sent.clone()).await;
    let mut lags = Vec::new();
    let (mut connected, mut updates, mut snapshots) = (0, 0, 0);
    let mut missed = 0u64;
    for reader in readers {
        let Ok(Ok(seen)) = reader.await else {
            continue;
        };
        connected += 1;
        updates += seen.updates;
        snapshots += seen.snapshots;
        let sent = sent.lock().unwrap_or_else(|e| e.into_inner());
        for (code, at) in sent.iter() {
            match seen.held_at.get(code) {
                Some(got) => lags.push(got.saturating_duration_since(*at).as_secs_f64() * 1000.0),
                None => missed += 1,
            }
        }
    }
    lags.sort_by(f64::total_cmp);
    let result = serde_json::json!({
        "subscribers": subscribers,
        "connected": connected,
        "holds_sent": holds,
        "holds_taken": taken,
        "samples": lags.len(),
        "missed": missed,
        "updates": updates,
        "snapshots": snapshots,
        "lag_ms": {
            "p50": percentile(&lags, 50.0),
            "p90": percentile(&lags, 90.0),
            "p99": percentile(&lags, 99.0),
            "max": lags.last().copied().unwrap_or(f64::NAN),
        },
    });
    println!("{result}");
    Ok(())
}
