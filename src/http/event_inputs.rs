//! What `POST /events` takes for its seats and tiers: rows, listed seats, general-admission
//! tiers, channels (the body itself is in `events.rs`; `PUT /events/{id}/channels` takes
//! channels too).

use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::channels::{RawChannel, RawChannelTier};

/// A whole row of a new event.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct RowInput {
    /// 1-16 characters without whitespace; seat codes are the name and the number (`A1`).
    #[schema(min_length = 1, max_length = 16, pattern = "^\\S+$", example = "A")]
    pub(super) name: String,
    /// Seats in the row, numbered 1..n.
    #[schema(minimum = 1, maximum = 100000, example = 20)]
    pub(super) seats: Option<i64>,
    #[serde(rename = "type")]
    pub(super) seat_type: Option<String>,
    #[schema(minimum = 0, maximum = 10000000)]
    pub(super) price: Option<f64>,
}

/// A general-admission tier of a new event.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct TierInput {
    /// Unique within the event.
    #[schema(min_length = 1, max_length = 64, pattern = "^\\S+$", example = "FLOOR")]
    pub(super) code: String,
    /// Defaults to the code.
    #[schema(max_length = 200, example = "Standing floor")]
    pub(super) name: Option<String>,
    #[schema(minimum = 0, maximum = 10000000, example = 45.5)]
    pub(super) price: Option<f64>,
    /// 1 to `events.max_tier_capacity` (default 1,000,000).
    #[schema(value_type = i64, required = true, minimum = 1, maximum = 1000000, example = 500)]
    pub(super) capacity: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct SeatInput {
    #[schema(min_length = 1, max_length = 64, pattern = "^\\S+$")]
    pub(super) code: String,
    #[serde(rename = "type")]
    pub(super) seat_type: Option<String>,
    #[schema(minimum = 0, maximum = 10000000)]
    pub(super) price: Option<f64>,
    /// Row label (1-16 characters without whitespace); with `number`, or neither.
    #[schema(min_length = 1, max_length = 16, pattern = "^\\S+$", example = "A")]
    pub(super) row: Option<String>,
    /// Seat number within its row.
    #[schema(minimum = 1, maximum = 100000, example = 12)]
    pub(super) number: Option<i64>,
}

/// A channel of an event: the seats allocated to it and its own sales window.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ChannelInput {
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9._-]+$",
        example = "presale"
    )]
    code: String,
    /// Seats only callers in this channel may hold (a seat in at most one channel).
    #[schema(max_items = 100000)]
    seat_codes: Option<Vec<String>>,
    /// Units of the event's tiers only callers in this channel may hold (a tier at most once;
    /// a tier's allocations together at most its capacity).
    #[schema(max_items = 100)]
    tiers: Option<Vec<ChannelTierInput>>,
    /// RFC 3339; left out: the event's.
    #[schema(format = DateTime)]
    sales_start: Option<String>,
    /// RFC 3339, after `salesStart`; left out: the event's.
    #[schema(format = DateTime)]
    sales_end: Option<String>,
}

/// Units of one tier allocated to a channel.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ChannelTierInput {
    #[schema(min_length = 1, max_length = 64, example = "GA")]
    code: String,
    #[schema(value_type = i64, minimum = 1, maximum = 1000000, example = 20)]
    quantity: serde_json::Value,
}

impl From<ChannelInput> for RawChannel {
    fn from(c: ChannelInput) -> Self {
        RawChannel {
            code: c.code,
            seat_codes: c.seat_codes,
            tiers: c.tiers.map(|list| {
                list.into_iter()
                    .map(|t| RawChannelTier {
                        code: t.code,
                        quantity: t.quantity,
                    })
                    .collect()
            }),
            sales_start: c.sales_start,
            sales_end: c.sales_end,
        }
    }
}
