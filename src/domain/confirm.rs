//! Confirming a hold: what the confirm transaction can answer, and the decisions that turn its
//! answer (or the booking found after a lost reply) into the client's result and what becomes of
//! the hold's Redis keys. No I/O here.

use super::bookings::{Booking, BookingStatus};
use super::tiers::TierLine;
use crate::error::{Error, Result, TierShortage, UserLimitKind};

/// What the confirm transaction answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// This call wrote the booking.
    Booked(Booking),
    /// The booking already existed (a repeated or concurrent confirm of the same hold).
    Existing(Booking),
    /// The guard refused: these seats are in another confirmed booking.
    Conflict(Vec<String>),
    /// The guard refused: these seats are held in Postgres by another live hold, these tiers have
    /// too few units left (sold, or held in Postgres by other holds).
    HeldElsewhere {
        seats: Vec<String>,
        tiers: Vec<TierShortage>,
    },
    /// (Postgres holds) the hold is not there or has expired.
    HoldGone,
    /// (Postgres holds) the hold belongs to another user.
    NotOwner,
    /// The buyer's confirmed seats of the event plus this hold's would pass the cap.
    UserLimit { max: u32, current: u32 },
}

/// A successful confirm: the booking, and whether it already existed (a repeat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    pub booking: Booking,
    pub repeat: bool,
}

/// What becomes of a hold's Redis keys once Postgres decided its confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterConfirm {
    /// Leave Redis as it is.
    Nothing,
    /// The booking holds: end the hold, its seats become booked in the cache.
    Book,
    /// Nothing was sold by this hold: end it, no seat becomes booked.
    Drop,
    /// As `Drop`, and these seats (sold by someone else, which Redis had lost track of) become
    /// booked in the cache.
    DropAndMarkBooked(Vec<String>),
    /// Keep the hold but take this confirm's pin back, so its owner may release it.
    Unpin,
}

/// Confirm of a Redis hold of `seats` and `tiers` (checked and pinned) after the confirm
/// transaction.
pub fn decide_redis_confirm(
    outcome: ConfirmOutcome,
    user_id: &str,
    seats: &[String],
    tiers: &[TierLine],
) -> (Result<Confirmed>, AfterConfirm) {
    match outcome {
        ConfirmOutcome::Booked(booking) => (
            Ok(Confirmed {
                booking,
                repeat: false,
            }),
            AfterConfirm::Book,
        ),
        ConfirmOutcome::Existing(booking) if booking.user_id != user_id => {
            (Err(Error::NotHoldOwner), AfterConfirm::Nothing)
        }
        ConfirmOutcome::Existing(booking) if booking.is_confirmed_booking_of(seats, tiers) => (
            Ok(Confirmed {
                booking,
                repeat: true,
            }),
            AfterConfirm::Book,
        ),
        // A booking with this id exists but is not this hold's (cancelled since, or other
        // seats): nothing was sold by this confirm; let the hold's seats go.
        ConfirmOutcome::Existing(_) => (Err(Error::HoldGone), AfterConfirm::Drop),
        ConfirmOutcome::NotOwner => (Err(Error::NotHoldOwner), AfterConfirm::Nothing),
        // Redis had lost track of these sales; Postgres refused. Teach Redis and let go.
        ConfirmOutcome::Conflict(taken) => (
            Err(Error::SeatsAlreadyBooked {
                seats: taken.clone(),
            }),
            AfterConfirm::DropAndMarkBooked(taken),
        ),
        ConfirmOutcome::HeldElsewhere {
            seats: taken,
            tiers: short,
        } => (
            Err(unavailable(taken, short, !tiers.is_empty())),
            AfterConfirm::Drop,
        ),
        ConfirmOutcome::HoldGone => (Err(Error::HoldGone), AfterConfirm::Nothing),
        ConfirmOutcome::UserLimit { max, current } => {
            (Err(seats_limit(max, current)), AfterConfirm::Unpin)
        }
    }
}

/// The 409 of a confirm the guard refused for seats held elsewhere or tiers too short.
fn unavailable(seats: Vec<String>, short: Vec<TierShortage>, asked_tiers: bool) -> Error {
    let tiers = (asked_tiers || !short.is_empty()).then_some(short);
    Error::SeatsUnavailable { seats, tiers }
}

fn seats_limit(max: u32, current: u32) -> Error {
    Error::UserLimit {
        limit: UserLimitKind::Seats,
        max,
        current,
    }
}

/// A confirm of a Redis hold whose transaction failed without a reply: if the booking is there
/// (of this user, of exactly these seats and units), the commit happened and this confirm
/// succeeded.
pub fn committed_despite_error(
    booking: Option<Booking>,
    user_id: &str,
    seats: &[String],
    tiers: &[TierLine],
) -> Option<Confirmed> {
    booking
        .filter(|b| b.user_id == user_id && b.is_confirmed_booking_of(seats, tiers))
        .map(|booking| Confirmed {
            booking,
            repeat: false,
        })
}

/// What to answer to the confirm of a Postgres hold.
#[derive(Debug)]
pub enum PostgresConfirm {
    /// The answer, and what to do with a copy of the hold in Redis.
    Done(Result<Confirmed>, AfterConfirm),
    /// The hold is gone from Postgres: answer as for a repeat (see [`decide_repeat`]).
    AsRepeat,
}

/// Confirm of a Postgres hold (checked, locked and consumed inside the transaction).
pub fn decide_postgres_confirm(outcome: ConfirmOutcome, user_id: &str) -> PostgresConfirm {
    let done = |result| PostgresConfirm::Done(result, AfterConfirm::Nothing);
    match outcome {
        // Best effort: drop a copy of the hold in Redis and mark its seats booked there.
        ConfirmOutcome::Booked(booking) => PostgresConfirm::Done(
            Ok(Confirmed {
                booking,
                repeat: false,
            }),
            AfterConfirm::Book,
        ),
        ConfirmOutcome::Existing(booking) if booking.user_id != user_id => {
            done(Err(Error::NotHoldOwner))
        }
        ConfirmOutcome::Existing(booking) if booking.status == BookingStatus::Confirmed => {
            done(Ok(Confirmed {
                booking,
                repeat: true,
            }))
        }
        ConfirmOutcome::Existing(_) => done(Err(Error::HoldGone)),
        ConfirmOutcome::NotOwner => done(Err(Error::NotHoldOwner)),
        ConfirmOutcome::HoldGone => PostgresConfirm::AsRepeat,
        ConfirmOutcome::Conflict(seats) => done(Err(Error::SeatsAlreadyBooked { seats })),
        ConfirmOutcome::HeldElsewhere { seats, tiers } => {
            let asked_tiers = !tiers.is_empty();
            done(Err(unavailable(seats, tiers, asked_tiers)))
        }
        ConfirmOutcome::UserLimit { max, current } => done(Err(seats_limit(max, current))),
    }
}

/// A confirm whose hold its store no longer has, given the booking with the hold's id if any:
/// a repeat of a committed confirm gets its booking; anything else is gone.
pub fn decide_repeat(booking: Option<Booking>, user_id: &str) -> Result<Confirmed> {
    match booking {
        Some(b) if b.user_id != user_id => Err(Error::NotHoldOwner),
        Some(b) if b.status == BookingStatus::Confirmed => Ok(Confirmed {
            booking: b,
            repeat: true,
        }),
        _ => Err(Error::HoldGone),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::bookings::tests::{CANCELLED, CONFIRMED, booking, seats};

    fn elsewhere(codes: &[&str]) -> ConfirmOutcome {
        ConfirmOutcome::HeldElsewhere {
            seats: seats(codes),
            tiers: vec![],
        }
    }

    #[test]
    fn a_tier_shortage_at_confirm_names_the_tiers() {
        let ga = TierLine {
            code: "GA".into(),
            quantity: 3,
        };
        let short = ConfirmOutcome::HeldElsewhere {
            seats: vec![],
            tiers: vec![TierShortage {
                code: "GA".into(),
                requested: 3,
                available: 1,
            }],
        };
        let (r, after) = decide_redis_confirm(short, "u1", &[], &[ga]);
        assert_eq!(after, AfterConfirm::Drop);
        let Err(Error::SeatsUnavailable {
            seats,
            tiers: Some(tiers),
        }) = r
        else {
            panic!("{r:?}")
        };
        assert!(seats.is_empty());
        assert_eq!((tiers[0].requested, tiers[0].available), (3, 1));
    }

    #[test]
    fn redis_confirm_decisions_cover_every_outcome() {
        let hold = seats(&["S1", "S2"]);
        let mine = booking("u1", CONFIRMED, &["S1", "S2"]);
        let (r, after) =
            decide_redis_confirm(ConfirmOutcome::Booked(mine.clone()), "u1", &hold, &[]);
        assert_eq!(
            (r.map(|c| c.repeat).ok(), after),
            (Some(false), AfterConfirm::Book)
        );

        let (r, after) = decide_redis_confirm(
            ConfirmOutcome::Existing(booking("u2", CONFIRMED, &["S1", "S2"])),
            "u1",
            &hold,
            &[],
        );
        assert!(matches!(r, Err(Error::NotHoldOwner)));
        assert_eq!(after, AfterConfirm::Nothing);

        let (r, after) =
            decide_redis_confirm(ConfirmOutcome::Existing(mine.clone()), "u1", &hold, &[]);
        assert_eq!(
            (r.map(|c| c.repeat).ok(), after),
            (Some(true), AfterConfirm::Book)
        );

        for other in [
            booking("u1", CANCELLED, &["S1", "S2"]),
            booking("u1", CONFIRMED, &["S1"]),
        ] {
            let (r, after) =
                decide_redis_confirm(ConfirmOutcome::Existing(other), "u1", &hold, &[]);
            assert!(matches!(r, Err(Error::HoldGone)));
            assert_eq!(after, AfterConfirm::Drop);
        }

        let (r, after) = decide_redis_confirm(ConfirmOutcome::NotOwner, "u1", &hold, &[]);
        assert!(matches!(r, Err(Error::NotHoldOwner)));
        assert_eq!(after, AfterConfirm::Nothing);

        let (r, after) =
            decide_redis_confirm(ConfirmOutcome::Conflict(seats(&["S2"])), "u1", &hold, &[]);
        assert!(matches!(r, Err(Error::SeatsAlreadyBooked { seats: s }) if s == ["S2"]));
        assert_eq!(after, AfterConfirm::DropAndMarkBooked(seats(&["S2"])));

        let (r, after) = decide_redis_confirm(elsewhere(&["S1"]), "u1", &hold, &[]);
        assert!(matches!(r, Err(Error::SeatsUnavailable { seats: s, tiers: None }) if s == ["S1"]));
        assert_eq!(after, AfterConfirm::Drop);

        let (r, after) = decide_redis_confirm(ConfirmOutcome::HoldGone, "u1", &hold, &[]);
        assert!(matches!(r, Err(Error::HoldGone)));
        assert_eq!(after, AfterConfirm::Nothing);

        let limit = ConfirmOutcome::UserLimit { max: 2, current: 1 };
        let (r, after) = decide_redis_confirm(limit, "u1", &hold, &[]);
        assert!(matches!(
            r,
            Err(Error::UserLimit {
                max: 2,
                current: 1,
                ..
            })
        ));
        assert_eq!(after, AfterConfirm::Unpin);
    }

    #[test]
    fn a_lost_commit_reply_counts_only_for_the_same_user_and_seats() {
        let hold = seats(&["S1"]);
        let mine = booking("u1", CONFIRMED, &["S1"]);
        assert!(committed_despite_error(Some(mine.clone()), "u1", &hold, &[]).is_some());
        assert!(committed_despite_error(Some(mine), "u2", &hold, &[]).is_none());
        assert!(
            committed_despite_error(Some(booking("u1", CANCELLED, &["S1"])), "u1", &hold, &[])
                .is_none()
        );
        assert!(committed_despite_error(None, "u1", &hold, &[]).is_none());
    }

    #[test]
    fn postgres_confirm_decisions_cover_every_outcome() {
        let mine = booking("u1", CONFIRMED, &["S1"]);
        let ok = |d: PostgresConfirm| match d {
            PostgresConfirm::Done(Ok(c), after) => Some((c.repeat, after)),
            _ => None,
        };
        let err = |d: PostgresConfirm| match d {
            PostgresConfirm::Done(Err(e), AfterConfirm::Nothing) => Some(e.to_string()),
            _ => None,
        };
        assert_eq!(
            ok(decide_postgres_confirm(
                ConfirmOutcome::Booked(mine.clone()),
                "u1"
            )),
            Some((false, AfterConfirm::Book))
        );
        assert_eq!(
            ok(decide_postgres_confirm(
                ConfirmOutcome::Existing(mine.clone()),
                "u1"
            )),
            Some((true, AfterConfirm::Nothing))
        );
        let gone = Error::HoldGone.to_string();
        let not_owner = Error::NotHoldOwner.to_string();
        assert_eq!(
            err(decide_postgres_confirm(
                ConfirmOutcome::Existing(mine),
                "u2"
            )),
            Some(not_owner.clone())
        );
        assert_eq!(
            err(decide_postgres_confirm(
                ConfirmOutcome::Existing(booking("u1", CANCELLED, &["S1"])),
                "u1"
            )),
            Some(gone)
        );
        assert_eq!(
            err(decide_postgres_confirm(ConfirmOutcome::NotOwner, "u1")),
            Some(not_owner)
        );
        assert!(matches!(
            decide_postgres_confirm(ConfirmOutcome::HoldGone, "u1"),
            PostgresConfirm::AsRepeat
        ));
        assert!(matches!(
            decide_postgres_confirm(ConfirmOutcome::Conflict(seats(&["S1"])), "u1"),
            PostgresConfirm::Done(Err(Error::SeatsAlreadyBooked { .. }), AfterConfirm::Nothing)
        ));
        assert!(matches!(
            decide_postgres_confirm(elsewhere(&["S1"]), "u1"),
            PostgresConfirm::Done(Err(Error::SeatsUnavailable { .. }), AfterConfirm::Nothing)
        ));
        assert!(matches!(
            decide_postgres_confirm(ConfirmOutcome::UserLimit { max: 1, current: 1 }, "u1"),
            PostgresConfirm::Done(Err(Error::UserLimit { .. }), AfterConfirm::Nothing)
        ));
    }

    #[test]
    fn repeat_decisions_cover_every_case() {
        let mine = booking("u1", CONFIRMED, &["S1"]);
        assert!(matches!(decide_repeat(Some(mine.clone()), "u1"), Ok(c) if c.repeat));
        assert!(matches!(
            decide_repeat(Some(mine), "u2"),
            Err(Error::NotHoldOwner)
        ));
        assert!(matches!(
            decide_repeat(Some(booking("u1", CANCELLED, &["S1"])), "u1"),
            Err(Error::HoldGone)
        ));
        assert!(matches!(decide_repeat(None, "u1"), Err(Error::HoldGone)));
    }
}
