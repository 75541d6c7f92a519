//! Extending a Postgres hold: its row locked, its limits checked by the Postgres clock, then the
//! hold and every seat and tier line of it run again until the same instant.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::history::{self, HoldRows};
use super::{End, PgStore, Transaction, tiers};
use crate::domain::events::EventId;
use crate::domain::extend::{ExtendLimits, ExtendOutcome};
use crate::domain::history::Change;
use crate::domain::holds::HoldGroupId;
use crate::error::{HoldCap, Result};
use crate::telemetry::PgOp;

struct ExtendHold {
    event: EventId,
    id: HoldGroupId,
    user_id: String,
    ttl: Duration,
    limits: ExtendLimits,
    /// Whether the history rows are written (`history.enabled`).
    record: bool,
}

impl Transaction for ExtendHold {
    type Output = ExtendOutcome;
    const OP: PgOp = PgOp::Extend;

    async fn run(&self, tx: &mut PgConnection) -> Result<End<ExtendOutcome>> {
        type Row = (
            String,
            bool,
            i32,
            DateTime<Utc>,
            DateTime<Utc>,
            DateTime<Utc>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT user_id, held_until > now(), renewals, held_until, \
                    created_at + make_interval(secs => $4::double precision), \
                    GREATEST(held_until, LEAST(now() + make_interval(secs => $3::double precision / 1000), \
                             created_at + make_interval(secs => $4::double precision))) \
             FROM holds WHERE event_id = $1 AND hold_group_id = $2 FOR UPDATE",
        )
        .bind(self.event.0)
        .bind(self.id.0)
        .bind(self.ttl.as_millis() as i64)
        .bind(self.limits.max_lifetime_seconds as i64)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((owner, alive, renewals, until, last, next)) = row else {
            return Ok(End::Rollback(ExtendOutcome::Gone));
        };
        let renewals = renewals.max(0) as u32;
        // An expired hold is gone to everyone (410), as in Redis, where it no longer exists.
        let refused = if !alive {
            Some(ExtendOutcome::Gone)
        } else if owner != self.user_id {
            Some(ExtendOutcome::NotOwner)
        } else if renewals >= self.limits.max_renewals {
            Some(ExtendOutcome::Limit(HoldCap::Renewals))
        } else if last <= until {
            // The hold already runs to the end of its life.
            Some(ExtendOutcome::Limit(HoldCap::Lifetime))
        } else {
            None
        };
        if let Some(refused) = refused {
            return Ok(End::Rollback(refused));
        }
        for sql in [
            "UPDATE holds SET held_until = $3, renewals = renewals + 1 \
             WHERE event_id = $1 AND hold_group_id = $2",
            "UPDATE held_seats SET held_until = $3 WHERE event_id = $1 AND hold_group_id = $2",
            "UPDATE held_tiers SET held_until = $3 WHERE event_id = $1 AND hold_group_id = $2",
        ] {
            sqlx::query(sql)
                .bind(self.event.0)
                .bind(self.id.0)
                .bind(next)
                .execute(&mut *tx)
                .await?;
        }
        let (seats, codes, quantities): (Vec<String>, Vec<String>, Vec<i32>) = sqlx::query_as(
            "SELECT seat_codes, tier_codes, tier_quantities FROM holds \
             WHERE event_id = $1 AND hold_group_id = $2",
        )
        .bind(self.event.0)
        .bind(self.id.0)
        .fetch_one(&mut *tx)
        .await?;
        let rows = HoldRows {
            change: Change::Extended,
            hold: self.id,
            user_id: &self.user_id,
            seats: &seats,
            tiers: &tiers::lines(codes, quantities),
            expires_at: Some(next),
        };
        if self.record {
            history::insert_hold_rows(tx, self.event, rows).await?;
        }
        Ok(End::Commit(ExtendOutcome::Extended {
            expires_at_ms: next.timestamp_millis(),
            renewals_left: self.limits.max_renewals - renewals - 1,
        }))
    }
}

impl PgStore {
    /// Extends a live Postgres hold of `user_id` (see [`ExtendHold`]).
    pub async fn extend_hold(
        &self,
        event: EventId,
        id: HoldGroupId,
        user_id: &str,
        ttl: Duration,
        limits: ExtendLimits,
    ) -> Result<ExtendOutcome> {
        self.execute(ExtendHold {
            event,
            id,
            user_id: user_id.to_string(),
            ttl,
            limits,
            record: self.record,
        })
        .await
    }
}
