//! Adapters to the two stores: Redis (holds, cached inventory) and Postgres (truth).

pub mod postgres;
pub mod redis;
pub mod redis_pool;
