//! API keys: stored by SHA-256 digest with a name, a role, the sales channels the key is in,
//! whether it skips admission, and their times.

use chrono::{DateTime, Utc};

use super::{PgStore, violated_constraint};
use crate::domain::access::{ApiKey, ApiKeyInfo, KeyRole, NewApiKey};
use crate::error::{Error, Result};
use crate::telemetry::PgOp;

/// A live key's row, as the request path needs it.
#[derive(sqlx::FromRow)]
struct LiveKeyRow {
    name: String,
    role: String,
    channels: Vec<String>,
    skips_admission: bool,
}

/// A key's row as `keys list` shows it.
#[derive(sqlx::FromRow)]
struct KeyRow {
    name: String,
    role: String,
    channels: Vec<String>,
    skips_admission: bool,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

fn role_of(text: &str) -> Result<KeyRole> {
    KeyRole::parse(text).ok_or_else(|| Error::Internal(format!("unknown key role {text}")))
}

impl PgStore {
    /// Stores a new key (its channels checked by the caller); false when a live key already
    /// has this name.
    pub async fn insert_api_key(&self, key: &NewApiKey, digest: &[u8; 32]) -> Result<bool> {
        let insert = sqlx::query(
            "INSERT INTO api_keys (key_digest, name, role, channels, skips_admission) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(digest.as_slice())
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(&key.channels)
        .bind(key.skips_admission)
        .execute(&self.pool);
        match self.timed(PgOp::ApiKeys, insert).await {
            Ok(_) => Ok(true),
            Err(e) if violated_constraint(&e) == Some("api_keys_live_name") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The live (not revoked) key with this digest.
    pub async fn fetch_api_key(&self, digest: &[u8; 32]) -> Result<Option<ApiKey>> {
        let row = sqlx::query_as::<_, LiveKeyRow>(
            "SELECT name, role, channels, skips_admission FROM api_keys \
             WHERE key_digest = $1 AND revoked_at IS NULL",
        )
        .bind(digest.as_slice())
        .fetch_optional(&self.pool);
        match self.timed(PgOp::ApiKeys, row).await? {
            Some(r) => Ok(Some(ApiKey {
                role: role_of(&r.role)?,
                name: r.name,
                channels: r.channels,
                skips_admission: r.skips_admission,
            })),
            None => Ok(None),
        }
    }

    /// Every key, live first, then by name.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>> {
        let rows = sqlx::query_as::<_, KeyRow>(
            "SELECT name, role, channels, skips_admission, created_at, last_used_at, revoked_at \
             FROM api_keys ORDER BY revoked_at IS NOT NULL, name, created_at",
        )
        .fetch_all(&self.pool);
        self.timed(PgOp::ApiKeys, rows)
            .await?
            .into_iter()
            .map(|r| {
                Ok(ApiKeyInfo {
                    role: role_of(&r.role)?,
                    name: r.name,
                    channels: r.channels,
                    skips_admission: r.skips_admission,
                    created_at: r.created_at,
                    last_used_at: r.last_used_at,
                    revoked_at: r.revoked_at,
                })
            })
            .collect()
    }

    /// Revokes the live key of this name; false when there is none.
    pub async fn revoke_api_key(&self, name: &str) -> Result<bool> {
        let update = sqlx::query(
            "UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL",
        )
        .bind(name)
        .execute(&self.pool);
        Ok(self.timed(PgOp::ApiKeys, update).await?.rows_affected() > 0)
    }

    /// Records that a key was used now.
    pub async fn touch_api_key(&self, digest: &[u8; 32]) -> Result<()> {
        let update = sqlx::query("UPDATE api_keys SET last_used_at = now() WHERE key_digest = $1")
            .bind(digest.as_slice())
            .execute(&self.pool);
        self.timed(PgOp::ApiKeys, update).await?;
        Ok(())
    }
}
