//! The per-buyer caps in Postgres: what a buyer holds and has bought in one event, counted
//! under a per-buyer lock so that two of its holds or confirms cannot both pass a cap that only
//! one fits under.

use sqlx::PgConnection;

use crate::domain::events::EventId;
use crate::domain::holds::{Caps, HoldAttempt, HoldGroupId};
use crate::domain::tiers::{TierLine, units};
use crate::error::{Result, UserLimitKind};

/// What a hold asks for, as the caps count it.
pub(super) struct Asked<'a> {
    pub event: EventId,
    /// The hold being taken: its own rows (written just before the count) are what it asks for.
    pub hold: HoldGroupId,
    pub user_id: &'a str,
    pub seats: usize,
    pub tiers: &'a [TierLine],
}

/// The cap a hold would pass, counted under the buyer's lock: live holds, and live held plus
/// confirmed seats and tier units of the event.
pub(super) async fn over_caps(
    tx: &mut PgConnection,
    asked: &Asked<'_>,
    caps: Caps,
) -> Result<Option<HoldAttempt>> {
    if !caps.any() {
        return Ok(None);
    }
    let (holds, held, sold): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM holds \
                      WHERE event_id = $1 AND user_id = $2 AND held_until > now() \
                        AND hold_group_id <> $3), \
                    (SELECT count(*) FROM held_seats s JOIN holds h \
                       ON h.event_id = s.event_id AND h.hold_group_id = s.hold_group_id \
                      WHERE s.event_id = $1 AND h.user_id = $2 AND s.held_until > now() \
                        AND s.hold_group_id <> $3) \
                    + (SELECT COALESCE(sum(t.quantity), 0) FROM held_tiers t JOIN holds h \
                       ON h.event_id = t.event_id AND h.hold_group_id = t.hold_group_id \
                      WHERE t.event_id = $1 AND h.user_id = $2 AND t.held_until > now() \
                        AND t.hold_group_id <> $3), \
                    (SELECT count(*) FROM booking_seats s JOIN bookings b \
                       ON b.event_id = s.event_id AND b.booking_group_id = s.booking_group_id \
                      WHERE s.event_id = $1 AND b.user_id = $2 AND s.active) \
                    + (SELECT COALESCE(sum(t.quantity), 0) FROM booking_tiers t JOIN bookings b \
                       ON b.event_id = t.event_id AND b.booking_group_id = t.booking_group_id \
                      WHERE t.event_id = $1 AND b.user_id = $2 AND t.active)",
    )
    .bind(asked.event.0)
    .bind(asked.user_id)
    .bind(asked.hold.0)
    .fetch_one(&mut *tx)
    .await?;
    let count = |n: i64| n.clamp(0, i64::from(u32::MAX)) as u32;
    if let Some(max) = caps.max_live_holds
        && holds + 1 > i64::from(max)
    {
        let (limit, current) = (UserLimitKind::LiveHolds, count(holds));
        return Ok(Some(HoldAttempt::UserLimit {
            limit,
            max,
            current,
        }));
    }
    let units = tier_units(asked.seats, asked.tiers);
    if let Some(max) = caps.max_seats
        && held + sold + units > i64::from(max)
    {
        let (limit, current) = (UserLimitKind::Seats, count(held + sold));
        return Ok(Some(HoldAttempt::UserLimit {
            limit,
            max,
            current,
        }));
    }
    Ok(None)
}

/// Serialises one buyer's holds and confirms of one event (a transaction-scoped advisory lock),
/// so two of them cannot both pass a cap that only one fits under.
pub(super) async fn lock_buyer(tx: &mut PgConnection, event: EventId, user_id: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text || ':' || $2, 0))")
        .bind(event.0)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Seats plus tier units, as the caps count them.
pub(super) fn tier_units(seats: usize, lines: &[TierLine]) -> i64 {
    i64::try_from(units(seats, lines)).unwrap_or(i64::MAX)
}
