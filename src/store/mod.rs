//! Adapters to the two stores: Redis (holds, the cached inventory) and Postgres (the truth).
//! The stores never call each other; the service coordinates them.

pub mod postgres;
pub mod redis;
