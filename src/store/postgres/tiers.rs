//! Tiers in Postgres: the guard of general admission. A tier row's `sold` is changed only inside
//! the transactions that sell or give back units, under a lock on that row, and can never pass
//! its capacity (`tiers_sold_within_capacity`). Postgres holds of units are `held_tiers` rows.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::PgStore;
use crate::domain::bookings::BookedTier;
use crate::domain::events::EventId;
use crate::domain::holds::HoldGroupId;
use crate::domain::tiers::{TierLine, TierState};
use crate::error::{Result, TierShortage};
use crate::telemetry::PgOp;

/// What locking the tier rows of a request found.
#[derive(Debug, Default)]
pub(super) struct TierCheck {
    /// Codes that are not tiers of the event.
    pub unknown: Vec<String>,
    /// Tiers with fewer units left than asked for (sold, or held in Postgres by other holds).
    pub short: Vec<TierShortage>,
    /// Unit price of every known requested tier.
    pub prices: HashMap<String, i64>,
    /// Units left over all of every known requested tier, for this hold or booking.
    pub left: HashMap<String, i64>,
}

/// A tier row as a request for units sees it: its price, capacity, units sold, and units held by
/// other live Postgres holds.
#[derive(sqlx::FromRow)]
struct TierStockRow {
    tier_code: String,
    price_cents: i64,
    capacity: i32,
    sold: i32,
    held_by_others: i64,
}

/// A tier line of a booking, with the tier's name.
#[derive(sqlx::FromRow)]
struct BookedTierRow {
    tier_code: String,
    name: String,
    quantity: i32,
    price_cents: i64,
}

/// A tier row with its units held by live Postgres holds.
#[derive(sqlx::FromRow)]
struct TierStateRow {
    tier_code: String,
    name: String,
    price_cents: i64,
    capacity: i32,
    sold: i32,
    held: i64,
}

/// Tier lines from the two arrays a `holds` row keeps them in.
pub(super) fn lines(codes: Vec<String>, quantities: Vec<i32>) -> Vec<TierLine> {
    codes
        .into_iter()
        .zip(quantities)
        .map(|(code, q)| TierLine {
            code,
            quantity: q.max(0) as u32,
        })
        .collect()
}

/// The two arrays of tier lines, for binding.
pub(super) fn arrays(lines: &[TierLine]) -> (Vec<String>, Vec<i32>) {
    lines
        .iter()
        .map(|l| (l.code.clone(), l.quantity.min(i32::MAX as u32) as i32))
        .unzip()
}

/// Locks the rows of the requested tiers (in code order, so concurrent holds and confirms wait
/// on each other rather than deadlock) and checks each: units left for hold or booking `id` =
/// capacity - sold - units of other live Postgres holds.
pub(super) async fn lock_tiers(
    tx: &mut PgConnection,
    event: EventId,
    id: HoldGroupId,
    wanted: &[TierLine],
) -> Result<TierCheck> {
    if wanted.is_empty() {
        return Ok(TierCheck::default());
    }
    let (codes, _) = arrays(wanted);
    // Lock first, count after: under READ COMMITTED a statement that waited for a lock still
    // reads other tables as of its start, so the held units are summed by a new statement that
    // sees every hold committed before the lock was granted.
    sqlx::query(
        "SELECT tier_code FROM tiers WHERE event_id = $1 AND tier_code = ANY($2) \
         ORDER BY tier_code FOR UPDATE",
    )
    .bind(event.0)
    .bind(&codes)
    .execute(&mut *tx)
    .await?;
    let rows: Vec<TierStockRow> = sqlx::query_as(
        "SELECT t.tier_code, t.price_cents, t.capacity, t.sold, \
                COALESCE((SELECT sum(h.quantity) FROM held_tiers h \
                           WHERE h.event_id = t.event_id AND h.tier_code = t.tier_code \
                             AND h.held_until > now() AND h.hold_group_id <> $3), 0)::bigint \
                  AS held_by_others \
         FROM tiers t WHERE t.event_id = $1 AND t.tier_code = ANY($2)",
    )
    .bind(event.0)
    .bind(&codes)
    .bind(id.0)
    .fetch_all(&mut *tx)
    .await?;
    let mut check = TierCheck::default();
    for line in wanted {
        match rows.iter().find(|r| r.tier_code == line.code) {
            None => check.unknown.push(line.code.clone()),
            Some(row) => {
                check.prices.insert(row.tier_code.clone(), row.price_cents);
                let left =
                    (i64::from(row.capacity) - i64::from(row.sold) - row.held_by_others).max(0);
                check.left.insert(row.tier_code.clone(), left);
                if i64::from(line.quantity) > left {
                    check.short.push(TierShortage {
                        code: row.tier_code.clone(),
                        requested: line.quantity,
                        available: left as u32,
                    });
                }
            }
        }
    }
    Ok(check)
}

/// Writes the `held_tiers` rows of a Postgres hold, with the channel part of each line.
pub(super) async fn insert_held_tiers(
    tx: &mut PgConnection,
    event: EventId,
    id: HoldGroupId,
    wanted: &[TierLine],
    pools: &[(String, String)],
    held_until: DateTime<Utc>,
) -> Result<()> {
    if wanted.is_empty() {
        return Ok(());
    }
    let (codes, quantities) = arrays(wanted);
    let parts = parts_of(wanted, pools);
    sqlx::query(
        "INSERT INTO held_tiers \
           (event_id, hold_group_id, tier_code, quantity, held_until, channel_units) \
         SELECT $1, $2, c, q, $5, p FROM unnest($3::text[], $4::int[], $6::text[]) AS u(c, q, p) \
         ON CONFLICT ON CONSTRAINT held_tiers_pkey DO UPDATE \
           SET quantity = EXCLUDED.quantity, held_until = EXCLUDED.held_until, \
               channel_units = EXCLUDED.channel_units",
    )
    .bind(event.0)
    .bind(id.0)
    .bind(&codes)
    .bind(&quantities)
    .bind(held_until)
    .bind(&parts)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Deletes the `held_tiers` rows of one hold (released or confirmed).
pub(super) async fn delete_held_tiers(
    tx: &mut PgConnection,
    event: EventId,
    id: HoldGroupId,
) -> Result<()> {
    sqlx::query("DELETE FROM held_tiers WHERE event_id = $1 AND hold_group_id = $2")
        .bind(event.0)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The channel parts of a Postgres hold's tier units: (tier code, part).
pub(super) async fn held_pools(
    tx: &mut PgConnection,
    event: EventId,
    id: HoldGroupId,
) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT tier_code, channel_units FROM held_tiers \
         WHERE event_id = $1 AND hold_group_id = $2 AND channel_units <> ''",
    )
    .bind(event.0)
    .bind(id.0)
    .fetch_all(&mut *tx)
    .await?)
}

/// The channel part of each line (`""` for open units only), in line order.
fn parts_of(lines: &[TierLine], pools: &[(String, String)]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            pools
                .iter()
                .find(|(code, _)| *code == l.code)
                .map(|(_, part)| part.clone())
                .unwrap_or_default()
        })
        .collect()
}

/// Sells the units of a booking: its lines (with the channel part of each, `pools`), and
/// `sold` of each tier (rows locked by [`lock_tiers`]; the capacity check of the table is the
/// last word).
pub(super) async fn sell_tiers(
    tx: &mut PgConnection,
    event: EventId,
    id: HoldGroupId,
    sold: &[TierLine],
    pools: &[(String, String)],
) -> Result<()> {
    if sold.is_empty() {
        return Ok(());
    }
    let (codes, quantities) = arrays(sold);
    let parts = parts_of(sold, pools);
    sqlx::query(
        "INSERT INTO booking_tiers \
           (event_id, booking_group_id, tier_code, quantity, price_cents, channel_units) \
         SELECT $1, $2, u.c, u.q, t.price_cents, u.p \
         FROM unnest($3::text[], $4::int[], $5::text[]) AS u(c, q, p) \
         JOIN tiers t ON t.event_id = $1 AND t.tier_code = u.c",
    )
    .bind(event.0)
    .bind(id.0)
    .bind(&codes)
    .bind(&quantities)
    .bind(&parts)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE tiers t SET sold = t.sold + u.q \
         FROM unnest($2::text[], $3::int[]) AS u(c, q) \
         WHERE t.event_id = $1 AND t.tier_code = u.c",
    )
    .bind(event.0)
    .bind(&codes)
    .bind(&quantities)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Gives back the units of a cancelled booking; returns them.
pub(super) async fn unsell_tiers(
    tx: &mut PgConnection,
    event: EventId,
    id: HoldGroupId,
) -> Result<Vec<TierLine>> {
    let returned: Vec<(String, i32)> = sqlx::query_as(
        "UPDATE booking_tiers SET active = FALSE \
         WHERE event_id = $1 AND booking_group_id = $2 AND active \
         RETURNING tier_code, quantity",
    )
    .bind(event.0)
    .bind(id.0)
    .fetch_all(&mut *tx)
    .await?;
    if returned.is_empty() {
        return Ok(Vec::new());
    }
    let (codes, quantities): (Vec<String>, Vec<i32>) = returned.into_iter().unzip();
    sqlx::query(
        "UPDATE tiers t SET sold = t.sold - u.q \
         FROM unnest($2::text[], $3::int[]) AS u(c, q) \
         WHERE t.event_id = $1 AND t.tier_code = u.c",
    )
    .bind(event.0)
    .bind(&codes)
    .bind(&quantities)
    .execute(&mut *tx)
    .await?;
    Ok(lines(codes, quantities))
}

/// The tier lines of a booking, in the tiers' creation order.
pub(super) async fn read_booking_tiers(
    conn: &mut PgConnection,
    event: EventId,
    id: HoldGroupId,
) -> Result<Vec<BookedTier>> {
    let rows: Vec<BookedTierRow> = sqlx::query_as(
        "SELECT b.tier_code, t.name, b.quantity, b.price_cents FROM booking_tiers b \
         JOIN tiers t ON t.event_id = b.event_id AND t.tier_code = b.tier_code \
         WHERE b.event_id = $1 AND b.booking_group_id = $2 ORDER BY t.position",
    )
    .bind(event.0)
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| BookedTier {
            code: r.tier_code,
            name: r.name,
            quantity: r.quantity.max(0) as u32,
            price_cents: r.price_cents,
        })
        .collect())
}

impl PgStore {
    /// Units of channels' allocations sold and held by live Postgres holds: (tier code,
    /// channel, confirmed, held).
    pub async fn fetch_channel_tier_use(
        &self,
        event: EventId,
    ) -> Result<Vec<(String, String, u32, u32)>> {
        #[derive(sqlx::FromRow)]
        struct UseRow {
            tier_code: String,
            channel: String,
            sold: i64,
            held: i64,
        }
        let rows = sqlx::query_as::<_, UseRow>(
            "SELECT tier_code, split_part(part, '=', 1) AS channel, \
                    COALESCE(sum(split_part(part, '=', 2)::bigint) FILTER (WHERE sold), 0)::bigint \
                      AS sold, \
                    COALESCE(sum(split_part(part, '=', 2)::bigint) FILTER (WHERE NOT sold), 0)::bigint \
                      AS held \
             FROM (SELECT tier_code, TRUE AS sold, \
                          unnest(string_to_array(channel_units, ',')) AS part \
                     FROM booking_tiers WHERE event_id = $1 AND active AND channel_units <> '' \
                   UNION ALL \
                   SELECT tier_code, FALSE, unnest(string_to_array(channel_units, ',')) \
                     FROM held_tiers \
                    WHERE event_id = $1 AND held_until > now() AND channel_units <> '') AS u \
             GROUP BY 1, 2",
        )
        .bind(event.0)
        .fetch_all(&self.pool);
        let rows = self.timed(PgOp::FetchTiers, rows).await?;
        let count = |n: i64| n.clamp(0, i64::from(u32::MAX)) as u32;
        Ok(rows
            .into_iter()
            .map(|r| (r.tier_code, r.channel, count(r.sold), count(r.held)))
            .collect())
    }

    /// Tier lines of live Postgres holds of an event: (tier code, Redis member
    /// `"<quantity>:<holdGroupId>"`), so a copy of one in Redis is not counted twice.
    pub async fn fetch_held_tier_members(&self, event: EventId) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query_as::<_, (String, String)>(
            "SELECT tier_code, quantity::text || ':' || hold_group_id::text FROM held_tiers \
             WHERE event_id = $1 AND held_until > now()",
        )
        .bind(event.0)
        .fetch_all(&self.pool);
        self.timed(PgOp::FetchTiers, rows).await
    }

    /// The tiers of an event in creation order, with units sold (`confirmed`) and held by live
    /// Postgres holds (`held`; the caller adds the Redis holds).
    pub async fn fetch_tiers(&self, event: EventId) -> Result<Vec<TierState>> {
        let rows = sqlx::query_as::<_, TierStateRow>(
            "SELECT t.tier_code, t.name, t.price_cents, t.capacity, t.sold, \
                    COALESCE((SELECT sum(h.quantity) FROM held_tiers h \
                               WHERE h.event_id = t.event_id AND h.tier_code = t.tier_code \
                                 AND h.held_until > now()), 0)::bigint AS held \
             FROM tiers t WHERE t.event_id = $1 ORDER BY t.position",
        )
        .bind(event.0)
        .fetch_all(&self.pool);
        let rows = self.timed(PgOp::FetchTiers, rows).await?;
        let count = |n: i64| n.clamp(0, i64::from(u32::MAX)) as u32;
        Ok(rows
            .into_iter()
            .map(|r| TierState {
                code: r.tier_code,
                name: r.name,
                price_cents: r.price_cents,
                capacity: count(r.capacity.into()),
                confirmed: count(r.sold.into()),
                held: count(r.held),
            })
            .collect())
    }
}
