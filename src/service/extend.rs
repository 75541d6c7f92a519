//! Extend: a buyer's live hold runs again for `holds.ttl_seconds`, within
//! `holds.max_lifetime_seconds` from when it was taken and `holds.max_renewals` times, in the
//! store that holds it.

use std::time::Duration;

use super::Seatlock;
use crate::domain::bookings::decide_settled_release;
use crate::domain::events::EventId;
use crate::domain::extend::{ExtendLimits, ExtendOutcome, Extended, decide_extend};
use crate::domain::holds::{HoldGroupId, HoldStore};
use crate::error::{Error, Result};

impl Seatlock {
    /// Extends a live hold of `user_id`.
    pub async fn extend(&self, event: EventId, user_id: &str, id: HoldGroupId) -> Result<Extended> {
        id.check_event(event)?;
        let settings = &self.settings.holds;
        let limits = ExtendLimits {
            max_renewals: settings.max_renewals,
            max_lifetime_seconds: settings.max_lifetime_seconds,
        };
        let ttl = Duration::from_secs(settings.ttl_seconds);
        let outcome = if id.store() == HoldStore::Postgres {
            self.pg.extend_hold(event, id, user_id, ttl, limits).await?
        } else {
            let in_redis = async {
                match self.redis.fetch_hold(event, id).await? {
                    None => Ok(ExtendOutcome::Gone),
                    Some(record) if record.user_id != user_id => Ok(ExtendOutcome::NotOwner),
                    Some(record) => {
                        self.redis
                            .extend_hold(event, id, user_id, &record, ttl, limits)
                            .await
                    }
                }
            };
            match self.with_redis(in_redis).await {
                Some(outcome) => outcome?,
                None => {
                    // Redis cannot be asked: Postgres can only say whether it was confirmed.
                    let settled = self.settled_booking(event, id).await?;
                    let known = decide_settled_release(settled.as_ref(), user_id);
                    self.unknown_without_redis(known)?;
                    if self.settings.holds.backend == HoldStore::Postgres {
                        return Err(Error::HoldGone);
                    }
                    return Err(Error::Unavailable { what: "redis" });
                }
            }
        };
        match decide_extend(outcome, limits)? {
            Some(extended) => Ok(extended),
            // Not live in its store: confirmed (409), another buyer's (403), or gone (410).
            None => {
                decide_settled_release(self.settled_booking(event, id).await?.as_ref(), user_id)?;
                Err(Error::HoldGone)
            }
        }
    }
}
