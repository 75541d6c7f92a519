//! The reference of `bench/run.sh`: the least an axum + Redis hold handler can do, to measure
//! seatlock's hot path against on the same machine in the same run. `POST
//! /events/{id}/seats/reserve` parses the JSON body (`userId`, `seatCodes`), runs one EVALSHA of
//! a script that checks every seat with EXISTS and, if all are free, SETs them with PX, and
//! answers JSON: 200 `{holdGroupId, seatCodes}` or 409 `{code, seats}`. No validation, no
//! metrics, no logs, no rate limits, no idempotency, no inventory (an unknown seat is free), no
//! hold record. `GET /healthz` answers `{"status":"ok"}`.
//!
//! ```text
//! PORT=18080 REDIS_URL=redis://127.0.0.1:6379 KEY_PREFIX=ref cargo run --release --example bench_reference
//! ```

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
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

#[derive(Clone)]
struct Reference {
    conn: redis::aio::MultiplexedConnection,
    script: Arc<redis::Script>,
    prefix: Arc<str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reserve {
    #[allow(dead_code)]
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
    call.arg(id.to_string()).arg(300_000);
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
    let state = Reference {
        conn,
        script: Arc::new(redis::Script::new(SCRIPT)),
        prefix: prefix.into(),
    };
    let app = Router::new()
        .route("/events/{id}/seats/reserve", post(reserve))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
