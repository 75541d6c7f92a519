//! seatlock: a seat-hold service for ticketing.
//!
//! A buyer's seats are held atomically in Redis (one Lua script per mutation, under a TTL), then
//! confirmed into a booking in Postgres, whose unique index makes a double sale impossible
//! whatever Redis says.
//!
//! # Layout
//! - [`config`]: layered settings, the only reader of the environment.
//! - [`app`]: `AppState`, the router, the server loop with graceful shutdown.
//! - [`error`]: the crate error and its one mapping to HTTP.
//! - [`breaker`]: the circuit breaker that moves holds to Postgres while Redis is down.
//! - [`events`], [`holds`], [`bookings`]: domain types and rules, no I/O.
//! - [`service`]: the flows across both stores (reserve, confirm, release, cancel, reads).
//! - [`http`]: handlers and request/response types, one router per resource.
//! - [`store`]: adapters: `store::redis` (Lua scripts in `lua/`), `store::postgres` (SQL,
//!   migrations in `migrations/`).
//! - [`telemetry`]: logs, request spans, Prometheus metrics.

pub mod app;
pub mod bookings;
pub mod breaker;
pub mod config;
pub mod error;
pub mod events;
pub mod holds;
pub mod http;
pub mod service;
pub mod store;
pub mod telemetry;
