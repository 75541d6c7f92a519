//! The one integration-test binary: every request goes through the real router to a real
//! Postgres (a database per test) and a real Redis (a key space or a server per test).

mod admission;
mod architecture;
mod auth;
mod best;
mod blocks;
mod bookings;
mod cluster;
mod cluster_slots;
mod concurrency;
mod confirm;
mod connections;
mod events;
mod extend;
mod faults;
mod history;
mod holds;
mod idempotency;
mod limits;
mod observability;
mod openapi;
mod readme;
mod rebuilds;
mod redis_faults;
mod release;
mod resilience;
mod sales;
mod settings;
mod stream;
mod support;
mod tier_sales;
mod tiers;
mod traces;
mod web;
mod webhook_faults;
mod webhooks;
