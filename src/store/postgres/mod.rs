//! Postgres, the source of truth: events, seats, bookings, Postgres holds and stored
//! Idempotency-Key responses. All SQL of the service lives under here, one file per table group.
//!
//! Every transaction is an owned command (a struct implementing [`Transaction`]) run by
//! [`PgStore::execute`], the one transaction runner: it runs the command on a task of its own (so
//! a dropped request cannot cut a transaction half-way: it commits or rolls back whole, and its
//! connection goes back to the pool clean), retries it whole after a serialization failure or a
//! deadlock (40001, 40P01), and times it under the command's op (with trace export on, in a
//! client span of that op with its retry count). Single-statement reads run on
//! the pool directly through [`PgStore::timed`].
//!
//! - [`events`]: events, seats, the seat map, the inventory snapshot for Redis.
//! - [`holds`]: Postgres holds (the fallback and the Postgres-only mode); [`sweeps`]: their sweep.
//! - [`bookings`]: the guarded confirm, bookings, cancel.
//! - [`idempotency`]: stored responses of keyed requests.
//! - [`api_keys`]: API keys (digests, names, roles). [`blocks`]: blocked seats.
//! - [`tiers`]: general admission: tier stock, held units, units sold.
//! - [`history`]: every seat's changes: the rows the transactions write, the reads;
//!   [`history_flush`]: numbering them in order. [`webhooks`]: endpoints and the outbox;
//!   [`webhook_deliveries`]: claims, attempts, the delivery log.

mod api_keys;
mod best;
mod blocks;
mod bookings;
mod caps;
mod channels;
mod events;
mod extend;
mod history;
mod history_flush;
mod holds;
mod idempotency;
mod inventory;
mod policy;
mod pools;
mod sweeps;
mod tiers;
mod webhook_deliveries;
mod webhooks;

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres};
use tracing::Instrument;

pub use blocks::BlockOutcome;
pub use bookings::ConfirmSource;
pub use events::SeatCounts;
pub use history_flush::HistoryFlush;
pub use webhook_deliveries::{AttemptOutcome, Backlog, Claimed};

use crate::config::DatabaseSettings;
use crate::domain::events::EventId;
use crate::error::{Error, Result};
use crate::telemetry::{self, PgOp};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Name of the unique index that makes a double sale impossible.
pub const ONE_ACTIVE_PER_SEAT: &str = "booking_seats_one_active_per_seat";

/// The Postgres pool and how often a transaction is retried; cheap to clone.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    retries: u32,
    /// Whether transactions write their history rows (`history.enabled`).
    record: bool,
    /// Best-available holds of one event take turns here before they take a pooled connection
    /// (striped by event), so a burst waits in the process instead of holding the pool's
    /// connections while it waits on the event's advisory lock.
    best_turns: Arc<[tokio::sync::Mutex<()>]>,
}

/// How many stripes [`PgStore::best_turns`] has.
const BEST_TURN_STRIPES: usize = 64;

/// The pool's connections now.
#[derive(Debug, Clone, Copy)]
pub struct PgPoolStats {
    pub size: u32,
    pub idle: usize,
}

/// How a transaction ends: its output either way, and whether its writes stand.
pub(crate) enum End<T> {
    Commit(T),
    Rollback(T),
}

/// One transaction of the store, as an owned command: everything it needs is in `self`, so the
/// runner can move it onto a task of its own and run it again after a transient error.
pub(crate) trait Transaction: Send + Sync + 'static {
    type Output: Send + 'static;
    /// Its label in `seatlock_postgres_query_duration_seconds` / `_errors_total`.
    const OP: PgOp;
    /// The statements of one attempt, inside BEGIN; the runner commits or rolls back.
    fn run(&self, tx: &mut PgConnection) -> impl Future<Output = Result<End<Self::Output>>> + Send;
}

/// Opens the pool (creating the database if configured to) and applies the migrations.
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<PgStore> {
    let statement_timeout = settings.statement_timeout_ms.to_string();
    let options = PgConnectOptions::from_str(&settings.url)?
        .application_name("seatlock")
        .options([("statement_timeout", statement_timeout.as_str())]);
    if settings.create_if_missing && !Postgres::database_exists(&settings.url).await? {
        // Two instances starting at once may race here; the loser's error is harmless.
        if let Err(e) = Postgres::create_database(&settings.url).await {
            tracing::warn!(error = %e, "create database failed; assuming a concurrent creator");
        }
    }
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        .connect_with(options)
        .await?;
    // sqlx takes an advisory lock while migrating, so instances starting at once are safe.
    MIGRATOR.run(&pool).await?;
    Ok(PgStore::new(pool, settings.max_retries))
}

impl PgStore {
    /// A store over an existing pool (the tests bring their own database).
    pub fn new(pool: PgPool, retries: u32) -> Self {
        PgStore {
            pool,
            retries,
            record: true,
            best_turns: (0..BEST_TURN_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// Whether the transactions write their history rows (on unless `history.enabled` is
    /// false).
    pub fn recording(self, record: bool) -> Self {
        Self { record, ..self }
    }

    /// The turn of an event's best-available holds in this process.
    pub(super) fn best_turn(&self, event: EventId) -> &tokio::sync::Mutex<()> {
        &self.best_turns[event.0.unsigned_abs() as usize % BEST_TURN_STRIPES]
    }

    pub fn pool_stats(&self) -> PgPoolStats {
        PgPoolStats {
            size: self.pool.size(),
            idle: self.pool.num_idle(),
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn ping(&self) -> Result<()> {
        self.timed(PgOp::Ping, sqlx::query("SELECT 1").execute(&self.pool))
            .await?;
        Ok(())
    }

    /// Runs a transaction: on a task of its own, retried after transient errors, timed.
    pub(crate) async fn execute<C: Transaction>(&self, command: C) -> Result<C::Output> {
        let pool = self.pool.clone();
        let retries = self.retries;
        let span = telemetry::postgres_span(C::OP);
        let run = async move {
            let started = Instant::now();
            let mut tries = 0;
            let result = with_retries(retries, &mut tries, || attempt(&pool, &command)).await;
            telemetry::record_postgres(C::OP, started.elapsed(), result.is_ok());
            let span = tracing::Span::current();
            span.record("seatlock.retries", i64::from(tries));
            if let Some(failure) = result.as_ref().err().and_then(failure_type) {
                telemetry::mark_failed(&span, failure);
            }
            result
        };
        let task = match span {
            Some(span) => tokio::spawn(run.instrument(span)),
            // The request's span (if its level is on) still names the task's log lines.
            None => tokio::spawn(run.in_current_span()),
        };
        task.await
            .map_err(|e| Error::Internal(format!("transaction task failed: {e}")))?
    }

    /// Runs a single read on the pool, timed under `op`.
    pub(crate) async fn timed<T, E>(
        &self,
        op: PgOp,
        query: impl Future<Output = Result<T, E>>,
    ) -> Result<T>
    where
        Error: From<E>,
    {
        let started = Instant::now();
        let result = query.await;
        telemetry::record_postgres(op, started.elapsed(), result.is_ok());
        Ok(result?)
    }
}

/// One attempt of a transaction: BEGIN (timed as the pool wait), the command, COMMIT or
/// ROLLBACK.
async fn attempt<C: Transaction>(pool: &PgPool, command: &C) -> Result<C::Output> {
    let started = Instant::now();
    let tx = pool.begin().await;
    telemetry::record_pg_acquire(started.elapsed());
    let mut tx = tx?;
    match command.run(&mut tx).await? {
        End::Commit(out) => {
            tx.commit().await?;
            Ok(out)
        }
        End::Rollback(out) => {
            tx.rollback().await?;
            Ok(out)
        }
    }
}

/// Whether a failed transaction may simply run again: a serialization failure or a deadlock.
/// The `error.type` of a failed transaction's span: a short class, never the message; None for
/// a refusal the transaction decided (a hold gone, seats taken), which is not a failure of
/// Postgres.
fn failure_type(e: &Error) -> Option<&'static str> {
    match e {
        Error::Postgres(sqlx::Error::PoolTimedOut) => Some("pool_timeout"),
        Error::Postgres(sqlx::Error::Io(_) | sqlx::Error::PoolClosed) => Some("connection"),
        Error::Postgres(sqlx::Error::Database(_)) => Some("database"),
        Error::Postgres(_) => Some("postgres"),
        Error::Unavailable { .. } => Some("unavailable"),
        Error::Internal(_) => Some("internal"),
        _ => None,
    }
}

fn is_transient(e: &Error) -> bool {
    matches!(e, Error::Postgres(sqlx::Error::Database(db))
        if matches!(db.code().as_deref(), Some("40001" | "40P01")))
}

/// Runs a whole transaction again after a transient error, at most `retries` more times, with
/// a short growing pause; `tries` counts the retries taken.
async fn with_retries<T, F, Fut>(retries: u32, tries: &mut u32, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    loop {
        match attempt().await {
            Err(e) if *tries < retries && is_transient(&e) => {
                *tries += 1;
                tracing::warn!(error = %e, tries, "transient postgres error; retrying the transaction");
                tokio::time::sleep(Duration::from_millis(5 * u64::from(*tries))).await;
            }
            other => return other,
        }
    }
}

/// The constraint a failed statement violated, if any.
fn violated_constraint(e: &Error) -> Option<&str> {
    match e {
        Error::Postgres(sqlx::Error::Database(db)) => db.constraint(),
        _ => None,
    }
}
