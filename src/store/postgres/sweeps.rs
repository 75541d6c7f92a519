//! The sweep of expired Postgres holds: a hold whose `held_until` passed is ignored at once (the
//! Postgres clock decides) and its rows deleted here later, in batches that never wait for a
//! lock.

use sqlx::PgConnection;

use super::{End, PgStore, Transaction};
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
