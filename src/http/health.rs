//! Liveness, readiness and the Prometheus scrape endpoint.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::state::AppState;
use crate::config::RedisMode;
use crate::service::breaker::State as BreakerState;
use crate::service::{HoldsGo, Readiness, ReadyStatus};
use crate::telemetry;

/// What `/readyz` answers.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct ReadyBody {
    /// ready, degraded or unavailable.
    status: String,
    /// up or down.
    postgres: String,
    redis: String,
    /// Where holds go now: redis, postgres or none.
    holds: String,
    /// closed, open or half_open.
    breaker: String,
    /// none or token.
    auth: String,
    /// standalone or cluster (`redis.mode`).
    #[serde(rename = "redisMode")]
    redis_mode: String,
    /// In cluster mode: the cluster's state as one of its nodes sees it.
    cluster: Option<ClusterBody>,
    /// When not ready: what is down, and NOT_READY.
    error: Option<String>,
    code: Option<String>,
}

/// A Redis Cluster's state in `/readyz`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ClusterBody {
    /// ok (every slot served), fail, or unreachable (no node answered).
    state: String,
    slots_ok: Option<u32>,
    slots_fail: Option<u32>,
    /// Masters serving slots.
    size: Option<u32>,
    /// Nodes known, replicas included.
    known_nodes: Option<u32>,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
}

/// Liveness: 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "Alive", body = Object, example = json!({"status": "ok"}))))]
pub(super) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 `ready` when Postgres and Redis answer; 200 `degraded` while Redis is down but holds fall
/// back to Postgres; 503 `NOT_READY` naming what is down otherwise.
/// Readiness: where holds go now and what is down.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "Ready or degraded", body = ReadyBody),
        (status = 503, description = "Not ready", body = ReadyBody),
    ))]
pub(super) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let ready = state.seatlock.readiness().await;
    let (status, mut body) = readiness_body(&ready);
    body["auth"] = json!(state.settings.auth.mode.as_str());
    body["redisMode"] = json!(state.settings.redis.mode.as_str());
    if state.settings.redis.mode == RedisMode::Cluster {
        body["cluster"] = match ready.cluster {
            Some(c) => json!({
                "state": if c.ok { "ok" } else { "fail" },
                "slotsOk": c.slots_ok,
                "slotsFail": c.slots_fail,
                "size": c.size,
                "knownNodes": c.known_nodes,
            }),
            None => json!({"state": "unreachable"}),
        };
    }
    (status, Json(body))
}

fn readiness_body(r: &Readiness) -> (StatusCode, Value) {
    let word = |up: bool| if up { "up" } else { "down" };
    let mut body = json!({
        "status": match r.status {
            ReadyStatus::Ready => "ready",
            ReadyStatus::Degraded => "degraded",
            ReadyStatus::Unavailable => "unavailable",
        },
        "postgres": word(r.postgres_up),
        "redis": word(r.redis_up),
        "holds": match r.holds {
            HoldsGo::Redis => "redis",
            HoldsGo::Postgres => "postgres",
            HoldsGo::Nowhere => "none",
        },
        "breaker": match r.breaker {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        },
    });
    let down: Vec<&str> = [
        ("postgres", !r.postgres_up),
        ("redis", r.holds == HoldsGo::Nowhere),
    ]
    .into_iter()
    .filter(|(_, down)| *down)
    .map(|(name, _)| name)
    .collect();
    if down.is_empty() {
        return (StatusCode::OK, body);
    }
    body["error"] = json!(format!("not ready: {} down", down.join(" and ")));
    body["code"] = json!("NOT_READY");
    (StatusCode::SERVICE_UNAVAILABLE, body)
}

/// Prometheus metrics (text format 0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Metrics", content_type = "text/plain", body = String)))]
pub(super) async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    telemetry::record_pools(state.seatlock.pool_stats());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readiness(status: ReadyStatus, postgres_up: bool, holds: HoldsGo) -> Readiness {
        Readiness {
            status,
            postgres_up,
            redis_up: holds == HoldsGo::Redis,
            cluster: None,
            holds,
            breaker: BreakerState::Closed,
        }
    }

    #[test]
    fn not_ready_names_what_is_down() {
        let (status, body) = readiness_body(&readiness(ReadyStatus::Ready, true, HoldsGo::Redis));
        assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("ready")));
        let degraded = readiness(ReadyStatus::Degraded, true, HoldsGo::Postgres);
        let (status, body) = readiness_body(&degraded);
        assert_eq!(
            (status, &body["holds"]),
            (StatusCode::OK, &json!("postgres"))
        );
        let both = readiness(ReadyStatus::Unavailable, false, HoldsGo::Nowhere);
        let (status, body) = readiness_body(&both);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"], "not ready: postgres and redis down");
        assert_eq!(body["code"], "NOT_READY");
    }
}
