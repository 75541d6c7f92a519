//! The range checks of the core settings: each a key, whether its value is good, and what a good
//! value is (start-up stops naming the first bad one).

use super::Settings;

impl Settings {
    pub(super) fn checks(&self) -> Vec<(&'static str, bool, &'static str)> {
        vec![
            (
                "database.acquire_timeout_ms",
                self.database.acquire_timeout_ms >= 1,
                "must be at least 1",
            ),
            (
                "database.statement_timeout_ms",
                self.database.statement_timeout_ms >= 1,
                "must be at least 1",
            ),
            (
                "redis.pool_wait_timeout_ms",
                self.redis.pool_wait_timeout_ms >= 1,
                "must be at least 1",
            ),
            (
                "redis.connect_timeout_ms",
                self.redis.connect_timeout_ms >= 1,
                "must be at least 1",
            ),
            (
                "idempotency.sweep_interval_seconds",
                self.idempotency.sweep_interval_seconds >= 1,
                "must be at least 1",
            ),
            (
                "database.max_connections",
                self.database.max_connections >= 1,
                "must be at least 1",
            ),
            (
                "redis.pool_size",
                self.redis.pool_size >= 1,
                "must be at least 1",
            ),
            (
                "redis.response_timeout_ms",
                self.redis.response_timeout_ms >= 1,
                "must be at least 1",
            ),
            (
                "holds.ttl_seconds",
                (1..=86_400).contains(&self.holds.ttl_seconds),
                "must be 1..=86400",
            ),
            (
                "holds.max_seats_per_hold",
                (1..=1000).contains(&self.holds.max_seats_per_hold),
                "must be 1..=1000",
            ),
            (
                "holds.max_lifetime_seconds",
                (self.holds.ttl_seconds..=86_400).contains(&self.holds.max_lifetime_seconds),
                "must be from holds.ttl_seconds to 86400",
            ),
            (
                "holds.max_renewals",
                self.holds.max_renewals <= 1000,
                "must be 0..=1000",
            ),
            (
                "holds.confirm_grace_seconds",
                (1..=3600).contains(&self.holds.confirm_grace_seconds),
                "must be 1..=3600",
            ),
            (
                "events.max_seats",
                (1..=1_000_000).contains(&self.events.max_seats),
                "must be 1..=1000000",
            ),
            (
                "events.max_tiers",
                (1..=1000).contains(&self.events.max_tiers),
                "must be 1..=1000",
            ),
            (
                "events.max_tier_capacity",
                (1..=100_000_000).contains(&self.events.max_tier_capacity),
                "must be 1..=100000000",
            ),
            (
                "redis.key_prefix",
                !self.redis.key_prefix.is_empty(),
                "must not be empty",
            ),
            (
                "stream.max_connections",
                (1..=1_000_000).contains(&self.stream.max_connections),
                "must be 1..=1000000",
            ),
            (
                "stream.heartbeat_seconds",
                (1..=300).contains(&self.stream.heartbeat_seconds),
                "must be 1..=300",
            ),
            (
                "stream.coalesce_ms",
                (10..=1000).contains(&self.stream.coalesce_ms),
                "must be 10..=1000",
            ),
            (
                "stream.buffer",
                (1..=100_000).contains(&self.stream.buffer),
                "must be 1..=100000",
            ),
            (
                "holds.sweep_interval_seconds",
                (1..=86_400).contains(&self.holds.sweep_interval_seconds),
                "must be 1..=86400",
            ),
            (
                "idempotency.ttl_hours",
                (1..=8760).contains(&self.idempotency.ttl_hours),
                "must be 1..=8760",
            ),
            (
                "idempotency.lease_seconds",
                (1..=3600).contains(&self.idempotency.lease_seconds),
                "must be 1..=3600",
            ),
            (
                "breaker.failure_threshold",
                (1..=10_000).contains(&self.breaker.failure_threshold),
                "must be 1..=10000",
            ),
            (
                "breaker.open_seconds",
                (1..=3600).contains(&self.breaker.open_seconds),
                "must be 1..=3600",
            ),
        ]
    }
}
