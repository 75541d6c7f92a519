//! Liveness, readiness and the Prometheus scrape endpoint.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::AppState;
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

/// 200 when Postgres and Redis both answer within a second; 503 naming what is down.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let limit = Duration::from_secs(1);
    let pg_check = tokio::time::timeout(limit, sqlx::query("SELECT 1").execute(&state.pg));
    let redis_check = tokio::time::timeout(limit, state.redis.ping());
    let (pg_result, redis_result) = tokio::join!(pg_check, redis_check);
    let pg_up = matches!(pg_result, Ok(Ok(_)));
    let redis_up = matches!(redis_result, Ok(Ok(())));
    let word = |up: bool| if up { "up" } else { "down" };
    if pg_up && redis_up {
        return (
            StatusCode::OK,
            Json(json!({ "status": "ready", "postgres": "up", "redis": "up" })),
        );
    }
    let down: Vec<&str> = [("postgres", pg_up), ("redis", redis_up)]
        .into_iter()
        .filter(|(_, up)| !up)
        .map(|(name, _)| name)
        .collect();
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({
            "error": format!("not ready: {} down", down.join(" and ")),
            "code": "NOT_READY",
            "status": "unavailable",
            "postgres": word(pg_up),
            "redis": word(redis_up),
        })),
    )
}

async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    telemetry::record_pools(
        &state.pg,
        state.settings.database.max_connections,
        state.redis.pool(),
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
