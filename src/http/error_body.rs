//! The body of every error answer, as the API document describes it (the answers themselves are
//! built in `error.rs`).

use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// A sentence for people.
    pub error: String,
    /// A stable machine code (see docs/api.md, "Error codes").
    #[schema(value_type = ErrorCode)]
    pub code: String,
    /// The seats concerned (`SEATS_UNAVAILABLE`, `SEATS_NOT_FOUND`, `SEATS_ALREADY_BOOKED`).
    pub seats: Option<Vec<String>>,
    /// `TIERS_NOT_FOUND`: the unknown tier codes. `SEATS_UNAVAILABLE` of a request that asked
    /// for tier units: `{code, requested, available}` for every tier with too few units left.
    pub tiers: Option<Vec<serde_json::Value>>,
    /// `USER_LIMIT_REACHED`: the cap, and the buyer's count before this request;
    /// `HOLD_LIMIT_REACHED`: the limit reached.
    pub limit: Option<u64>,
    pub current: Option<u64>,
    /// `USER_LIMIT_REACHED`: `max_seats_per_user`, `max_live_holds_per_user` or
    /// `max_live_holds_per_admission`;
    /// `HOLD_LIMIT_REACHED`: `max_renewals` or `max_lifetime_seconds`.
    pub cap: Option<String>,
    /// `NO_ADJACENT_SEATS`: matching seats available (not together).
    pub available: Option<u64>,
    /// `PAYLOAD_TOO_LARGE`: the body limit.
    pub limit_bytes: Option<u64>,
    /// `SALES_NOT_OPEN`: when sales of the seats asked open (the latest opening among them).
    #[schema(format = DateTime)]
    pub opens_at: Option<String>,
    /// `SALES_CLOSED`: when sales of the seats asked closed.
    #[schema(format = DateTime)]
    pub closed_at: Option<String>,
    /// `RATE_LIMITED`: seconds until a request is allowed (also in `Retry-After`).
    pub retry_after_seconds: Option<u64>,
}

/// Every `code` an error answer may carry (the document's enum; the answers write the same
/// strings, checked by a unit test against every error).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidJson,
    ValidationFailed,
    HoldEventMismatch,
    WebhookUrlForbidden,
    Unauthenticated,
    Forbidden,
    UserMismatch,
    NotHoldOwner,
    NotBookingOwner,
    AdmissionRequired,
    NotFound,
    EventNotFound,
    SeatsNotFound,
    TiersNotFound,
    BookingNotFound,
    WebhookNotFound,
    HistoryDisabled,
    MethodNotAllowed,
    SeatsUnavailable,
    SeatsAlreadyBooked,
    HoldAlreadyConfirmed,
    NoAdjacentSeats,
    HoldLimitReached,
    UserLimitReached,
    SalesNotOpen,
    SalesClosed,
    IdempotencyKeyInFlight,
    HoldExpired,
    PayloadTooLarge,
    IdempotencyKeyMismatch,
    RateLimited,
    Internal,
    ServiceUnavailable,
    RequestTimeout,
}
