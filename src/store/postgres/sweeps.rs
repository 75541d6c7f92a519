//! The sweep of expired Postgres holds: a hold whose `held_until` passed is ignored at once (the
//! Postgres clock decides) and its rows deleted here later, in batches that never wait for a
//! lock. And the live ones, read for copying into Redis after an outage.

use sqlx::PgConnection;

use std::time::Duration;

use super::{End, PgStore, Transaction, tiers};
use crate::domain::events::EventId;
use crate::domain::holds::{HoldGroupId, LiveHold};
use crate::error::{Error, Result};
use crate::telemetry::PgOp;

/// Deletes expired holds in batches that skip rows other transactions hold; the seats and tier
/// units freed.
struct SweepExpiredHolds;

impl Transaction for SweepExpiredHolds {
    type Output = u64;
    const OP: PgOp = PgOp::SweepHolds;

    async fn run(&self, tx: &mut PgConnection) -> Result<End<u64>> {
        // The sweeper must never make a hold wait behind it: it skips locked rows, and gives up
        // on any other lock it cannot take at once (the next tick tries again).
        sqlx::query("SET LOCAL lock_timeout = '50ms'")
            .execute(&mut *tx)
            .await?;
        let seats = sqlx::query(
            "DELETE FROM held_seats WHERE ctid = ANY(ARRAY( \
               SELECT ctid FROM held_seats WHERE held_until <= now() \
               LIMIT 1000 FOR UPDATE SKIP LOCKED)) \
             AND held_until <= now()",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let units: i64 = sqlx::query_scalar(
            "WITH gone AS (DELETE FROM held_tiers WHERE ctid = ANY(ARRAY( \
               SELECT ctid FROM held_tiers WHERE held_until <= now() \
               LIMIT 1000 FOR UPDATE SKIP LOCKED)) \
             AND held_until <= now() RETURNING quantity) \
             SELECT COALESCE(sum(quantity), 0)::bigint FROM gone",
        )
        .fetch_one(&mut *tx)
        .await?;
        let seats = seats + units.max(0) as u64;
        sqlx::query(
            "DELETE FROM holds WHERE ctid = ANY(ARRAY( \
               SELECT ctid FROM holds WHERE held_until <= now() \
               LIMIT 1000 FOR UPDATE SKIP LOCKED)) \
             AND held_until <= now()",
        )
        .execute(&mut *tx)
        .await?;
        Ok(End::Commit(seats))
    }
}

impl PgStore {
    /// Deletes expired Postgres holds; returns the number of seats freed. A lock it could not
    /// take at once (a hold has the row) is not a failure: the next sweep tries again.
    pub async fn sweep_expired_holds(&self) -> Result<u64> {
        match self.execute(SweepExpiredHolds).await {
            // 55P03 lock_not_available
            Err(Error::Postgres(sqlx::Error::Database(db)))
                if db.code().as_deref() == Some("55P03") =>
            {
                Ok(0)
            }
            other => other,
        }
    }
}

impl PgStore {
    /// Live Postgres holds with more than a second left, for copying into Redis after an
    /// outage.
    pub async fn fetch_live_holds(&self) -> Result<Vec<LiveHold>> {
        #[derive(sqlx::FromRow)]
        struct LiveRow {
            event_id: i64,
            hold_group_id: uuid::Uuid,
            user_id: String,
            seat_codes: Vec<String>,
            tier_codes: Vec<String>,
            tier_quantities: Vec<i32>,
            pools: Vec<String>,
            ms: f64,
            admission: Option<String>,
        }
        let rows = sqlx::query_as::<_, LiveRow>(
            "SELECT event_id, hold_group_id, user_id, seat_codes, tier_codes, tier_quantities, \
                    (SELECT COALESCE(array_agg(t.tier_code || ' ' || t.channel_units), '{}') \
                       FROM held_tiers t WHERE t.event_id = h.event_id \
                        AND t.hold_group_id = h.hold_group_id AND t.channel_units <> '') \
                      AS pools, \
                    (extract(epoch FROM held_until - now()) * 1000)::float8 AS ms, admission \
             FROM holds h WHERE held_until > now() + interval '1 second' LIMIT 100000",
        )
        .fetch_all(&self.pool);
        let rows = self.timed(PgOp::FetchLiveHolds, rows).await?;
        Ok(rows
            .into_iter()
            .map(|r| LiveHold {
                event: EventId(r.event_id),
                id: HoldGroupId(r.hold_group_id),
                user_id: r.user_id,
                seats: r.seat_codes,
                tiers: tiers::lines(r.tier_codes, r.tier_quantities),
                pools: r
                    .pools
                    .iter()
                    .filter_map(|l| l.split_once(' '))
                    .map(|(c, p)| (c.to_string(), p.to_string()))
                    .collect(),
                ttl: Duration::from_millis(r.ms.max(1.0) as u64),
                admission: r.admission,
            })
            .collect())
    }
}
