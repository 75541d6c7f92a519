//! Extending a hold (`POST /events/{id}/seats/extend`): what a store answers, and the reply to
//! each answer. No I/O here.

use crate::error::{Error, HoldCap, Result};

/// What a store answered to an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtendOutcome {
    /// Extended: it now ends then, and may be extended this many more times.
    Extended {
        expires_at_ms: i64,
        renewals_left: u32,
    },
    /// No live hold with this id (expired, released, confirmed, or never taken).
    Gone,
    NotOwner,
    /// A confirm of it is in progress.
    Pinned,
    /// Redis lost some of its seats or tier units (these codes).
    Lost(Vec<String>),
    /// It reached a limit.
    Limit(HoldCap),
}

/// The limits of extensions, for the 409's `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtendLimits {
    pub max_renewals: u32,
    pub max_lifetime_seconds: u64,
}

/// An extension that went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extended {
    pub expires_at_ms: i64,
    pub renewals_left: u32,
}

/// The reply to what the store answered. `Gone` is the caller's to look into (a confirmed hold
/// is a 409, another buyer's a 403, else 410), so it comes back as `Ok(None)`.
pub fn decide_extend(outcome: ExtendOutcome, limits: ExtendLimits) -> Result<Option<Extended>> {
    match outcome {
        ExtendOutcome::Extended {
            expires_at_ms,
            renewals_left,
        } => Ok(Some(Extended {
            expires_at_ms,
            renewals_left,
        })),
        ExtendOutcome::Gone => Ok(None),
        ExtendOutcome::NotOwner => Err(Error::NotHoldOwner),
        ExtendOutcome::Pinned => Err(Error::HoldAlreadyConfirmed),
        ExtendOutcome::Lost(seats) => Err(Error::HoldSeatsLost { seats }),
        ExtendOutcome::Limit(cap) => Err(Error::HoldLimit {
            cap,
            limit: match cap {
                HoldCap::Renewals => u64::from(limits.max_renewals),
                HoldCap::Lifetime => limits.max_lifetime_seconds,
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ExtendLimits = ExtendLimits {
        max_renewals: 3,
        max_lifetime_seconds: 1800,
    };

    #[test]
    fn every_answer_has_its_reply() {
        let ok = ExtendOutcome::Extended {
            expires_at_ms: 5,
            renewals_left: 2,
        };
        assert_eq!(
            decide_extend(ok, LIMITS).expect("ok"),
            Some(Extended {
                expires_at_ms: 5,
                renewals_left: 2
            })
        );
        assert_eq!(
            decide_extend(ExtendOutcome::Gone, LIMITS).expect("gone"),
            None
        );
        assert!(matches!(
            decide_extend(ExtendOutcome::NotOwner, LIMITS),
            Err(Error::NotHoldOwner)
        ));
        assert!(matches!(
            decide_extend(ExtendOutcome::Pinned, LIMITS),
            Err(Error::HoldAlreadyConfirmed)
        ));
        assert!(matches!(
            decide_extend(ExtendOutcome::Lost(vec!["S1".into()]), LIMITS),
            Err(Error::HoldSeatsLost { seats }) if seats == ["S1"]
        ));
        assert!(matches!(
            decide_extend(ExtendOutcome::Limit(HoldCap::Renewals), LIMITS),
            Err(Error::HoldLimit { limit: 3, .. })
        ));
        assert!(matches!(
            decide_extend(ExtendOutcome::Limit(HoldCap::Lifetime), LIMITS),
            Err(Error::HoldLimit { limit: 1800, .. })
        ));
    }
}
