//! seatlock: a seat-hold service for ticketing.
//!
//! A buyer's seats are held atomically in Redis (one Lua script per change, under a TTL), then
//! confirmed into a booking in Postgres, whose unique index makes a double sale impossible
//! whatever Redis says.
//!
//! # Layout
//!
//! Imports run one way: `main -> {cli, startup} -> http -> service -> {store, domain}`; `config`,
//! `error` and `telemetry` are leaves every layer may use (`tests/api/architecture.rs` checks
//! both rules and the size of every file).
//!
//! - [`cli`]: the command line (`serve`, `keys create|list|revoke`).
//! - [`startup`]: `Application::build -> port() -> run_until(shutdown)`, background tasks.
//! - [`http`]: the router, handlers and wire types (one file per resource), the error mapping.
//! - [`service`]: the use cases, one file per flow (reserve, confirm, release, cancel, reads),
//!   and the outage logic (breaker, fallback, reconcile).
//! - [`store`]: adapters: `store::redis` (the Lua scripts in `lua/`, the key layout),
//!   `store::postgres` (all SQL, migrations in `migrations/`).
//! - [`domain`]: ids, rules and the outcome -> result decisions, pure and unit-tested.
//! - [`config`]: layered settings, the only reader of the environment.
//! - [`error`]: the crate error (a domain refusal or a store failure), no HTTP.
//! - [`telemetry`]: logs and metrics.

pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod service;
pub mod startup;
pub mod store;
pub mod telemetry;
