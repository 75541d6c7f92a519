//! The crate's error: a refusal the domain decided, or a store that failed. Nothing here knows
//! HTTP: `http::error` maps each variant to a status and a JSON body, once.

/// A failed pool checkout of the Redis store (named by its external type, so this module
/// depends on no other module of the crate).
pub type RedisPoolError = deadpool::managed::PoolError<redis::RedisError>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Validation(String),
    #[error("the hold belongs to another event")]
    HoldEventMismatch,
    #[error("event not found")]
    EventNotFound,
    #[error("some seats do not exist in this event")]
    SeatsNotFound { seats: Vec<String> },
    #[error("booking not found")]
    BookingNotFound,
    #[error("webhook endpoint not found")]
    WebhookNotFound,
    #[error("the history is turned off on this deployment (history.enabled = false)")]
    HistoryDisabled,
    #[error("{0}")]
    WebhookUrlForbidden(String),
    #[error("the hold belongs to another user")]
    NotHoldOwner,
    #[error("the booking belongs to another user")]
    NotBookingOwner,
    #[error("some seats are held or booked, or some tiers have too few units left")]
    SeatsUnavailable {
        seats: Vec<String>,
        /// The short tiers, when the request asked for tier units (None: it asked for seats only).
        tiers: Option<Vec<TierShortage>>,
    },
    #[error("some tiers do not exist in this event")]
    TiersNotFound { tiers: Vec<String> },
    #[error("no block of adjacent seats of that size is available")]
    NoAdjacentSeats { available: u32 },
    #[error("the hold cannot be extended further")]
    HoldLimit { cap: HoldCap, limit: u64 },
    #[error("the hold lost some of its seats")]
    HoldSeatsLost { seats: Vec<String> },
    #[error("some seats were already booked")]
    SeatsAlreadyBooked { seats: Vec<String> },
    #[error("the hold was already confirmed")]
    HoldAlreadyConfirmed,
    #[error("the hold has expired, was released, or does not exist")]
    HoldGone,
    #[error("this token may not do that")]
    Forbidden,
    #[error("userId must be the token's subject")]
    UserMismatch,
    #[error("sales of these seats have not opened yet")]
    SalesNotOpen { opens_at_ms: i64 },
    #[error("sales of these seats have closed")]
    SalesClosed { closed_at_ms: i64 },
    #[error("this event admits buyers from its waiting room: send its token in Seatlock-Admission")]
    AdmissionRequired,
    #[error("this buyer has reached a limit of this event")]
    UserLimit {
        limit: UserLimitKind,
        max: u32,
        current: u32,
    },
    #[error("too many requests; retry after {retry_after_s} s")]
    RateLimited {
        retry_after_s: u64,
        /// The `RateLimit-Policy` and `RateLimit` header values.
        policy: String,
        state: String,
    },
    #[error("{what} is unavailable")]
    Unavailable { what: &'static str },
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis pool: {0}")]
    RedisPool(#[from] RedisPoolError),
    #[error("{0}")]
    Internal(String),
}

/// A tier that has fewer units left than a hold asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierShortage {
    pub code: String,
    pub requested: u32,
    pub available: u32,
}

/// Which limit of a hold's extension a request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldCap {
    /// `holds.max_renewals`.
    Renewals,
    /// `holds.max_lifetime_seconds`.
    Lifetime,
}

/// Which per-buyer cap a request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserLimitKind {
    /// `limits.max_seats_per_user`: live held plus confirmed seats of one event.
    Seats,
    /// `limits.max_live_holds_per_user`: live holds of one event.
    LiveHolds,
    /// `admission.max_live_holds`: live holds of one admission.
    AdmissionLiveHolds,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Redis is unreachable or too slow, as opposed to an answer it gave.
    pub fn is_redis_outage(&self) -> bool {
        matches!(self, Error::Redis(_) | Error::RedisPool(_))
    }

    /// Postgres could not be reached in time, as opposed to a bug or a refusal.
    pub fn is_postgres_outage(&self) -> bool {
        match self {
            Error::Postgres(e) => postgres_unavailable(e),
            _ => false,
        }
    }
}

fn postgres_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        // 57014 query_canceled (statement_timeout), 57P01-03 admin/crash shutdown, cannot
        // connect now; 53300 too_many_connections
        sqlx::Error::Database(db) => {
            matches!(
                db.code().as_deref(),
                Some("57014" | "57P01" | "57P02" | "57P03" | "53300")
            )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_told_apart_from_answers() {
        assert!(Error::Postgres(sqlx::Error::PoolTimedOut).is_postgres_outage());
        assert!(!Error::Postgres(sqlx::Error::RowNotFound).is_postgres_outage());
        assert!(!Error::HoldGone.is_postgres_outage());
        let io = redis::RedisError::from(std::io::Error::other("reset"));
        assert!(Error::Redis(io).is_redis_outage());
        assert!(!Error::Unavailable { what: "redis" }.is_redis_outage());
    }
}
