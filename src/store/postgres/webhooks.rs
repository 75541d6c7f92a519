//! Webhooks in Postgres: endpoints, and the outbox of messages (one row per message and endpoint,
//! queued by the history flush in the transaction that numbers the changes). Deliveries are
//! [`super::webhook_deliveries`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, QueryBuilder};

use super::PgStore;
use super::history::from_ms;
use crate::domain::events::EventId;
use crate::domain::webhooks::{Endpoint, EndpointChange, Message, NewEndpoint};
use crate::error::Result;
use crate::telemetry::PgOp;

/// How many retired secrets sign beside the current one at most (each for 24 h after its
/// rotation): a message carries at most this many + 1 signatures however often an admin rotates.
pub const RETIRED_KEPT: i64 = 4;

/// Queues each message for every endpoint that wants its type and event (enabled or not: a
/// re-enabled endpoint gets what queued while it was off).
pub(super) async fn queue_messages(
    tx: &mut PgConnection,
    event: EventId,
    messages: &[Message],
) -> Result<u64> {
    if messages.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = messages.iter().map(|m| m.id.as_str()).collect();
    let kinds: Vec<&str> = messages.iter().map(|m| m.kind).collect();
    let seqs: Vec<i64> = messages.iter().map(|m| m.seq).collect();
    let bodies: Vec<&str> = messages.iter().map(|m| m.body.as_str()).collect();
    let made: Vec<DateTime<Utc>> = messages.iter().map(|m| from_ms(m.created_at_ms)).collect();
    let traces: Vec<Option<&str>> = messages.iter().map(|m| m.traceparent.as_deref()).collect();
    let queued = sqlx::query(
        "INSERT INTO webhook_messages (endpoint_id, message_id, event_id, type, seq, body, \
                                       created_at, next_attempt_at, traceparent) \
         SELECT e.endpoint_id, m.id, $1, m.type, m.seq, m.body, m.made, now(), m.tp \
           FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::timestamptz[], \
                       $7::text[]) AS m(id, type, seq, body, made, tp) \
           JOIN webhook_endpoints e ON (e.types IS NULL OR m.type = ANY(e.types)) \
                                   AND (e.event_ids IS NULL OR $1 = ANY(e.event_ids))",
    )
    .bind(event.0)
    .bind(&ids)
    .bind(&kinds)
    .bind(&seqs)
    .bind(&bodies)
    .bind(&made)
    .bind(&traces)
    .execute(&mut *tx)
    .await?;
    Ok(queued.rows_affected())
}

#[derive(sqlx::FromRow)]
struct EndpointRow {
    endpoint_id: uuid::Uuid,
    url: String,
    types: Option<Vec<String>>,
    event_ids: Option<Vec<i64>>,
    description: String,
    enabled: bool,
    disabled_reason: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<EndpointRow> for Endpoint {
    fn from(r: EndpointRow) -> Self {
        Endpoint {
            id: r.endpoint_id,
            url: r.url,
            types: r.types,
            event_ids: r.event_ids,
            description: r.description,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            created_at_ms: r.created_at.timestamp_millis(),
        }
    }
}

macro_rules! endpoint_columns {
    () => {
        "endpoint_id, url, types, event_ids, description, enabled, disabled_reason, created_at"
    };
}

impl PgStore {
    pub async fn insert_endpoint(&self, new: &NewEndpoint, secret: &str) -> Result<Endpoint> {
        let row = sqlx::query_as::<_, EndpointRow>(concat!(
            "INSERT INTO webhook_endpoints (endpoint_id, url, types, event_ids, description, secret) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
            endpoint_columns!()
        ))
        .bind(uuid::Uuid::new_v4())
        .bind(&new.url)
        .bind(&new.types)
        .bind(&new.event_ids)
        .bind(&new.description)
        .bind(secret)
        .fetch_one(&self.pool);
        Ok(self.timed(PgOp::Webhooks, row).await?.into())
    }

    pub async fn fetch_endpoints(&self) -> Result<Vec<Endpoint>> {
        let rows = sqlx::query_as::<_, EndpointRow>(concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM webhook_endpoints ORDER BY created_at, endpoint_id"
        ))
        .fetch_all(&self.pool);
        let rows = self.timed(PgOp::Webhooks, rows).await?;
        Ok(rows.into_iter().map(Endpoint::from).collect())
    }

    pub async fn fetch_endpoint(&self, id: uuid::Uuid) -> Result<Option<Endpoint>> {
        let row = sqlx::query_as::<_, EndpointRow>(concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM webhook_endpoints WHERE endpoint_id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool);
        Ok(self.timed(PgOp::Webhooks, row).await?.map(Endpoint::from))
    }

    /// Applies a change; enabling an endpoint clears why it was disabled and its failure clock.
    pub async fn update_endpoint(
        &self,
        id: uuid::Uuid,
        change: &EndpointChange,
    ) -> Result<Option<Endpoint>> {
        let mut q = QueryBuilder::new("UPDATE webhook_endpoints SET endpoint_id = endpoint_id");
        if let Some(url) = &change.url {
            q.push(", url = ").push_bind(url);
        }
        if let Some(types) = &change.types {
            q.push(", types = ").push_bind(types);
        }
        if let Some(ids) = &change.event_ids {
            q.push(", event_ids = ").push_bind(ids);
        }
        if let Some(d) = &change.description {
            q.push(", description = ").push_bind(d);
        }
        match change.enabled {
            Some(true) => {
                q.push(", enabled = TRUE, disabled_reason = NULL, failing_since = NULL");
            }
            Some(false) => {
                q.push(", enabled = FALSE, disabled_reason = 'disabled by an administrator'");
            }
            None => {}
        }
        q.push(" WHERE endpoint_id = ").push_bind(id);
        q.push(concat!(" RETURNING ", endpoint_columns!()));
        let row = q.build_query_as::<EndpointRow>().fetch_optional(&self.pool);
        Ok(self.timed(PgOp::Webhooks, row).await?.map(Endpoint::from))
    }

    pub async fn delete_endpoint(&self, id: uuid::Uuid) -> Result<bool> {
        let gone = sqlx::query("DELETE FROM webhook_endpoints WHERE endpoint_id = $1")
            .bind(id)
            .execute(&self.pool);
        Ok(self.timed(PgOp::Webhooks, gone).await?.rows_affected() == 1)
    }

    /// A new secret; the old one keeps signing (beside it) for `overlap`, as do the ones retired
    /// before it whose overlap has not ended (the latest [`RETIRED_KEPT`] of them).
    pub async fn rotate_secret(
        &self,
        id: uuid::Uuid,
        secret: &str,
        overlap: Duration,
    ) -> Result<Option<Endpoint>> {
        let row = sqlx::query_as::<_, EndpointRow>(concat!(
            "UPDATE webhook_endpoints SET previous_secret = secret, secret = $2, \
                    previous_until = now() + make_interval(secs => $3), \
                    retired = ( \
                      SELECT COALESCE(jsonb_agg(r ORDER BY (r->>'until')::timestamptz DESC), '[]') \
                        FROM (SELECT r FROM jsonb_array_elements(retired || jsonb_build_object( \
                                'secret', secret, 'until', now() + make_interval(secs => $3))) r \
                               WHERE (r->>'until')::timestamptz > now() \
                               ORDER BY (r->>'until')::timestamptz DESC LIMIT $4) AS kept) \
             WHERE endpoint_id = $1 RETURNING ",
            endpoint_columns!()
        ))
        .bind(id)
        .bind(secret)
        .bind(overlap.as_secs_f64())
        .bind(RETIRED_KEPT)
        .fetch_optional(&self.pool);
        Ok(self.timed(PgOp::Webhooks, row).await?.map(Endpoint::from))
    }
}
