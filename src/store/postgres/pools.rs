//! Tier units allocated to sales channels, in a Postgres hold (the fallback and the
//! Postgres-only mode): the same rule as `lua/pools_take.lua` (`domain::channels::plan_units`),
//! decided under the tier rows' locks that [`super::tiers::lock_tiers`] took, with the Postgres
//! clock. Each allocation's use is summed from the channel parts of live holds and active
//! bookings (`channel_units`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::policy::EventPolicyNow;
use crate::domain::channels::{Allocation, format_units, plan_units};
use crate::domain::events::EventId;
use crate::domain::holds::HoldGroupId;
use crate::domain::policy::{HoldCaller, SalesWindow, WindowState};
use crate::domain::tiers::TierLine;
use crate::error::{Result, TierShortage};

/// A channel's allocation of a requested tier, with the channel's window and the units of it
/// sold or held by other live holds.
#[derive(sqlx::FromRow)]
struct AllocationRow {
    tier_code: String,
    channel: String,
    quantity: i32,
    sales_start: Option<DateTime<Utc>>,
    sales_end: Option<DateTime<Utc>>,
    used: i64,
}

/// What the channels decide of a hold's tier units.
#[derive(Debug, Default)]
pub(super) struct PoolPlan {
    /// (tier code, channel part) of the units to take from allocations.
    pub parts: Vec<(String, String)>,
    /// Tiers with fewer units this caller may take than asked (these replace the totals'
    /// shortages of the same tiers).
    pub short: Vec<TierShortage>,
    /// Tiers whose units are decided here (they have allocations).
    pub decided: Vec<String>,
    /// Whether the caller may take units of every requested tier from its own channels'
    /// allocations now (then the event's window is not asked of the hold's tier units).
    pub own_open: bool,
}

/// Plans the channel parts of a hold of `wanted` (`left`: each tier's units left over all for
/// this hold, from `lock_tiers`).
pub(super) async fn plan(
    tx: &mut PgConnection,
    event: EventId,
    id: HoldGroupId,
    sales: &EventPolicyNow,
    caller: &HoldCaller,
    wanted: &[TierLine],
    left: &HashMap<String, i64>,
) -> Result<PoolPlan> {
    if wanted.is_empty() {
        return Ok(PoolPlan::default());
    }
    let codes: Vec<String> = wanted.iter().map(|l| l.code.clone()).collect();
    let rows: Vec<AllocationRow> = sqlx::query_as(
        "WITH used AS ( \
           SELECT tier_code, split_part(part, '=', 1) AS channel, \
                  sum(split_part(part, '=', 2)::bigint) AS units \
             FROM (SELECT tier_code, unnest(string_to_array(channel_units, ',')) AS part \
                     FROM booking_tiers \
                    WHERE event_id = $1 AND tier_code = ANY($2) AND active \
                      AND channel_units <> '' \
                   UNION ALL \
                   SELECT tier_code, unnest(string_to_array(channel_units, ',')) \
                     FROM held_tiers \
                    WHERE event_id = $1 AND tier_code = ANY($2) AND held_until > now() \
                      AND hold_group_id <> $3 AND channel_units <> '') AS p \
            GROUP BY 1, 2) \
         SELECT a.tier_code, a.channel, a.quantity, c.sales_start, c.sales_end, \
                COALESCE(u.units, 0)::bigint AS used \
           FROM channel_tiers a \
           JOIN event_channels c ON c.event_id = a.event_id AND c.channel = a.channel \
           LEFT JOIN used u ON u.tier_code = a.tier_code AND u.channel = a.channel \
          WHERE a.event_id = $1 AND a.tier_code = ANY($2) \
          ORDER BY c.position",
    )
    .bind(event.0)
    .bind(&codes)
    .bind(id.0)
    .fetch_all(&mut *tx)
    .await?;
    let mut out = PoolPlan::default();
    if rows.is_empty() {
        return Ok(out);
    }
    let open_usable = sales.window.state(sales.now) == WindowState::Open;
    let mut all_own = !caller.box_office;
    for line in wanted {
        let allocations: Vec<Allocation> = rows
            .iter()
            .filter(|r| r.tier_code == line.code)
            .map(|r| {
                let window = SalesWindow {
                    start: r.sales_start,
                    end: r.sales_end,
                }
                .within(sales.window);
                let usable = caller.box_office
                    || (caller.channels.contains(&r.channel)
                        && window.state(sales.now) == WindowState::Open);
                Allocation {
                    channel: r.channel.clone(),
                    left: (i64::from(r.quantity) - r.used).clamp(0, i64::from(u32::MAX)) as u32,
                    usable,
                }
            })
            .collect();
        all_own &= allocations.iter().any(|a| a.usable);
        if allocations.is_empty() {
            continue;
        }
        out.decided.push(line.code.clone());
        let free = left
            .get(&line.code)
            .copied()
            .unwrap_or(0)
            .clamp(0, i64::from(u32::MAX)) as u32;
        match plan_units(
            free,
            &allocations,
            open_usable,
            caller.box_office,
            line.quantity,
        ) {
            Ok(parts) if !parts.is_empty() => {
                out.parts.push((line.code.clone(), format_units(&parts)));
            }
            Ok(_) => {}
            Err(available) => out.short.push(TierShortage {
                code: line.code.clone(),
                requested: line.quantity,
                available,
            }),
        }
    }
    out.own_open = all_own;
    Ok(out)
}
