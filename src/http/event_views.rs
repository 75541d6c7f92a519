//! An event as readers see it (`GET /events/{id}`, `GET /events`, and the answer of
//! `PATCH /events/{id}`): its live counts and sales window, and its channels' counts for admins
//! and service keys.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiResult;
use super::rfc3339;
use super::state::AppState;
use crate::domain::access::{Caller, Role};
use crate::domain::events::{Event, EventId, cents_to_amount};
use crate::domain::seats::SeatStatus;
use crate::domain::tiers::TierState;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct EventView {
    id: i64,
    name: String,
    date: String,
    location: String,
    total_seats: i32,
    /// When sales open (null: open now); holds before it are refused with `SALES_NOT_OPEN`.
    #[schema(format = DateTime)]
    sales_start: Option<String>,
    /// When sales close (null: never); holds from it are refused with `SALES_CLOSED`.
    #[schema(format = DateTime)]
    sales_end: Option<String>,
    /// The Queue-it event id admission tokens name, when not the event id.
    queueit_event_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct EventDetail {
    #[serde(flatten)]
    event: EventView,
    confirmed_seats: i64,
    held_seats: i64,
    /// Seats held back from sale (POST /events/{id}/seats/block).
    blocked_seats: i64,
    available_seats: i64,
    /// General-admission tiers in creation order (`[]` when none).
    tiers: Vec<TierView>,
    /// Admins and service keys, when the event has channels: each channel's window and seat
    /// counts (`confirmed + held + blocked + available = seats`); the seats of no channel are
    /// the event's counts less these.
    #[serde(skip_serializing_if = "Option::is_none")]
    channels: Option<Vec<ChannelCounts>>,
}

/// A tier with its live counts: `confirmed + held + available = capacity`.
#[derive(Serialize, ToSchema)]
pub(super) struct TierView {
    code: String,
    name: String,
    price: f64,
    capacity: u32,
    /// Units in confirmed bookings.
    confirmed: u32,
    /// Units in live holds (an expired hold never counts).
    held: u32,
    available: u32,
}

impl From<Event> for EventView {
    fn from(e: Event) -> Self {
        EventView {
            id: e.id.0,
            name: e.name,
            date: rfc3339(e.starts_at),
            location: e.location,
            total_seats: e.total_seats,
            sales_start: e.policy.window.start.map(rfc3339),
            sales_end: e.policy.window.end.map(rfc3339),
            queueit_event_id: e.policy.queueit_event_id,
        }
    }
}

/// An event with its live counts, and its channels' for admins and service keys.
pub(super) async fn event_detail(
    state: &AppState,
    caller: &Caller,
    id: EventId,
) -> ApiResult<Json<EventDetail>> {
    let summary = state.seatlock.event_summary(id).await?;
    let tiers = summary
        .tiers
        .iter()
        .map(|t| TierView {
            code: t.code.clone(),
            name: t.name.clone(),
            price: cents_to_amount(t.price_cents),
            capacity: t.capacity,
            confirmed: t.confirmed.min(t.capacity),
            held: t.held_within_capacity(),
            available: t.available(),
        })
        .collect();
    let channels = match caller.role {
        Role::Buyer => None,
        _ if !summary.has_channels => None,
        _ => channel_counts(state, id, &summary.tiers).await?,
    };
    Ok(Json(EventDetail {
        available_seats: summary.available_seats(),
        confirmed_seats: summary.confirmed_seats,
        held_seats: summary.held_seats,
        blocked_seats: summary.blocked_seats,
        tiers,
        channels,
        event: summary.event.into(),
    }))
}

/// A channel with its seat counts.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ChannelCounts {
    code: String,
    #[schema(format = DateTime)]
    sales_start: Option<String>,
    #[schema(format = DateTime)]
    sales_end: Option<String>,
    seats: i64,
    confirmed: i64,
    held: i64,
    blocked: i64,
    available: i64,
    /// The channel's tier allocations and their use.
    tiers: Vec<ChannelTierCounts>,
}

/// Units of a tier allocated to a channel: sold and held from the allocation, and what is left
/// of it (never more than the tier has left).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ChannelTierCounts {
    code: String,
    /// Units allocated.
    quantity: u32,
    confirmed: u32,
    held: u32,
    available: u32,
}

/// Each channel's seat counts from the seat map, and its tier allocations' use (None: the event
/// has no channels).
async fn channel_counts(
    state: &AppState,
    id: EventId,
    tiers: &[TierState],
) -> ApiResult<Option<Vec<ChannelCounts>>> {
    let policy = state.seatlock.event_policy(id).await?;
    if policy.channels.is_empty() {
        return Ok(None);
    }
    let tier_use = state.seatlock.channel_tier_use(id, &policy.tiers).await?;
    let mut counts: Vec<ChannelCounts> = policy
        .channels
        .iter()
        .map(|(code, w)| ChannelCounts {
            code: code.clone(),
            sales_start: w.start.map(rfc3339),
            sales_end: w.end.map(rfc3339),
            seats: 0,
            confirmed: 0,
            held: 0,
            blocked: 0,
            available: 0,
            tiers: tier_use
                .iter()
                .filter(|u| u.channel == *code)
                .map(|u| {
                    let tier_left = tiers
                        .iter()
                        .find(|t| t.code == u.tier)
                        .map_or(0, TierState::available);
                    ChannelTierCounts {
                        code: u.tier.clone(),
                        quantity: u.allocated,
                        confirmed: u.confirmed,
                        held: u.held,
                        available: u
                            .allocated
                            .saturating_sub(u.confirmed)
                            .saturating_sub(u.held)
                            .min(tier_left),
                    }
                })
                .collect(),
        })
        .collect();
    if !policy.seats.is_empty() {
        for seat in state.seatlock.seat_map(id).await? {
            let Some(channel) = seat.channel.as_deref() else {
                continue;
            };
            let Some(c) = counts.iter_mut().find(|c| c.code == *channel) else {
                continue;
            };
            c.seats += 1;
            match seat.status {
                SeatStatus::Available => c.available += 1,
                SeatStatus::Held { .. } => c.held += 1,
                SeatStatus::Booked => c.confirmed += 1,
                SeatStatus::Blocked => c.blocked += 1,
            }
        }
    }
    Ok(Some(counts))
}
