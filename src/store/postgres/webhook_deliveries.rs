//! Webhook deliveries in Postgres: messages claimed with `FOR UPDATE SKIP LOCKED` under a lease
//! (so one instance sends a message at a time), the attempts log and each message's next step,
//! the endpoints' failure state, the delivery log as a client reads it, replays, the backlog for
//! the metrics, and the retention sweep.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::PgStore;
use crate::domain::webhooks::{Attempt, Delivery, Next};
use crate::error::Result;
use crate::telemetry::PgOp;

/// A message claimed for delivery, with what signing and sending it takes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub endpoint_id: uuid::Uuid,
    pub message_id: String,
    pub body: String,
    pub attempts: i32,
    pub round_attempts: i32,
    pub created_at: DateTime<Utc>,
    pub seq: i64,
    pub url: String,
    pub secret: String,
    /// The secrets rotations retired that still sign (each 24 h after its rotation), newest first.
    pub retired_secrets: Vec<String>,
    /// The span of the request that made the message (a booking's, while traces are exported).
    pub traceparent: Option<String>,
    /// The end of this claim's lease (the message's `next_attempt_at` while it is claimed).
    pub leased_until: DateTime<Utc>,
}

/// What one attempt came to, to record.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub endpoint_id: uuid::Uuid,
    pub message_id: String,
    /// Its number among all attempts of the message (1-based).
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u32,
    pub next: Next,
    /// The claim's lease: the message's next step is recorded only if it is still under it (not
    /// replayed, nor claimed again after the lease ran out, meanwhile).
    pub leased_until: DateTime<Utc>,
}

/// Messages waiting, for the metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backlog {
    pub pending: i64,
    pub oldest_pending_s: f64,
    pub endpoints_disabled: i64,
}

impl PgStore {
    /// An endpoint's messages, newest first, each with its attempts.
    pub async fn fetch_deliveries(
        &self,
        endpoint: uuid::Uuid,
        limit: i64,
        status: Option<&str>,
    ) -> Result<Vec<Delivery>> {
        type Row = (String, String, String, DateTime<Utc>, DateTime<Utc>);
        type AttemptRow = (String, DateTime<Utc>, Option<i32>, Option<String>, i32);
        let read = async {
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT message_id, type, status, created_at, next_attempt_at \
                 FROM webhook_messages WHERE endpoint_id = $1 \
                   AND ($2::text IS NULL OR status = $2) \
                 ORDER BY created_at DESC, seq DESC LIMIT $3",
            )
            .bind(endpoint)
            .bind(status)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
            let attempts: Vec<AttemptRow> = sqlx::query_as(
                "SELECT message_id, at, status_code, error, duration_ms FROM webhook_attempts \
                 WHERE endpoint_id = $1 AND message_id = ANY($2) ORDER BY message_id, attempt",
            )
            .bind(endpoint)
            .bind(&ids)
            .fetch_all(&self.pool)
            .await?;
            Ok::<_, sqlx::Error>((rows, attempts))
        };
        let (rows, attempts) = self.timed(PgOp::Webhooks, read).await?;
        Ok(rows
            .into_iter()
            .map(|(id, kind, status, created, next)| {
                let attempts = attempts
                    .iter()
                    .filter(|a| a.0 == id)
                    .map(|a| Attempt {
                        at_ms: a.1.timestamp_millis(),
                        status_code: a.2.map(|c| c.clamp(0, 999) as u16),
                        error: a.3.clone(),
                        duration_ms: a.4.max(0) as u32,
                    })
                    .collect();
                let next = (status == "pending").then(|| next.timestamp_millis());
                Delivery {
                    id,
                    kind,
                    status,
                    created_at_ms: created.timestamp_millis(),
                    next_attempt_at_ms: next,
                    attempts,
                }
            })
            .collect())
    }

    /// Queues again every message of the endpoint made since `since` (same ids, the retry
    /// schedule from its start); how many.
    pub async fn replay_messages(&self, endpoint: uuid::Uuid, since: DateTime<Utc>) -> Result<u64> {
        let queued = sqlx::query(
            "UPDATE webhook_messages SET status = 'pending', round_attempts = 0, \
                    next_attempt_at = now() \
             WHERE endpoint_id = $1 AND created_at >= $2",
        )
        .bind(endpoint)
        .bind(since)
        .execute(&self.pool);
        Ok(self.timed(PgOp::Webhooks, queued).await?.rows_affected())
    }

    /// Claims, for `lease`, up to `endpoints` enabled endpoints with due messages that no other
    /// instance delivers to now, and up to `per_endpoint` of each one's due messages, oldest
    /// first (another instance skips both until the lease runs out or
    /// [`release_endpoints`](Self::release_endpoints)). An endpoint with a failed message waiting
    /// for its next attempt is skipped: messages queued since wait behind it, unattempted.
    pub async fn claim_deliveries(
        &self,
        endpoints: i64,
        per_endpoint: i64,
        lease: Duration,
    ) -> Result<Vec<Claimed>> {
        let rows = sqlx::query_as::<_, Claimed>(
            "WITH free AS ( \
               SELECT e.endpoint_id FROM webhook_endpoints e \
                WHERE e.enabled AND (e.busy_until IS NULL OR e.busy_until < now()) \
                  AND EXISTS (SELECT 1 FROM webhook_messages m \
                               WHERE m.endpoint_id = e.endpoint_id AND m.status = 'pending' \
                                 AND m.next_attempt_at <= now()) \
                  AND NOT EXISTS (SELECT 1 FROM webhook_messages m \
                                   WHERE m.endpoint_id = e.endpoint_id AND m.status = 'pending' \
                                     AND m.round_attempts > 0 AND m.next_attempt_at > now()) \
                LIMIT $1 FOR UPDATE SKIP LOCKED), \
             taken AS ( \
               UPDATE webhook_endpoints e SET busy_until = now() + make_interval(secs => $3) \
                 FROM free WHERE e.endpoint_id = free.endpoint_id \
               RETURNING e.endpoint_id, e.url, e.secret, \
                         ARRAY(SELECT r->>'secret' FROM jsonb_array_elements(e.retired) r \
                                WHERE (r->>'until')::timestamptz > now()) AS retired_secrets), \
             due AS ( \
               SELECT d.endpoint_id, d.message_id FROM free, LATERAL ( \
                 SELECT m.endpoint_id, m.message_id FROM webhook_messages m \
                  WHERE m.endpoint_id = free.endpoint_id AND m.status = 'pending' \
                    AND m.next_attempt_at <= now() \
                  ORDER BY m.next_attempt_at, m.created_at, m.seq LIMIT $2) d) \
             UPDATE webhook_messages m \
                SET next_attempt_at = now() + make_interval(secs => $3) \
               FROM due, taken \
              WHERE m.endpoint_id = due.endpoint_id AND m.message_id = due.message_id \
                AND taken.endpoint_id = m.endpoint_id \
             RETURNING m.endpoint_id, m.message_id, m.body, m.attempts, m.round_attempts, \
                       m.created_at, m.seq, taken.url, taken.secret, taken.retired_secrets, \
                       m.traceparent, m.next_attempt_at AS leased_until",
        )
        .bind(endpoints)
        .bind(per_endpoint)
        .bind(lease.as_secs_f64())
        .fetch_all(&self.pool);
        let mut rows = self.timed(PgOp::WebhookClaim, rows).await?;
        rows.sort_by_key(|a| (a.created_at, a.seq));
        Ok(rows)
    }

    /// Ends this instance's lease on endpoints it finished delivering to.
    pub async fn release_endpoints(&self, endpoints: &[uuid::Uuid]) -> Result<()> {
        let q = sqlx::query(
            "UPDATE webhook_endpoints SET busy_until = NULL WHERE endpoint_id = ANY($1)",
        )
        .bind(endpoints)
        .execute(&self.pool);
        self.timed(PgOp::WebhookRecord, q).await?;
        Ok(())
    }

    /// Records attempts: the log, each message's next step, and the endpoints' state (a 410
    /// disables at once; failures for `disable_after` in a row disable too; a success clears).
    pub async fn record_deliveries(
        &self,
        outcomes: &[AttemptOutcome],
        disable_after: Duration,
    ) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let write = async {
            let mut tx = self.pool.begin().await?;
            // Only messages that still exist (an endpoint deleted mid-delivery takes its messages
            // with it): one missing row must not undo the others' records, which would send them
            // again. Locked, so a delete waits for this transaction.
            let (endpoints, ids): (Vec<uuid::Uuid>, Vec<&str>) = outcomes
                .iter()
                .map(|o| (o.endpoint_id, o.message_id.as_str()))
                .unzip();
            let alive: HashSet<(uuid::Uuid, String)> = sqlx::query_as(
                "SELECT endpoint_id, message_id FROM webhook_messages \
                  WHERE (endpoint_id, message_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[])) \
                  FOR KEY SHARE",
            )
            .bind(&endpoints)
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
            let outcomes: Vec<&AttemptOutcome> = outcomes
                .iter()
                .filter(|o| alive.contains(&(o.endpoint_id, o.message_id.clone())))
                .collect();
            let col =
                |f: fn(&AttemptOutcome) -> uuid::Uuid| outcomes.iter().map(|o| f(o)).collect();
            let endpoints: Vec<uuid::Uuid> = col(|o| o.endpoint_id);
            let ids: Vec<&str> = outcomes.iter().map(|o| o.message_id.as_str()).collect();
            let attempt: Vec<i32> = outcomes.iter().map(|o| o.attempt).collect();
            let at: Vec<DateTime<Utc>> = outcomes.iter().map(|o| o.at).collect();
            let codes: Vec<Option<i32>> = outcomes
                .iter()
                .map(|o| o.status_code.map(i32::from))
                .collect();
            let errors: Vec<Option<&str>> = outcomes.iter().map(|o| o.error.as_deref()).collect();
            let took: Vec<i32> = outcomes.iter().map(|o| o.duration_ms as i32).collect();
            let leased: Vec<DateTime<Utc>> = outcomes.iter().map(|o| o.leased_until).collect();
            let (mut status, mut next) = (Vec::new(), Vec::new());
            for o in &outcomes {
                let (s, n) = match o.next {
                    Next::Delivered => ("delivered", o.at),
                    Next::Failed => ("failed", o.at),
                    Next::Gone => ("pending", o.at),
                    Next::RetryIn(ms) => ("pending", o.at + Duration::from_millis(ms)),
                };
                status.push(s);
                next.push(n);
            }
            sqlx::query(
                "INSERT INTO webhook_attempts (endpoint_id, message_id, attempt, at, status_code, \
                                               error, duration_ms) \
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], \
                                      $5::int[], $6::text[], $7::int[]) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&endpoints)
            .bind(&ids)
            .bind(&attempt)
            .bind(&at)
            .bind(&codes)
            .bind(&errors)
            .bind(&took)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                // The attempt counts whatever happened since the claim; the message's next
                // step only if it is still under this claim's lease (no replay meanwhile).
                "UPDATE webhook_messages m SET attempts = GREATEST(m.attempts, u.attempt), \
                        round_attempts = CASE WHEN m.next_attempt_at = u.leased \
                                              THEN m.round_attempts + 1 ELSE m.round_attempts END, \
                        status = CASE WHEN m.next_attempt_at = u.leased \
                                      THEN u.status ELSE m.status END, \
                        next_attempt_at = CASE WHEN m.next_attempt_at = u.leased \
                                               THEN u.next ELSE m.next_attempt_at END \
                   FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::timestamptz[], \
                               $6::timestamptz[]) \
                        AS u(endpoint_id, message_id, attempt, status, next, leased) \
                  WHERE m.endpoint_id = u.endpoint_id AND m.message_id = u.message_id",
            )
            .bind(&endpoints)
            .bind(&ids)
            .bind(&attempt)
            .bind(&status)
            .bind(&next)
            .bind(&leased)
            .execute(&mut *tx)
            .await?;
            let endpoints_where = |keep: fn(&Next) -> bool| -> Vec<uuid::Uuid> {
                let chosen = outcomes.iter().filter(|o| keep(&o.next));
                chosen.map(|o| o.endpoint_id).collect()
            };
            let gone = endpoints_where(|n| *n == Next::Gone);
            let ok = endpoints_where(|n| *n == Next::Delivered);
            let failed = endpoints_where(|n| !matches!(n, Next::Delivered | Next::Gone));
            sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = NULL \
                 WHERE endpoint_id = ANY($1) AND failing_since IS NOT NULL",
            )
            .bind(&ok)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, now()) \
                 WHERE endpoint_id = ANY($1) AND NOT (endpoint_id = ANY($2))",
            )
            .bind(&failed)
            .bind(&ok)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE webhook_endpoints SET enabled = FALSE, \
                        disabled_reason = 'the endpoint answered 410 Gone' \
                 WHERE endpoint_id = ANY($1) AND enabled",
            )
            .bind(&gone)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE webhook_endpoints SET enabled = FALSE, \
                        disabled_reason = 'every delivery attempt failed for ' || $2 || ' hours' \
                 WHERE endpoint_id = ANY($1) AND enabled \
                   AND failing_since <= now() - make_interval(secs => $3)",
            )
            .bind(&failed)
            .bind((disable_after.as_secs() / 3600).to_string())
            .bind(disable_after.as_secs_f64())
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        };
        self.timed(PgOp::WebhookRecord, write).await
    }

    /// Gives claimed messages back unattempted, due again at their time (behind a message of
    /// their endpoint that just failed).
    pub async fn defer_deliveries(
        &self,
        deferred: &[(uuid::Uuid, String, DateTime<Utc>)],
    ) -> Result<()> {
        if deferred.is_empty() {
            return Ok(());
        }
        let endpoints: Vec<uuid::Uuid> = deferred.iter().map(|d| d.0).collect();
        let ids: Vec<&str> = deferred.iter().map(|d| d.1.as_str()).collect();
        let due: Vec<DateTime<Utc>> = deferred.iter().map(|d| d.2).collect();
        let q = sqlx::query(
            "UPDATE webhook_messages m SET next_attempt_at = u.due \
               FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS u(endpoint_id, message_id, due) \
              WHERE m.endpoint_id = u.endpoint_id AND m.message_id = u.message_id",
        )
        .bind(&endpoints)
        .bind(&ids)
        .bind(&due)
        .execute(&self.pool);
        self.timed(PgOp::WebhookRecord, q).await?;
        Ok(())
    }

    /// Pending messages of enabled endpoints, the age of the oldest, and disabled endpoints.
    pub async fn fetch_webhook_backlog(&self) -> Result<Backlog> {
        let row: (i64, f64, i64) = {
            let q = sqlx::query_as(
                "SELECT (SELECT count(*) FROM webhook_messages m JOIN webhook_endpoints e \
                           ON e.endpoint_id = m.endpoint_id WHERE m.status = 'pending' AND e.enabled), \
                        COALESCE((SELECT extract(epoch FROM now() - min(m.created_at))::float8 \
                           FROM webhook_messages m JOIN webhook_endpoints e \
                             ON e.endpoint_id = m.endpoint_id \
                          WHERE m.status = 'pending' AND e.enabled), 0), \
                        (SELECT count(*) FROM webhook_endpoints WHERE NOT enabled)",
            )
            .fetch_one(&self.pool);
            self.timed(PgOp::Webhooks, q).await?
        };
        Ok(Backlog {
            pending: row.0,
            oldest_pending_s: row.1.max(0.0),
            endpoints_disabled: row.2,
        })
    }

    /// Deletes delivered and failed messages made more than `days` days ago, at most 10,000.
    pub async fn sweep_webhook_messages(&self, days: u32) -> Result<u64> {
        let gone = sqlx::query(
            "DELETE FROM webhook_messages WHERE (endpoint_id, message_id) IN ( \
               SELECT endpoint_id, message_id FROM webhook_messages \
                WHERE created_at < now() - make_interval(days => $1) \
                  AND status <> 'pending' LIMIT 10000)",
        )
        .bind(days as i32)
        .execute(&self.pool);
        Ok(self.timed(PgOp::SweepHistory, gone).await?.rows_affected())
    }
}
