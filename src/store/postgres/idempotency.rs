//! Stored responses of keyed requests (`Idempotency-Key`): claim a key for one request, store
//! its response, release a key whose request failed, and sweep old ones. Each call is a single
//! statement (or a short sequence whose every step is safe on its own), so none needs a
//! transaction.

use std::time::Duration;

use super::PgStore;
use crate::domain::idempotency::{IdempotencyScope, KeyClaim};
use crate::error::Result;
use crate::telemetry::PgOp;

/// fingerprint, status_code, response_body, lease still running
type StoredKey = (String, Option<i32>, Option<Vec<u8>>, bool);

/// The WHERE clause of one stored response ($1..$4: event, user, route, key).
macro_rules! scope {
    () => {
        "event_id = $1 AND user_id = $2 AND route = $3 AND idempotency_key = $4"
    };
}

impl PgStore {
    /// Claims an Idempotency-Key for one request, or reports what it already holds.
    pub async fn claim_idempotency_key(
        &self,
        scope: &IdempotencyScope,
        fingerprint: &str,
        lease: Duration,
        ttl: Duration,
    ) -> Result<KeyClaim> {
        self.timed(
            PgOp::IdempotencyClaim,
            self.claim_key(scope, fingerprint, lease, ttl),
        )
        .await
    }

    async fn claim_key(
        &self,
        scope: &IdempotencyScope,
        fingerprint: &str,
        lease: Duration,
        ttl: Duration,
    ) -> Result<KeyClaim, sqlx::Error> {
        let lease_ms = lease.as_millis() as i64;
        // A stored response past its time is forgotten first, so the key starts a new use.
        let forget = concat!(
            "DELETE FROM idempotency_keys WHERE ",
            scope!(),
            " \
               AND created_at < now() - make_interval(secs => $5::double precision)"
        );
        sqlx::query(forget)
            .bind(scope.event.0)
            .bind(&scope.user_id)
            .bind(&scope.route)
            .bind(&scope.key)
            .bind(ttl.as_secs() as i64)
            .execute(&self.pool)
            .await?;
        let claimed: Option<i64> = sqlx::query_scalar(
            "INSERT INTO idempotency_keys \
               (event_id, user_id, route, idempotency_key, fingerprint, locked_until) \
             VALUES ($1, $2, $3, $4, $5, \
                     now() + make_interval(secs => $6::double precision / 1000)) \
             ON CONFLICT ON CONSTRAINT idempotency_keys_pkey DO NOTHING \
             RETURNING (extract(epoch FROM created_at) * 1000000)::bigint",
        )
        .bind(scope.event.0)
        .bind(&scope.user_id)
        .bind(&scope.route)
        .bind(&scope.key)
        .bind(fingerprint)
        .bind(lease_ms)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(claimed_at) = claimed {
            return Ok(KeyClaim::Owner { claimed_at });
        }
        let read = concat!(
            "SELECT fingerprint, status_code, response_body, locked_until > now() \
             FROM idempotency_keys WHERE ",
            scope!()
        );
        let row: Option<StoredKey> = sqlx::query_as(read)
            .bind(scope.event.0)
            .bind(&scope.user_id)
            .bind(&scope.route)
            .bind(&scope.key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            // Released between the two statements by a first attempt that failed: retry.
            None => KeyClaim::InFlight,
            Some((fp, _, _, _)) if fp != fingerprint => KeyClaim::Mismatch,
            Some((_, Some(status), body, _)) => KeyClaim::Replay {
                status: status as u16,
                body: body.unwrap_or_default(),
            },
            Some((_, None, _, true)) => KeyClaim::InFlight,
            Some((_, None, _, false)) => {
                // The first request died without answering: take its lease over (same use of
                // the key, so the same claimed_at and the same derived ids).
                let take = concat!(
                    "UPDATE idempotency_keys \
                        SET locked_until = now() + make_interval(secs => $5::double precision / 1000) \
                      WHERE ",
                    scope!(),
                    " AND status_code IS NULL AND locked_until <= now() \
                     RETURNING (extract(epoch FROM created_at) * 1000000)::bigint"
                );
                let taken: Option<i64> = sqlx::query_scalar(take)
                    .bind(scope.event.0)
                    .bind(&scope.user_id)
                    .bind(&scope.route)
                    .bind(&scope.key)
                    .bind(lease_ms)
                    .fetch_optional(&self.pool)
                    .await?;
                match taken {
                    Some(claimed_at) => KeyClaim::Owner { claimed_at },
                    None => KeyClaim::InFlight,
                }
            }
        })
    }

    /// Stores the final response of a claimed key.
    pub async fn complete_idempotency_key(
        &self,
        scope: &IdempotencyScope,
        status: u16,
        body: &[u8],
    ) -> Result<()> {
        let sql = concat!(
            "UPDATE idempotency_keys SET status_code = $5, response_body = $6 WHERE ",
            scope!()
        );
        let update = sqlx::query(sql)
            .bind(scope.event.0)
            .bind(&scope.user_id)
            .bind(&scope.route)
            .bind(&scope.key)
            .bind(i32::from(status))
            .bind(body)
            .execute(&self.pool);
        self.timed(PgOp::IdempotencyComplete, update).await?;
        Ok(())
    }

    /// Ends the lease of a claimed key whose request failed transiently (5xx) or was dropped,
    /// with nothing stored: the retry takes the same use of the key over at once (same derived
    /// ids, so a reserve that did take its hold acknowledges it instead of taking a second one).
    pub async fn release_idempotency_key(&self, scope: &IdempotencyScope) -> Result<()> {
        let sql = concat!(
            "UPDATE idempotency_keys SET locked_until = now() \
             WHERE ",
            scope!(),
            " AND status_code IS NULL"
        );
        let update = sqlx::query(sql)
            .bind(scope.event.0)
            .bind(&scope.user_id)
            .bind(&scope.route)
            .bind(&scope.key)
            .execute(&self.pool);
        self.timed(PgOp::IdempotencyRelease, update).await?;
        Ok(())
    }

    /// Deletes stored responses older than `ttl`, in batches; returns how many.
    pub async fn sweep_idempotency_keys(&self, ttl: Duration) -> Result<u64> {
        let delete = sqlx::query(
            "DELETE FROM idempotency_keys WHERE (event_id, user_id, route, idempotency_key) IN ( \
               SELECT event_id, user_id, route, idempotency_key FROM idempotency_keys \
                WHERE created_at < now() - make_interval(secs => $1::double precision) \
                LIMIT 5000 FOR UPDATE SKIP LOCKED)",
        )
        .bind(ttl.as_secs() as i64)
        .execute(&self.pool);
        Ok(self
            .timed(PgOp::SweepIdempotency, delete)
            .await?
            .rows_affected())
    }
}
