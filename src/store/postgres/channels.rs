//! An event's sales policy in Postgres: its window and Queue-it id (`PATCH /events/{id}`), its
//! channels and the seats allocated to them (`PUT /events/{id}/channels`), and the snapshot of
//! all of it that the Redis cache is written from. Every change bumps `events.policy_version`,
//! so a cache write of an older policy never lands after a newer one.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{End, PgStore, Transaction};
use crate::domain::channels::ChannelSpec;
use crate::domain::events::EventId;
use crate::domain::policy::{EventPolicy, EventPolicyPatch, PolicySnapshot, SalesWindow};
use crate::error::{Error, Result};
use crate::telemetry::PgOp;

/// Replaces an event's channels (inside its creation or a `PUT`): seats leave their old channel
/// and join their new one; live holds and bookings are not touched. Err: seat codes that are not
/// seats of the event (then the caller rolls back).
pub(super) async fn replace_channels(
    tx: &mut PgConnection,
    event: EventId,
    channels: &[ChannelSpec],
) -> Result<Result<(), Vec<String>>> {
    sqlx::query("UPDATE seats SET channel = NULL WHERE event_id = $1 AND channel IS NOT NULL")
        .bind(event.0)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM event_channels WHERE event_id = $1")
        .bind(event.0)
        .execute(&mut *tx)
        .await?;
    for (position, c) in (1_i32..).zip(channels) {
        sqlx::query(
            "INSERT INTO event_channels (event_id, channel, position, sales_start, sales_end) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(event.0)
        .bind(&c.code)
        .bind(position)
        .bind(c.window.start)
        .bind(c.window.end)
        .execute(&mut *tx)
        .await?;
        if c.seat_codes.is_empty() {
            continue;
        }
        let found: Vec<String> = sqlx::query_scalar(
            "UPDATE seats SET channel = $2 WHERE event_id = $1 AND seat_code = ANY($3) \
             RETURNING seat_code",
        )
        .bind(event.0)
        .bind(&c.code)
        .bind(&c.seat_codes)
        .fetch_all(&mut *tx)
        .await?;
        if found.len() != c.seat_codes.len() {
            let found: std::collections::HashSet<&String> = found.iter().collect();
            let unknown = c.seat_codes.iter().filter(|s| !found.contains(s));
            return Ok(Err(unknown.cloned().collect()));
        }
    }
    Ok(Ok(()))
}

/// The event's whole policy as the cache holds it (see [`PolicySnapshot`]).
pub(super) async fn read_snapshot(
    tx: &mut PgConnection,
    event: EventId,
) -> Result<Option<PolicySnapshot>> {
    #[derive(sqlx::FromRow)]
    struct EventRow {
        sales_start: Option<DateTime<Utc>>,
        sales_end: Option<DateTime<Utc>>,
        queueit_event_id: Option<String>,
        policy_version: i64,
    }
    let row: Option<EventRow> = sqlx::query_as(
        "SELECT sales_start, sales_end, queueit_event_id, policy_version FROM events \
         WHERE event_id = $1",
    )
    .bind(event.0)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let channels = channel_windows(tx, event).await?;
    let seats: Vec<(String, String)> = sqlx::query_as(
        "SELECT seat_code, channel FROM seats WHERE event_id = $1 AND channel IS NOT NULL \
         ORDER BY position",
    )
    .bind(event.0)
    .fetch_all(&mut *tx)
    .await?;
    Ok(Some(PolicySnapshot {
        version: row.policy_version,
        policy: EventPolicy {
            window: SalesWindow {
                start: row.sales_start,
                end: row.sales_end,
            },
            queueit_event_id: row.queueit_event_id,
        },
        channels,
        seats,
    }))
}

/// The event's channels with their own bounds, in creation order.
pub(super) async fn channel_windows(
    tx: &mut PgConnection,
    event: EventId,
) -> Result<Vec<(String, SalesWindow)>> {
    #[derive(sqlx::FromRow)]
    struct ChannelRow {
        channel: String,
        sales_start: Option<DateTime<Utc>>,
        sales_end: Option<DateTime<Utc>>,
    }
    let rows: Vec<ChannelRow> = sqlx::query_as(
        "SELECT channel, sales_start, sales_end FROM event_channels WHERE event_id = $1 \
         ORDER BY position",
    )
    .bind(event.0)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let window = SalesWindow {
                start: r.sales_start,
                end: r.sales_end,
            };
            (r.channel, window)
        })
        .collect())
}

/// Applies a `PATCH /events/{id}`: Ok(the new snapshot), Err(problems) for a 400, None for an
/// unknown event.
struct PatchPolicy(EventId, EventPolicyPatch);

type Patched = Option<std::result::Result<PolicySnapshot, Vec<String>>>;

impl Transaction for PatchPolicy {
    type Output = Patched;
    const OP: PgOp = PgOp::UpdatePolicy;

    async fn run(&self, tx: &mut PgConnection) -> Result<End<Patched>> {
        let event = self.0;
        let locked: Option<i64> =
            sqlx::query_scalar("SELECT event_id FROM events WHERE event_id = $1 FOR UPDATE")
                .bind(event.0)
                .fetch_optional(&mut *tx)
                .await?;
        if locked.is_none() {
            return Ok(End::Rollback(None));
        }
        let Some(before) = read_snapshot(tx, event).await? else {
            return Ok(End::Rollback(None));
        };
        let next = match before.policy.patched(&self.1) {
            Ok(next) => next,
            Err(problems) => return Ok(End::Rollback(Some(Err(problems)))),
        };
        sqlx::query(
            "UPDATE events SET sales_start = $2, sales_end = $3, queueit_event_id = $4, \
                               policy_version = policy_version + 1 \
             WHERE event_id = $1",
        )
        .bind(event.0)
        .bind(next.window.start)
        .bind(next.window.end)
        .bind(&next.queueit_event_id)
        .execute(&mut *tx)
        .await?;
        let after = read_snapshot(tx, event).await?;
        Ok(End::Commit(after.map(Ok)))
    }
}

/// Replaces the channel set: Ok(the new snapshot), Err(unknown seat codes) for a 404, None for
/// an unknown event.
struct PutChannels(EventId, Vec<ChannelSpec>);

type Replaced = Option<std::result::Result<PolicySnapshot, Vec<String>>>;

impl Transaction for PutChannels {
    type Output = Replaced;
    const OP: PgOp = PgOp::UpdatePolicy;

    async fn run(&self, tx: &mut PgConnection) -> Result<End<Replaced>> {
        let event = self.0;
        let updated: Option<i64> = sqlx::query_scalar(
            "UPDATE events SET policy_version = policy_version + 1 WHERE event_id = $1 \
             RETURNING event_id",
        )
        .bind(event.0)
        .fetch_optional(&mut *tx)
        .await?;
        if updated.is_none() {
            return Ok(End::Rollback(None));
        }
        if let Err(unknown) = replace_channels(tx, event, &self.1).await? {
            return Ok(End::Rollback(Some(Err(unknown))));
        }
        Ok(End::Commit(read_snapshot(tx, event).await?.map(Ok)))
    }
}

/// The snapshot, read alone.
struct ReadSnapshot(EventId);

impl Transaction for ReadSnapshot {
    type Output = Option<PolicySnapshot>;
    const OP: PgOp = PgOp::FetchEvent;

    async fn run(&self, tx: &mut PgConnection) -> Result<End<Option<PolicySnapshot>>> {
        Ok(End::Commit(read_snapshot(tx, self.0).await?))
    }
}

impl PgStore {
    /// Changes an event's window and Queue-it id (see [`PatchPolicy`]).
    pub async fn patch_policy(
        &self,
        event: EventId,
        patch: EventPolicyPatch,
    ) -> Result<PolicySnapshot> {
        match self.execute(PatchPolicy(event, patch)).await? {
            None => Err(Error::EventNotFound),
            Some(Err(problems)) => Err(Error::Validation(problems.join("; "))),
            Some(Ok(snapshot)) => Ok(snapshot),
        }
    }

    /// Replaces an event's channels (see [`PutChannels`]).
    pub async fn put_channels(
        &self,
        event: EventId,
        channels: Vec<ChannelSpec>,
    ) -> Result<PolicySnapshot> {
        match self.execute(PutChannels(event, channels)).await? {
            None => Err(Error::EventNotFound),
            Some(Err(seats)) => Err(Error::SeatsNotFound { seats }),
            Some(Ok(snapshot)) => Ok(snapshot),
        }
    }

    /// The event's policy now (None: no such event).
    pub async fn fetch_policy(&self, event: EventId) -> Result<Option<PolicySnapshot>> {
        self.execute(ReadSnapshot(event)).await
    }
}
