//! The Redis connection pool: deadpool over multiplexed connections, without a health check on
//! every checkout.
//!
//! deadpool-redis's manager sends `UNWATCH` + `PING` each time a connection is taken from the
//! pool, which doubles the round trips of every hold. Here a checkout costs nothing; instead a
//! connection that failed (I/O error, dropped, timed out) is detached from the pool by the caller
//! (`discard`), and the next checkout opens a fresh one.

use deadpool::managed::{self, Metrics, RecycleResult};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};

pub struct ConnectionManager {
    client: Client,
    config: AsyncConnectionConfig,
}

impl ConnectionManager {
    pub fn new(url: &str, config: AsyncConnectionConfig) -> Result<Self, RedisError> {
        Ok(Self {
            client: Client::open(url)?,
            config,
        })
    }
}

impl managed::Manager for ConnectionManager {
    type Type = MultiplexedConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<MultiplexedConnection, RedisError> {
        self.client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
    }

    async fn recycle(
        &self,
        _: &mut MultiplexedConnection,
        _: &Metrics,
    ) -> RecycleResult<RedisError> {
        Ok(())
    }
}

pub type Pool = managed::Pool<ConnectionManager>;
pub type Connection = managed::Object<ConnectionManager>;
pub type PoolError = managed::PoolError<RedisError>;

/// Whether a connection that returned `err` must not be used again.
pub fn is_broken(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_unrecoverable_error()
        || err.is_timeout()
}

/// Drops a connection from the pool instead of returning it.
pub fn discard(conn: Connection) {
    drop(Connection::take(conn));
}
