//! Metric labels. Each label is an enum with one `as_str` and an `ALL` list, so the values a
//! series can carry, the HELP texts that list them and the series registered at zero at start-up
//! all come from one place and cannot drift apart.

/// Defines a label enum: its variants, the text each renders as, and the list of all of them.
macro_rules! labels {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Every value, comma-separated, for HELP texts.
            pub(super) fn list() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }
    };
}

labels!(
    /// Why a hold request was refused.
    HoldRefusal {
        Held => "held",
        Booked => "booked",
        UnknownSeat => "unknown_seat",
        Invalid => "invalid",
        NoBlock => "no_block",
        Blocked => "blocked",
        Channel => "channel",
        NotOpen => "not_open",
        Closed => "closed",
        Admission => "admission",
    }
);

labels!(
    /// A store the instance depends on, as its probe sees it.
    StoreName {
        Postgres => "postgres",
        Redis => "redis",
    }
);

labels!(
    /// How a confirm request ended.
    ConfirmResult {
        Booked => "booked",
        Repeat => "repeat",
        Expired => "expired",
        NotOwner => "not_owner",
        GuardRefused => "guard_refused",
        WrongEvent => "wrong_event",
        UserLimit => "user_limit",
        Error => "error",
    }
);

labels!(
    /// How a release request ended.
    ReleaseResult {
        Released => "released",
        Expired => "expired",
        NotOwner => "not_owner",
        AlreadyConfirmed => "already_confirmed",
        WrongEvent => "wrong_event",
        Error => "error",
    }
);

labels!(
    /// How a cancel request ended.
    CancelResult {
        Cancelled => "cancelled",
        Repeat => "repeat",
        NotOwner => "not_owner",
        NotFound => "not_found",
        Error => "error",
    }
);

labels!(
    /// Where holds go now.
    Backend {
        Redis => "redis",
        Postgres => "postgres",
        None => "none",
    }
);

labels!(
    /// Why a request was refused with 401.
    AuthFailureReason {
        Missing => "missing",
        Malformed => "malformed",
        Algorithm => "algorithm",
        Signature => "signature",
        Expired => "expired",
        NotYetValid => "not_yet_valid",
        Claims => "claims",
        UnknownKey => "unknown_key",
        Unavailable => "unavailable",
    }
);

labels!(
    /// Whose rate limit refused a request.
    RateScope {
        User => "user",
        Key => "key",
        Address => "address",
    }
);

labels!(
    /// Which per-buyer cap refused a request.
    UserLimitLabel {
        Seats => "seats",
        LiveHolds => "live_holds",
        AdmissionLiveHolds => "admission_live_holds",
    }
);

labels!(
    /// What one webhook delivery attempt came to.
    WebhookOutcome {
        Delivered => "delivered",
        Retry => "retry",
        Failed => "failed",
        Gone => "gone",
    }
);

labels!(
    /// One Redis script or command.
    RedisOp {
        Ping => "ping",
        Hold => "hold",
        Generation => "generation",
        Rebuild => "rebuild",
        FetchHold => "fetch_hold",
        Pin => "pin",
        Unpin => "unpin",
        Release => "release",
        SettleBooked => "settle_booked",
        SettleDropped => "settle_dropped",
        MarkBooked => "mark_booked",
        ScanInventories => "scan_inventories",
        DropInventory => "drop_inventory",
        HeldCount => "held_count",
        HeldList => "held_list",
        HeldTiers => "held_tiers",
        Best => "best",
        Extend => "extend",
        Watch => "watch",
        Publish => "publish",
        RateLimit => "rate_limit",
        RebuildLock => "rebuild_lock",
        ReadHistory => "read_history",
        TrimHistory => "trim_history",
        ScanHistory => "scan_history",
        HistoryRegistry => "history_registry",
        Block => "block",
        SetPolicy => "set_policy",
    }
);

labels!(
    /// One Postgres transaction or query.
    PgOp {
        InsertEvent => "insert_event",
        FetchEvents => "fetch_events",
        FetchEvent => "fetch_event",
        CountSeats => "count_seats",
        FetchHeldCodes => "fetch_held_codes",
        FetchSeatMap => "fetch_seat_map",
        FetchTiers => "fetch_tiers",
        Best => "best",
        Extend => "extend",
        FetchInventory => "fetch_inventory",
        Hold => "hold",
        FetchHold => "fetch_hold",
        Release => "release",
        FetchLiveHolds => "fetch_live_holds",
        SweepHolds => "sweep_holds",
        Confirm => "confirm",
        FetchBooking => "fetch_booking",
        Cancel => "cancel",
        IdempotencyClaim => "idempotency_claim",
        IdempotencyComplete => "idempotency_complete",
        IdempotencyRelease => "idempotency_release",
        SweepIdempotency => "sweep_idempotency",
        ApiKeys => "api_keys",
        Ping => "ping",
        HistoryCandidates => "history_candidates",
        HistoryFlush => "history_flush",
        FetchChanges => "fetch_changes",
        SweepHistory => "sweep_history",
        Webhooks => "webhooks",
        WebhookClaim => "webhook_claim",
        WebhookRecord => "webhook_record",
        BlockSeats => "block_seats",
        UpdatePolicy => "update_policy",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_texts_list_every_label_value() {
        assert_eq!(
            ConfirmResult::list(),
            "booked, repeat, expired, not_owner, guard_refused, wrong_event, user_limit, error"
        );
        assert_eq!(Backend::ALL.len(), 3);
        let mut ops: Vec<&str> = PgOp::ALL.iter().map(|o| o.as_str()).collect();
        ops.sort_unstable();
        ops.dedup();
        assert_eq!(ops.len(), PgOp::ALL.len(), "op labels are distinct");
    }
}
