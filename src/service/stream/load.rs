//! What a hub reads: an event's seats (all, or the few a change names) and its tiers, with
//! holds from both stores, as a stream shows them.

use std::collections::HashMap;

use tracing::warn;

use super::hub::{LiveSeat, LiveTier};
use crate::domain::events::EventId;
use crate::domain::live::LiveStatus;
use crate::domain::seats::SeatStatus;
use crate::error::{Error, Result};
use crate::service::Seatlock;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Seatlock {
    /// The event's seats in seat-map order, or only `only`; EventNotFound for an unknown event.
    pub(super) async fn load_seats(
        &self,
        event: EventId,
        only: Option<&[String]>,
    ) -> Result<Vec<LiveSeat>> {
        let redis_held = async {
            match only {
                None => self.redis_held_seats(event).await,
                Some(codes) => match self.read_redis(self.redis.held_ms_of(event, codes)).await {
                    Some(Ok(ms)) => codes
                        .iter()
                        .zip(ms)
                        .filter_map(|(code, ms)| Some((code.clone(), ms?)))
                        .collect(),
                    Some(Err(e)) => {
                        warn!(error = %e, "stream: could not read redis holds");
                        Vec::new()
                    }
                    None => Vec::new(),
                },
            }
        };
        let (seats, held) = tokio::join!(self.pg.fetch_seat_map(event, only), redis_held);
        let seats = seats?;
        if only.is_none() && seats.is_empty() && self.pg.fetch_event(event).await?.is_none() {
            return Err(Error::EventNotFound);
        }
        let held: HashMap<String, i64> = held.into_iter().collect();
        let now = now_ms();
        Ok(seats
            .into_iter()
            .map(|seat| {
                let status = SeatStatus::decide(
                    seat.booked,
                    seat.blocked.is_some(),
                    held.get(&seat.code).copied(),
                    seat.postgres_held_ms,
                );
                LiveSeat {
                    status: LiveStatus::from_status(status, now),
                    code: seat.code,
                    seat_type: seat.seat_type,
                    price_cents: seat.price_cents,
                    row: seat.row,
                    number: seat.number,
                    reason: seat.blocked,
                    channel: seat.channel,
                }
            })
            .collect())
    }

    /// The event's tiers with the units available now, and when the next Redis tier hold ends
    /// (ms since the epoch).
    pub(super) async fn load_tiers(&self, event: EventId) -> Result<(Vec<LiveTier>, Option<i64>)> {
        let tiers = self.pg.fetch_tiers(event).await?;
        let (tiers, next_end) = self.add_redis_tier_holds(event, tiers).await?;
        let now = now_ms();
        let live = tiers
            .into_iter()
            .map(|t| LiveTier {
                available: t.available(),
                code: t.code,
                name: t.name,
                price_cents: t.price_cents,
                capacity: t.capacity,
            })
            .collect();
        Ok((live, next_end.map(|ms| now + ms)))
    }
}
