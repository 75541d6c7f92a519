//! The reference of `bench/run.sh`: the least an axum + Redis hold handler can do, to measure
//! seatlock's hot path against on the same machine in the same run. `POST
//! /events/{id}/seats/reserve` parses the JSON body (`userId`, `seatCodes`), runs one EVALSHA of
//! a script that checks every seat with EXISTS and, if all are free, SETs them with PX, and
//! answers JSON: 200 `{holdGroupId, seatCodes}` or 409 `{code, seats}`. No validation, no
//! metrics, no logs, no rate limits, no idempotency, no inventory (an unknown seat is free), no
//! hold record. `GET /healthz` answers `{"status":"ok"}`.
//!
//! With `REFERENCE=floor` it is instead the least a handler can do that keeps seatlock's contract
//! for a hold of named seats (the cost table's `floor` row, `bench/costs.sh`): the same
//! handler, no middleware, and one EVALSHA of [`FLOOR`], which refuses seats held by another
//! hold (MGET of the seat keys), unknown seats (SMISMEMBER of `{e}:seats`, 404) and booked ones
//! (SMISMEMBER of `{e}:booked`), then takes the seats (SET NX PX), writes the hold record a
//! confirm, a release and an extension read (HSET + PEXPIRE) and indexes the seats by expiry (ZADD
//! of `{e}:held`, which the seat map and the history's expiries read); it answers seatlock's
//! body (`holdGroupId`, `expiresIn`, `expiresAt`, `seatCodes`, `tiers`). What it leaves out is
//! seatlock's per-request service: request id, span and `traceparent`, deadline, metrics, the
//! auth gate, the idempotency layer, input validation, the policy and rows check, caps, rate,
//! history, the change feed and the trim of expired index entries. The inventory is the
//! caller's to load (`SADD {e}:seats ...`); a hold lasts `FLOOR_TTL_SECONDS` (300 by default).
//!
//! ```text
//! PORT=18080 REDIS_URL=redis://127.0.0.1:6379 KEY_PREFIX=ref cargo run --release --example bench_reference
//! ```

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

const SCRIPT: &str = r"
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    return i
  end
end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
end
return 0
";

/// `REFERENCE=floor`: KEYS[1] `{e}:seats`; ARGV hold id, user, TTL ms, seat codes. Replies
/// `{0, expiry ms}` (taken), `{1, seats}` (held or booked: 409), `{2, seats}` (unknown: 404).
const FLOOR: &str = r"
local base = string.sub(KEYS[1], 1, -6)
local codes = {unpack(ARGV, 4)}
local keys = {}
for i = 1, #codes do
  keys[i] = base .. 'seat:' .. codes[i]
end
local holders = redis.call('MGET', unpack(keys))
local taken = {}
for i = 1, #codes do
  if holders[i] then
    taken[#taken + 1] = codes[i]
  end
end
if #taken > 0 then
  return {1, taken}
end
local known = redis.call('SMISMEMBER', KEYS[1], unpack(codes))
local unknown = {}
for i = 1, #codes do
  if known[i] == 0 then
    unknown[#unknown + 1] = codes[i]
  end
end
if #unknown > 0 then
  return {2, unknown}
end
local sold = redis.call('SMISMEMBER', base .. 'booked', unpack(codes))
for i = 1, #codes do
  if sold[i] == 1 then
    taken[#taken + 1] = codes[i]
  end
end
if #taken > 0 then
  return {1, taken}
end
local t = redis.call('TIME')
local ttl = tonumber(ARGV[3])
local exp = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + ttl
local scored = {}
for i = 1, #codes do
  redis.call('SET', keys[i], ARGV[1], 'NX', 'PX', ttl)
  scored[2 * i - 1] = exp
  scored[2 * i] = codes[i]
end
local hold = base .. 'hold:' .. ARGV[1]
redis.call('HSET', hold, 'user', ARGV[2], 'exp', exp, 'seats', table.concat(codes, '\n'))
redis.call('PEXPIRE', hold, ttl)
redis.call('ZADD', base .. 'held', unpack(scored))
return {0, exp}
";

/// The hold's TTL: 300 s; in floor mode `FLOOR_TTL_SECONDS` when set (a name of its own, so a
/// `TTL_SECONDS` a bench script exports for seatlock never changes the bare reference).
const TTL_MS: i64 = 300_000;

#[derive(Clone)]
struct Reference {
    conn: redis::aio::MultiplexedConnection,
    script: Arc<redis::Script>,
    prefix: Arc<str>,
    ttl_ms: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reserve {
    user_id: String,
    seat_codes: Vec<String>,
}

async fn reserve(
    State(r): State<Reference>,
    Path(event): Path<i64>,
    Json(body): Json<Reserve>,
) -> (StatusCode, Json<Value>) {
    let id = uuid::Uuid::new_v4();
    let mut call = r.script.prepare_invoke();
    for code in &body.seat_codes {
        call.key(format!("{}:{{e:{event}}}:seat:{code}", r.prefix));
    }
    call.arg(id.to_string()).arg(r.ttl_ms);
    let mut conn = r.conn.clone();
    match call.invoke_async::<i64>(&mut conn).await {
        Ok(0) => (
            StatusCode::OK,
            Json(json!({"holdGroupId": id, "seatCodes": body.seat_codes})),
        ),
        Ok(taken) => {
            let seat = body.seat_codes.get(taken as usize - 1).cloned();
            (
                StatusCode::CONFLICT,
                Json(json!({"code": "SEATS_UNAVAILABLE", "seats": [seat]})),
            )
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"code": "SERVICE_UNAVAILABLE", "error": e.to_string()})),
        ),
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HoldView {
    hold_group_id: uuid::Uuid,
    expires_in: i64,
    expires_at: String,
    seat_codes: Vec<String>,
    tiers: [(); 0],
}

/// `REFERENCE=floor`: the handler above with [`FLOOR`] and seatlock's answers.
async fn reserve_floor(
    State(r): State<Reference>,
    Path(event): Path<i64>,
    Json(body): Json<Reserve>,
) -> Response {
    let id = uuid::Uuid::new_v4();
    let mut call = r.script.prepare_invoke();
    call.key(format!("{}:{{e:{event}}}:seats", r.prefix))
        .arg(id.to_string())
        .arg(&body.user_id)
        .arg(r.ttl_ms);
    for code in &body.seat_codes {
        call.arg(code);
    }
    let mut conn = r.conn.clone();
    match call.invoke_async::<(i64, redis::Value)>(&mut conn).await {
        Ok((0, redis::Value::Int(ms))) => {
            let at = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
            let view = HoldView {
                hold_group_id: id,
                expires_in: r.ttl_ms / 1000,
                expires_at: at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                seat_codes: body.seat_codes,
                tiers: [],
            };
            (StatusCode::OK, Json(view)).into_response()
        }
        Ok((kind, seats)) => {
            let seats: Vec<String> = redis::from_redis_value(seats).unwrap_or_default();
            let (status, code) = if kind == 2 {
                (StatusCode::NOT_FOUND, "SEATS_NOT_FOUND")
            } else {
                (StatusCode::CONFLICT, "SEATS_UNAVAILABLE")
            };
            let message = "seats are not available";
            let body = json!({"code": code, "message": message, "seats": seats});
            (status, Json(body)).into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"code": "SERVICE_UNAVAILABLE", "error": e.to_string()})),
        )
            .into_response(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "18080".into());
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = std::env::var("KEY_PREFIX").unwrap_or_else(|_| "reference".into());
    let client = redis::Client::open(url)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(std::time::Duration::from_secs(5)));
    let conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let floor = std::env::var("REFERENCE").is_ok_and(|v| v == "floor");
    let state = Reference {
        conn,
        script: Arc::new(redis::Script::new(if floor { FLOOR } else { SCRIPT })),
        prefix: prefix.into(),
        ttl_ms: std::env::var("FLOOR_TTL_SECONDS")
            .ok()
            .filter(|_| floor)
            .and_then(|v| v.parse::<i64>().ok())
            .map_or(TTL_MS, |s| s * 1000),
    };
    let handler = if floor {
        post(reserve_floor)
    } else {
        post(reserve)
    };
    let app = Router::new()
        .route("/events/{id}/seats/reserve", handler)
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
