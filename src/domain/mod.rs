//! The domain: ids, the rules a request must follow, what the stores can answer, and the pure
//! decisions that turn those answers into results. No I/O, no HTTP, no SQL, so every rule is
//! unit-tested without a database.
//!
//! - [`access`]: who may do what (roles, actions, the decision table), API key shapes.
//! - [`extend`]: extending a hold: what a store answers and the reply.
//! - [`fields`]: the rules of single input fields: codes, prices, user ids, a hold's seat list.
//! - [`events`]: event ids, new-event validation, an event with its counts.
//! - [`best`]: best-available: which seats to hold for "N together, as good as possible".
//! - [`layout`]: the seats of a new event: codes, types, prices, rows and numbers.
//! - [`tiers`]: general admission: tiers, tier lines of a hold, a tier's counts.
//! - [`seats`]: the seat map: where each seat stands now.
//! - [`history`]: every seat's changes: records, the flush that orders them, the replay.
//! - [`holds`]: hold ids (which carry their event and store), hold requests, hold attempts,
//!   release decisions.
//! - [`confirm`]: the confirm transaction's answers and what to reply to each.
//! - [`bookings`]: bookings, cancel decisions.
//! - [`idempotency`]: stored responses of keyed requests.
//! - [`limits`]: rate-limit quotas, verdicts and their headers.
//! - [`channels`]: sales channels of an event: the rules a channel set follows.
//! - [`policy`]: who may buy what, and when: sales windows, channels, a hold's caller.
//! - [`live`]: the live seat map: change messages, a seat as a stream shows it, deltas.
//! - [`webhooks`]: Standard Webhooks messages, signatures, the retry schedule.

pub mod access;
pub mod best;
pub mod bookings;
pub mod channels;
pub mod confirm;
pub mod events;
pub mod extend;
pub mod fields;
pub mod history;
pub mod holds;
pub mod idempotency;
pub mod layout;
pub mod limits;
pub mod live;
pub mod policy;
pub mod seats;
pub mod tiers;
pub mod webhooks;
