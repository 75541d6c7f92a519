//! Readiness: can holds be taken now, and where do they go.

use std::time::Duration;

use super::Seatlock;
use super::breaker::State as BreakerState;
use crate::config::HoldFallback;
use crate::domain::holds::HoldStore;
use crate::store::redis::ClusterHealth;
use crate::telemetry::{self, StoreName};

/// Where holds go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldsGo {
    Redis,
    Postgres,
    /// Nowhere: Redis is down and the fallback is `reject`.
    Nowhere,
}

/// Whether the instance should get traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyStatus {
    Ready,
    /// Redis is down, holds fall back to Postgres: still ready.
    Degraded,
    Unavailable,
}

/// What `/readyz` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    pub status: ReadyStatus,
    pub postgres_up: bool,
    pub redis_up: bool,
    pub holds: HoldsGo,
    pub breaker: BreakerState,
    /// The Redis Cluster's state (None on a standalone Redis, or when no node answered).
    pub cluster: Option<ClusterHealth>,
}

/// How long each store gets to answer a readiness check.
const CHECK_LIMIT: Duration = Duration::from_secs(1);

impl Seatlock {
    /// Asks both stores as [`readiness`](Self::readiness) does and records what answered
    /// (`seatlock_store_up`), so an alert sees a store down on an instance without traffic.
    /// While the breaker is open and its probe is due, a PING is that probe: holds return to
    /// Redis by themselves once it answers, without waiting for a hold to probe.
    pub async fn probe_stores(&self) {
        if !self.breaker.is_closed() {
            // Bounded by the Redis deadlines; its failure is an outage, as a hold's would be.
            let _ = self.with_redis(self.redis.ping()).await;
        }
        let ready = self.readiness().await;
        telemetry::record_store_up(StoreName::Postgres, ready.postgres_up);
        telemetry::record_store_up(StoreName::Redis, ready.redis_up);
    }

    /// Pings both stores (at most a second each, at once) and decides readiness.
    pub async fn readiness(&self) -> Readiness {
        let pg_check = tokio::time::timeout(CHECK_LIMIT, self.pg.ping());
        let redis_check = tokio::time::timeout(CHECK_LIMIT, self.redis.ping());
        let cluster_check = tokio::time::timeout(CHECK_LIMIT, self.redis.cluster_health());
        let (pg, redis, cluster) = tokio::join!(pg_check, redis_check, cluster_check);
        let postgres_up = matches!(pg, Ok(Ok(())));
        let cluster = match cluster {
            Ok(Ok(health)) => health,
            _ => None,
        };
        // A cluster is up when every master answers (PING goes to each) and every slot is served.
        let redis_up = matches!(redis, Ok(Ok(()))) && cluster.is_none_or(|c| c.ok);
        let breaker = self.breaker.state();
        let holds = &self.settings.holds;
        let (holds_go, status) = decide_readiness(
            holds.backend,
            holds.fallback,
            postgres_up,
            redis_up,
            breaker,
        );
        Readiness {
            status,
            postgres_up,
            redis_up,
            holds: holds_go,
            breaker,
            cluster,
        }
    }
}

/// Ready when holds can be taken: `Ready` when both stores answer (or Postgres alone in the
/// Postgres-only mode); `Degraded` while Redis is down but holds fall back to Postgres;
/// `Unavailable` when Postgres is down, or Redis is down with `holds.fallback = reject`.
pub fn decide_readiness(
    backend: HoldStore,
    fallback: HoldFallback,
    postgres_up: bool,
    redis_up: bool,
    breaker: BreakerState,
) -> (HoldsGo, ReadyStatus) {
    let redis_usable = redis_up && breaker == BreakerState::Closed;
    let (holds, status) = match (backend, redis_usable, fallback) {
        (HoldStore::Postgres, _, _) => (HoldsGo::Postgres, ReadyStatus::Ready),
        (HoldStore::Redis, true, _) => (HoldsGo::Redis, ReadyStatus::Ready),
        (HoldStore::Redis, false, HoldFallback::Postgres) => {
            (HoldsGo::Postgres, ReadyStatus::Degraded)
        }
        (HoldStore::Redis, false, HoldFallback::Reject) => {
            (HoldsGo::Nowhere, ReadyStatus::Unavailable)
        }
    };
    if postgres_up {
        (holds, status)
    } else {
        (holds, ReadyStatus::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PG: HoldFallback = HoldFallback::Postgres;
    const REJECT: HoldFallback = HoldFallback::Reject;
    const CLOSED: BreakerState = BreakerState::Closed;
    const OPEN: BreakerState = BreakerState::Open;

    #[test]
    fn readiness_covers_every_combination() {
        use HoldStore::{Postgres, Redis};
        let cases = [
            (
                Redis,
                PG,
                true,
                true,
                CLOSED,
                HoldsGo::Redis,
                ReadyStatus::Ready,
            ),
            (
                Redis,
                PG,
                true,
                false,
                CLOSED,
                HoldsGo::Postgres,
                ReadyStatus::Degraded,
            ),
            (
                Redis,
                PG,
                true,
                true,
                OPEN,
                HoldsGo::Postgres,
                ReadyStatus::Degraded,
            ),
            (
                Redis,
                REJECT,
                true,
                false,
                CLOSED,
                HoldsGo::Nowhere,
                ReadyStatus::Unavailable,
            ),
            (
                Redis,
                REJECT,
                true,
                true,
                CLOSED,
                HoldsGo::Redis,
                ReadyStatus::Ready,
            ),
            (
                Redis,
                PG,
                false,
                true,
                CLOSED,
                HoldsGo::Redis,
                ReadyStatus::Unavailable,
            ),
            (
                Postgres,
                REJECT,
                true,
                false,
                OPEN,
                HoldsGo::Postgres,
                ReadyStatus::Ready,
            ),
            (
                Postgres,
                PG,
                false,
                true,
                CLOSED,
                HoldsGo::Postgres,
                ReadyStatus::Unavailable,
            ),
        ];
        for (backend, fallback, pg, redis, breaker, go, status) in cases {
            assert_eq!(
                decide_readiness(backend, fallback, pg, redis, breaker),
                (go, status),
                "{backend:?} {fallback:?} pg={pg} redis={redis} {breaker:?}"
            );
        }
    }
}
