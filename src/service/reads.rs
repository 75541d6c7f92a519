//! Reads: events with their live counts, the seat map, bookings. Sales come from Postgres;
//! holds from both stores (Redis holds only while the breaker is closed: during an outage reads
//! show Postgres holds only, rather than failing).

use std::collections::{HashMap, HashSet};

use tracing::warn;

use super::Seatlock;
use crate::domain::bookings::Booking;
use crate::domain::events::{Event, EventId, EventSummary};
use crate::domain::holds::HoldGroupId;
use crate::domain::seats::{SeatState, SeatStatus};
use crate::domain::tiers::TierState;
use crate::error::{Error, Result};
use crate::store::redis::TierHeld;

/// A channel's allocation of a tier and its use now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelTierUse {
    pub channel: String,
    pub tier: String,
    pub allocated: u32,
    pub confirmed: u32,
    pub held: u32,
}

impl Seatlock {
    /// Events, newest first.
    pub async fn list_events(&self, limit: i64, offset: i64) -> Result<Vec<Event>> {
        self.pg.fetch_events(limit, offset).await
    }

    /// An event with confirmed seats from Postgres and held seats from both stores.
    pub async fn event_summary(&self, event: EventId) -> Result<EventSummary> {
        let row = self
            .pg
            .fetch_event(event)
            .await?
            .ok_or(Error::EventNotFound)?;
        let redis_count = async {
            match self.read_redis(self.redis.held_count(event)).await {
                Some(Ok(n)) => n,
                _ => 0,
            }
        };
        let (counts, redis_held, tiers) = tokio::join!(
            self.pg.count_seats(event),
            redis_count,
            self.pg.fetch_tiers(event)
        );
        let (counts, tiers) = (counts?, tiers?);
        let (tiers, _) = self.add_redis_tier_holds(event, tiers).await?;
        let held_seats = if counts.postgres_held > 0 && redis_held > 0 {
            // Postgres holds may have been copied into Redis after an outage: count each seat
            // once.
            let mut seats: HashSet<String> =
                self.pg.fetch_held_codes(event).await?.into_iter().collect();
            seats.extend(
                self.redis_held_seats(event)
                    .await
                    .into_iter()
                    .map(|(code, _)| code),
            );
            seats.len() as i64
        } else {
            redis_held + counts.postgres_held
        };
        Ok(EventSummary {
            event: row,
            confirmed_seats: counts.confirmed,
            held_seats,
            blocked_seats: counts.blocked,
            has_channels: counts.channels > 0,
            tiers,
        })
    }

    /// Adds the units held in Redis to each tier's Postgres-held units (a Postgres hold copied
    /// into Redis after an outage counts once); also the milliseconds until the next Redis tier
    /// hold ends.
    pub(super) async fn add_redis_tier_holds(
        &self,
        event: EventId,
        mut tiers: Vec<TierState>,
    ) -> Result<(Vec<TierState>, Option<i64>)> {
        if tiers.is_empty() {
            return Ok((tiers, None));
        }
        let codes: Vec<String> = tiers.iter().map(|t| t.code.clone()).collect();
        let copies = tiers.iter().any(|t| t.held > 0);
        let held = self.redis_tier_holds(event, &codes, &[], copies).await?;
        let next_end = held.iter().flatten().filter_map(|h| h.next_end_ms).min();
        for (tier, redis_held) in tiers.iter_mut().zip(held) {
            tier.held = tier.held.saturating_add(redis_held.map_or(0, |h| h.units));
        }
        Ok((tiers, next_end))
    }

    /// The Redis holds of each of `codes` (and of `channels[i]`'s allocations of it), leaving out
    /// copies of live Postgres holds when `copies` may exist (Postgres counts those); empty when
    /// Redis cannot be asked (reads then show Postgres holds only).
    async fn redis_tier_holds(
        &self,
        event: EventId,
        codes: &[String],
        channels: &[Vec<String>],
        copies: bool,
    ) -> Result<Vec<Option<TierHeld>>> {
        let mut excluded = vec![Vec::new(); codes.len()];
        if copies {
            for (code, member) in self.pg.fetch_held_tier_members(event).await? {
                if let Some(i) = codes.iter().position(|c| *c == code) {
                    excluded[i].push(member);
                }
            }
        }
        Ok(
            match self
                .read_redis(self.redis.held_tiers(event, codes, &excluded, channels))
                .await
            {
                Some(Ok(held)) => held,
                Some(Err(e)) => {
                    warn!(error = %e, "could not read redis tier holds; showing postgres holds only");
                    Vec::new()
                }
                None => Vec::new(),
            },
        )
    }

    /// Each channel's tier allocations with the units of them sold and held now (Postgres holds
    /// and Redis holds, a copy of a Postgres hold counted once): (channel, tier, allocated,
    /// confirmed, held), in the order of `allocations`.
    pub async fn channel_tier_use(
        &self,
        event: EventId,
        allocations: &[(String, String, u32)],
    ) -> Result<Vec<ChannelTierUse>> {
        if allocations.is_empty() {
            return Ok(Vec::new());
        }
        let pg_use = self.pg.fetch_channel_tier_use(event).await?;
        let mut codes: Vec<String> = Vec::new();
        let mut chans: Vec<Vec<String>> = Vec::new();
        for (channel, tier, _) in allocations {
            match codes.iter().position(|c| c == tier) {
                Some(i) => chans[i].push(channel.clone()),
                None => {
                    codes.push(tier.clone());
                    chans.push(vec![channel.clone()]);
                }
            }
        }
        let redis_held = self.redis_tier_holds(event, &codes, &chans, true).await?;
        Ok(allocations
            .iter()
            .map(|(channel, tier, allocated)| {
                let (confirmed, pg_held) = pg_use
                    .iter()
                    .find(|u| u.0 == *tier && u.1 == *channel)
                    .map_or((0, 0), |u| (u.2, u.3));
                let redis = codes.iter().position(|c| c == tier).and_then(|i| {
                    let j = chans[i].iter().position(|c| c == channel)?;
                    redis_held.get(i)?.as_ref()?.channels.get(j).copied()
                });
                ChannelTierUse {
                    channel: channel.clone(),
                    tier: tier.clone(),
                    allocated: *allocated,
                    confirmed,
                    held: pg_held.saturating_add(redis.unwrap_or(0)),
                }
            })
            .collect())
    }

    /// The seat map: every seat with its status now, in the order the event was created with.
    pub async fn seat_map(&self, event: EventId) -> Result<Vec<SeatState>> {
        let (seats, held) = tokio::join!(
            self.pg.fetch_seat_map(event, None),
            self.redis_held_seats(event)
        );
        let seats = seats?;
        if seats.is_empty() && self.pg.fetch_event(event).await?.is_none() {
            return Err(Error::EventNotFound);
        }
        let held: HashMap<String, i64> = held.into_iter().collect();
        Ok(seats
            .into_iter()
            .map(|seat| SeatState {
                status: SeatStatus::decide(
                    seat.booked,
                    seat.blocked.is_some(),
                    held.get(&seat.code).copied(),
                    seat.postgres_held_ms,
                ),
                code: seat.code,
                seat_type: seat.seat_type,
                price_cents: seat.price_cents,
                row: seat.row,
                number: seat.number,
                blocked_reason: seat.blocked,
                channel: seat.channel,
            })
            .collect())
    }

    /// A booking by its id (which carries its event).
    pub async fn fetch_booking(&self, id: HoldGroupId) -> Result<Booking> {
        let event = id.event().ok_or(Error::BookingNotFound)?;
        self.pg
            .fetch_booking(event, id)
            .await?
            .ok_or(Error::BookingNotFound)
    }

    /// What Postgres knows of a hold its store no longer has: the booking with its id, None if
    /// there is none (expired, released or unknown); EventNotFound for an unknown event.
    pub(super) async fn settled_booking(
        &self,
        event: EventId,
        id: HoldGroupId,
    ) -> Result<Option<Booking>> {
        if let Some(booking) = self.pg.fetch_booking(event, id).await? {
            return Ok(Some(booking));
        }
        match self.pg.fetch_event(event).await? {
            Some(_) => Ok(None),
            None => Err(Error::EventNotFound),
        }
    }

    /// Seats held in Redis now, with milliseconds left; empty while Redis cannot be asked.
    pub(super) async fn redis_held_seats(&self, event: EventId) -> Vec<(String, i64)> {
        match self.read_redis(self.redis.held_seats(event)).await {
            Some(Ok(held)) => held,
            Some(Err(e)) => {
                warn!(error = %e, "could not read redis holds; showing postgres holds only");
                Vec::new()
            }
            None => Vec::new(),
        }
    }
}
