//! The open holds one flush reads: those its entries and rows name, and of those whose end
//! passed, the ones it may record or must see (a hold can take a seat only from an expired one).

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::HistoryFlush;
use crate::domain::history::OpenHold;
use crate::domain::holds::HoldGroupId;
use crate::error::Result;
use crate::store::postgres::history::from_ms;

/// Most expired holds one flush reads to record, oldest first. A wave of 60,000 holds ending
/// within seconds was read and recorded in one flush, and the service's peak RSS went from 34 to
/// 92 MiB; the rest of a wave is the next flush's (bench/README.md).
pub const EXPIRY_PAGE: i64 = 2000;

/// The open holds named ($2), and the holds ended by $3 of the seats taken ($4), by a hash join:
/// `seat_codes && $4` compares every seat of every expired hold with every seat taken (0.47 s
/// at 60,000 expired holds and 1,000 seats, against 30 ms).
const NAMED_OR_TAKEN: &str = "\
    SELECT hold_group_id, user_id, seat_codes, tier_codes, tier_quantities, expires_at \
    FROM history_open_holds WHERE event_id = $1 AND hold_group_id = ANY($2) \
    UNION \
    SELECT h.hold_group_id, h.user_id, h.seat_codes, h.tier_codes, h.tier_quantities, \
           h.expires_at \
    FROM history_open_holds h \
    CROSS JOIN LATERAL unnest(h.seat_codes) AS s(code) \
    JOIN unnest($4::text[]) AS t(code) ON t.code = s.code \
    WHERE h.event_id = $1 AND h.expires_at <= $3 AND cardinality($4) > 0";

/// An open-hold row.
#[derive(sqlx::FromRow)]
struct OpenRow {
    hold_group_id: uuid::Uuid,
    user_id: String,
    seat_codes: Vec<String>,
    tier_codes: Vec<String>,
    tier_quantities: Vec<i32>,
    expires_at: DateTime<Utc>,
}

/// What [`HistoryFlush::read_open`] read.
pub struct OpenRead {
    pub open: Vec<OpenHold>,
    /// When the page of expired holds was full: its last hold (end in ms, id). The flush records
    /// the expiries up to it, in that order, and takes only the entries before its end; the
    /// rest are the next flush's.
    pub expire_through: Option<(i64, uuid::Uuid)>,
}

impl HistoryFlush {
    /// The open holds this flush can touch (no other flush changes them meanwhile: this one
    /// holds the head):
    /// - those named (`holds`: its entries' and rows' holds);
    /// - the oldest [`EXPIRY_PAGE`] of those it can record as expired: a Redis hold whose end is
    ///   at or before `redis_until` (see `FlushInput::redis_clock_ms`; None: none), a Postgres
    ///   hold (version 8 with its lowest flag bit set, see `HoldGroupId::store`) whose end is at
    ///   or before `pg_until`. An entry taken by then takes a seat only from one of these (Redis
    ///   lets a seat go only once its hold ran out);
    /// - the holds, ended by either clock, of the seats in `taking` (the seats its Postgres
    ///   rows take: stamped with Postgres's clock, they may take a seat of a Redis hold that
    ///   ended after `redis_until`, or after the page).
    pub async fn read_open(
        &mut self,
        holds: &[uuid::Uuid],
        redis_until: Option<i64>,
        pg_until: i64,
        taking: &[String],
    ) -> Result<OpenRead> {
        let redis_until = redis_until.unwrap_or(0);
        let until = redis_until.max(pg_until);
        // Ordered as the flush orders expiries: by end (written in whole ms), then id.
        let page = sqlx::query_as::<_, OpenRow>(
            "SELECT hold_group_id, user_id, seat_codes, tier_codes, tier_quantities, expires_at \
             FROM history_open_holds WHERE event_id = $1 AND expires_at <= $2 \
               AND (expires_at <= $3 OR get_byte(uuid_send(hold_group_id), 6) & 241 = 129) \
             ORDER BY expires_at, hold_group_id LIMIT $4",
        )
        .bind(self.event.0)
        .bind(from_ms(until))
        .bind(from_ms(redis_until))
        .bind(EXPIRY_PAGE)
        .fetch_all(&mut *self.tx)
        .await?;
        let expire_through = page
            .last()
            .filter(|_| page.len() as i64 == EXPIRY_PAGE)
            .map(|r| (r.expires_at.timestamp_millis(), r.hold_group_id));
        // Nothing to ask when nothing is named (a batch of new holds and no Postgres rows).
        let more = if holds.is_empty() && taking.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as::<_, OpenRow>(NAMED_OR_TAKEN)
                .bind(self.event.0)
                .bind(holds)
                .bind(from_ms(until))
                .bind(taking)
                .fetch_all(&mut *self.tx)
                .await?
        };
        let mut seen = HashSet::new();
        let open = page
            .into_iter()
            .chain(more)
            .filter(|r| seen.insert(r.hold_group_id))
            .map(|r| OpenHold {
                hold: HoldGroupId(r.hold_group_id),
                user_id: r.user_id,
                seats: r.seat_codes,
                tiers: crate::store::postgres::tiers::lines(r.tier_codes, r.tier_quantities),
                expires_at_ms: r.expires_at.timestamp_millis(),
            })
            .collect();
        Ok(OpenRead {
            open,
            expire_through,
        })
    }
}
