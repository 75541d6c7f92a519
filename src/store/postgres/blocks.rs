//! Blocked seats in Postgres, the truth: `seats.blocked_reason`. Blocking locks the seat rows
//! and is refused while one is sold or held in Postgres; both ways record the change in the
//! history in the same transaction.

use sqlx::PgConnection;

use super::history::{self, HoldRows};
use super::{End, PgStore, Transaction};
use crate::domain::events::EventId;
use crate::domain::history::Change;
use crate::domain::holds::HoldGroupId;
use crate::error::Result;
use crate::telemetry::PgOp;

/// What a block or unblock found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockOutcome {
    /// Done; these seats changed (the others were blocked, or free, already).
    Done(Vec<String>),
    /// These codes are not seats of the event; nothing changed.
    Unknown(Vec<String>),
    /// These seats are sold or held in Postgres; nothing changed.
    Taken(Vec<String>),
}

struct BlockSeats {
    event: EventId,
    codes: Vec<String>,
    /// Some: block, with this reason; None: unblock.
    reason: Option<String>,
    actor: String,
    /// Whether the history rows are written (`history.enabled`).
    record: bool,
}

impl Transaction for BlockSeats {
    type Output = BlockOutcome;
    const OP: PgOp = PgOp::BlockSeats;

    async fn run(&self, tx: &mut PgConnection) -> Result<End<BlockOutcome>> {
        let event = self.event.0;
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT seat_code FROM seats WHERE event_id = $1 AND seat_code = ANY($2) \
             ORDER BY seat_code FOR UPDATE",
        )
        .bind(event)
        .bind(&self.codes)
        .fetch_all(&mut *tx)
        .await?;
        let in_order = |set: &[String]| -> Vec<String> {
            self.codes
                .iter()
                .filter(|c| set.contains(c))
                .cloned()
                .collect()
        };
        if found.len() != self.codes.len() {
            let unknown = self.codes.iter().filter(|c| !found.contains(c)).cloned();
            return Ok(End::Rollback(BlockOutcome::Unknown(unknown.collect())));
        }
        let changed: Vec<String> = match &self.reason {
            Some(reason) => {
                let taken: Vec<String> = sqlx::query_scalar(
                    "SELECT seat_code FROM booking_seats \
                      WHERE event_id = $1 AND seat_code = ANY($2) AND active \
                     UNION \
                     SELECT seat_code FROM held_seats \
                      WHERE event_id = $1 AND seat_code = ANY($2) AND held_until > now()",
                )
                .bind(event)
                .bind(&self.codes)
                .fetch_all(&mut *tx)
                .await?;
                if !taken.is_empty() {
                    return Ok(End::Rollback(BlockOutcome::Taken(in_order(&taken))));
                }
                sqlx::query_scalar(
                    "UPDATE seats SET blocked_reason = $3 \
                      WHERE event_id = $1 AND seat_code = ANY($2) AND blocked_reason IS NULL \
                     RETURNING seat_code",
                )
                .bind(event)
                .bind(&self.codes)
                .bind(reason)
                .fetch_all(&mut *tx)
                .await?
            }
            None => {
                sqlx::query_scalar(
                    "UPDATE seats SET blocked_reason = NULL \
                      WHERE event_id = $1 AND seat_code = ANY($2) AND blocked_reason IS NOT NULL \
                     RETURNING seat_code",
                )
                .bind(event)
                .bind(&self.codes)
                .fetch_all(&mut *tx)
                .await?
            }
        };
        let changed = in_order(&changed);
        if self.record && !changed.is_empty() {
            let rows = HoldRows {
                change: if self.reason.is_some() {
                    Change::Blocked
                } else {
                    Change::Unblocked
                },
                hold: HoldGroupId(uuid::Uuid::nil()),
                user_id: &self.actor,
                seats: &changed,
                tiers: &[],
                expires_at: None,
            };
            history::insert_hold_rows(tx, self.event, rows).await?;
        }
        Ok(End::Commit(BlockOutcome::Done(changed)))
    }
}

impl PgStore {
    /// Blocks seats (`reason` Some) or unblocks them (None), all or nothing (see
    /// [`BlockSeats`]).
    pub async fn block_seats(
        &self,
        event: EventId,
        codes: &[String],
        reason: Option<&str>,
        actor: &str,
    ) -> Result<BlockOutcome> {
        self.execute(BlockSeats {
            event,
            codes: codes.to_vec(),
            reason: reason.map(str::to_string),
            actor: actor.to_string(),
            record: self.record,
        })
        .await
    }
}
