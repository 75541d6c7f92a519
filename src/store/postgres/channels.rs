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

/// Why a channel set could not be stored (the caller rolls back).
#[derive(Debug)]
pub(super) enum ChannelRefusal {
    /// Seat codes that are not seats of the event.
    UnknownSeats(Vec<String>),
    /// Tier codes that are not tiers of the event.
    UnknownTiers(Vec<String>),
    /// Tiers whose allocations over all channels pass their capacity.
    OverCapacity(Vec<String>),
}

impl ChannelRefusal {
    /// The refusal as an error: a 404 for unknown codes, else a 400.
    pub(super) fn into_error(self) -> Error {
        match self {
            ChannelRefusal::UnknownSeats(seats) => Error::SeatsNotFound { seats },
            ChannelRefusal::UnknownTiers(tiers) => Error::TiersNotFound { tiers },
            ChannelRefusal::OverCapacity(problems) => Error::Validation(problems.join("; ")),
        }
    }
}

/// Replaces an event's channels (inside its creation or a `PUT`): seats leave their old channel
/// and join their new one, tier allocations are replaced; live holds and bookings are not
/// touched (units a hold or booking took from an allocation stay counted against its channel).
pub(super) async fn replace_channels(
    tx: &mut PgConnection,
    event: EventId,
    channels: &[ChannelSpec],
) -> Result<Result<(), ChannelRefusal>> {
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
            return Ok(Err(ChannelRefusal::UnknownSeats(
                unknown.cloned().collect(),
            )));
        }
    }
    allocate_tiers(tx, event, channels).await
}

/// Writes the channels' tier allocations (the channels' rows are in place): every code a tier
/// of the event, and each tier's allocations together within its capacity.
async fn allocate_tiers(
    tx: &mut PgConnection,
    event: EventId,
    channels: &[ChannelSpec],
) -> Result<Result<(), ChannelRefusal>> {
    let mut chans = Vec::new();
    let mut codes = Vec::new();
    let mut units = Vec::new();
    for c in channels {
        for line in &c.tiers {
            chans.push(c.code.clone());
            codes.push(line.code.clone());
            units.push(i32::try_from(line.quantity).unwrap_or(i32::MAX));
        }
    }
    if codes.is_empty() {
        return Ok(Ok(()));
    }
    let capacities: Vec<(String, i32)> = sqlx::query_as(
        "SELECT tier_code, capacity FROM tiers WHERE event_id = $1 AND tier_code = ANY($2)",
    )
    .bind(event.0)
    .bind(&codes)
    .fetch_all(&mut *tx)
    .await?;
    let mut unknown: Vec<String> = Vec::new();
    let mut over = Vec::new();
    for code in &codes {
        match capacities.iter().find(|(c, _)| c == code) {
            None => {
                if !unknown.contains(code) {
                    unknown.push(code.clone());
                }
            }
            Some((_, capacity)) => {
                let total: i64 = codes
                    .iter()
                    .zip(&units)
                    .filter(|(c, _)| *c == code)
                    .map(|(_, q)| i64::from(*q))
                    .sum();
                let sentence = format!(
                    "tier {code}: channels are allocated {total} units, more than its capacity {capacity}"
                );
                if total > i64::from(*capacity) && !over.contains(&sentence) {
                    over.push(sentence);
                }
            }
        }
    }
    if !unknown.is_empty() {
        return Ok(Err(ChannelRefusal::UnknownTiers(unknown)));
    }
    if !over.is_empty() {
        return Ok(Err(ChannelRefusal::OverCapacity(over)));
    }
    sqlx::query(
        "INSERT INTO channel_tiers (event_id, channel, tier_code, quantity) \
         SELECT $1, ch, c, q FROM unnest($2::text[], $3::text[], $4::int[]) AS u(ch, c, q)",
    )
    .bind(event.0)
    .bind(&chans)
    .bind(&codes)
    .bind(&units)
    .execute(&mut *tx)
    .await?;
    Ok(Ok(()))
}

/// Every tier allocation of the event: (channel, tier code, units), channels in creation order.
async fn read_allocations(
    tx: &mut PgConnection,
    event: EventId,
) -> Result<Vec<(String, String, u32)>> {
    let rows: Vec<(String, String, i32)> = sqlx::query_as(
        "SELECT a.channel, a.tier_code, a.quantity FROM channel_tiers a \
         JOIN event_channels c ON c.event_id = a.event_id AND c.channel = a.channel \
         JOIN tiers t ON t.event_id = a.event_id AND t.tier_code = a.tier_code \
         WHERE a.event_id = $1 ORDER BY c.position, t.position",
    )
    .bind(event.0)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(ch, code, q)| (ch, code, q.max(0) as u32))
        .collect())
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
    let tiers = read_allocations(tx, event).await?;
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
        tiers,
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

/// Replaces the channel set: Ok(the new snapshot), Err(why not), None for an unknown event.
struct PutChannels(EventId, Vec<ChannelSpec>);

type Replaced = Option<std::result::Result<PolicySnapshot, ChannelRefusal>>;

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
        if let Err(refusal) = replace_channels(tx, event, &self.1).await? {
            return Ok(End::Rollback(Some(Err(refusal))));
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
            Some(Err(refusal)) => Err(refusal.into_error()),
            Some(Ok(snapshot)) => Ok(snapshot),
        }
    }

    /// The event's policy now (None: no such event).
    pub async fn fetch_policy(&self, event: EventId) -> Result<Option<PolicySnapshot>> {
        self.execute(ReadSnapshot(event)).await
    }
}
