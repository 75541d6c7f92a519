//! Liveness, readiness and the Prometheus scrape endpoint.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::AppState;
use crate::breaker::State as BreakerState;
use crate::config::{HoldBackend, HoldFallback};
use crate::telemetry;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when holds can be taken: 200 `ready` when Postgres and Redis answer; 200 `degraded`
/// while Redis is down but holds fall back to Postgres; 503 naming what is down otherwise
/// (Postgres down, or Redis down with `holds.fallback = reject`).
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let limit = Duration::from_secs(1);
    let pg_check = tokio::time::timeout(limit, sqlx::query("SELECT 1").execute(&state.pg));
    let redis_check = tokio::time::timeout(limit, state.redis.ping());
    let (pg_result, redis_result) = tokio::join!(pg_check, redis_check);
    let pg_up = matches!(pg_result, Ok(Ok(_)));
    let redis_up = matches!(redis_result, Ok(Ok(())));
    let holds = &state.settings.holds;
    let breaker = state.breaker.state();
    let redis_needed = holds.backend == HoldBackend::Redis;
    let redis_usable = redis_up && breaker == BreakerState::Closed;
    let (holds_in, status) = match (redis_needed, redis_usable, holds.fallback) {
        (false, _, _) => ("postgres", "ready"),
        (true, true, _) => ("redis", "ready"),
        (true, false, HoldFallback::Postgres) => ("postgres", "degraded"),
        (true, false, HoldFallback::Reject) => ("none", "unavailable"),
    };
    let word = |up: bool| if up { "up" } else { "down" };
    let mut body = json!({
        "status": status,
        "postgres": word(pg_up),
        "redis": word(redis_up),
        "holds": holds_in,
        "breaker": match breaker {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        },
    });
    let down: Vec<&str> = [("postgres", !pg_up), ("redis", status == "unavailable")]
        .into_iter()
        .filter(|(_, down)| *down)
        .map(|(name, _)| name)
        .collect();
    if down.is_empty() {
        return (StatusCode::OK, Json(body));
    }
    body["status"] = json!("unavailable");
    body["error"] = json!(format!("not ready: {} down", down.join(" and ")));
    body["code"] = json!("NOT_READY");
    (StatusCode::SERVICE_UNAVAILABLE, Json(body))
}

async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    telemetry::record_pools(
        &state.pg,
        state.settings.database.max_connections,
        &state.redis,
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
