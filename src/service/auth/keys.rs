//! API keys: looked up by SHA-256 digest, with a bounded in-memory cache so checking a key
//! costs no Postgres query per request. An entry (a key, or the absence of one) is trusted for
//! `auth.key_cache_seconds` (at most 30): the most a revoke takes to reach this instance.
//! `last_used_at` is written at most once a minute per key and instance, off the request path.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::access::ApiKey;
use crate::domain::access::{KeyRole, key_digest};
use crate::error::Result;
use crate::store::postgres::PgStore;

/// Most entries kept; past it, expired entries are dropped, then everything.
const MAX_ENTRIES: usize = 100_000;
/// How often `last_used_at` is written for one key.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

struct Entry {
    key: Option<ApiKey>,
    fetched: Instant,
    touched: Option<Instant>,
}

pub(super) struct KeyCache {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    ttl: Duration,
}

impl KeyCache {
    pub(super) fn new(ttl: Duration) -> Self {
        KeyCache {
            entries: Mutex::default(),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        // The map holds only cached lookups: after a panic elsewhere it is still usable.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live key with this secret (its name and role), or None for an unknown or revoked
    /// key.
    pub(super) async fn lookup(
        &self,
        pg: &PgStore,
        secret: &str,
    ) -> Result<Option<(String, KeyRole)>> {
        let digest = key_digest(secret);
        let now = Instant::now();
        let cached = {
            let mut entries = self.lock();
            match entries.get_mut(&digest) {
                Some(e) if now.duration_since(e.fetched) < self.ttl => {
                    let touch = e.key.is_some()
                        && e.touched
                            .is_none_or(|t| now.duration_since(t) >= TOUCH_EVERY);
                    if touch {
                        e.touched = Some(now);
                    }
                    Some((e.key.clone(), touch))
                }
                _ => None,
            }
        };
        let (key, touch) = match cached {
            Some(hit) => hit,
            None => {
                let key = pg.fetch_api_key(&digest).await?;
                let mut entries = self.lock();
                if entries.len() >= MAX_ENTRIES {
                    entries.retain(|_, e| now.duration_since(e.fetched) < self.ttl);
                    if entries.len() >= MAX_ENTRIES {
                        entries.clear();
                    }
                }
                let touch = key.is_some();
                entries.insert(
                    digest,
                    Entry {
                        key: key.clone(),
                        fetched: now,
                        touched: touch.then_some(now),
                    },
                );
                (key, touch)
            }
        };
        let Some(key) = key else { return Ok(None) };
        if touch {
            let (pg, name) = (pg.clone(), key.name.clone());
            tokio::spawn(async move {
                if let Err(e) = pg.touch_api_key(&digest).await {
                    tracing::warn!(error = %e, key = %name, "could not record the key's last use");
                }
            });
        }
        Ok(Some((key.name, key.role)))
    }
}
