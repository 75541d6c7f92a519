//! API keys: looked up by SHA-256 digest, with a bounded in-memory cache so checking a key
//! costs no Postgres query per request. An entry (a key, or the absence of one) is trusted for
//! `auth.key_cache_seconds` (at most 30): the most a revoke takes to reach this instance.
//! `last_used_at` is written at most once a minute per key and instance, off the request path.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::access::{ApiKey, key_digest};
use crate::error::Result;
use crate::store::postgres::PgStore;

/// Most live keys kept, and most absent keys remembered (kept apart, so a flood of made-up keys
/// never pushes a real one out); past either, the expired entries of that map are dropped, then
/// the rest of it.
const MAX_ENTRIES: usize = 100_000;
/// How often `last_used_at` is written for one key.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

struct Entry {
    key: ApiKey,
    fetched: Instant,
    touched: Option<Instant>,
}

pub(super) struct KeyCache {
    entries: Mutex<Maps>,
    ttl: Duration,
}

#[derive(Default)]
struct Maps {
    found: HashMap<[u8; 32], Entry>,
    absent: HashMap<[u8; 32], Instant>,
}

impl KeyCache {
    pub(super) fn new(ttl: Duration) -> Self {
        KeyCache {
            entries: Mutex::default(),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        // The map holds only cached lookups: after a panic elsewhere it is still usable.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live key with this secret (its name, role, channels and admission), or None for an
    /// unknown or revoked key.
    pub(super) async fn lookup(&self, pg: &PgStore, secret: &str) -> Result<Option<ApiKey>> {
        let digest = key_digest(secret);
        let now = Instant::now();
        let cached = {
            let mut maps = self.lock();
            if maps
                .absent
                .get(&digest)
                .is_some_and(|at| now.duration_since(*at) < self.ttl)
            {
                return Ok(None);
            }
            match maps.found.get_mut(&digest) {
                Some(e) if now.duration_since(e.fetched) < self.ttl => {
                    let touch = e
                        .touched
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
            Some(hit) => (Some(hit.0), hit.1),
            None => {
                let key = pg.fetch_api_key(&digest).await?;
                let mut maps = self.lock();
                let ttl = self.ttl;
                match &key {
                    None => {
                        if maps.absent.len() >= MAX_ENTRIES {
                            maps.absent.retain(|_, at| now.duration_since(*at) < ttl);
                            if maps.absent.len() >= MAX_ENTRIES {
                                maps.absent.clear();
                            }
                        }
                        maps.absent.insert(digest, now);
                        (None, false)
                    }
                    Some(found) => {
                        if maps.found.len() >= MAX_ENTRIES {
                            maps.found
                                .retain(|_, e| now.duration_since(e.fetched) < ttl);
                            if maps.found.len() >= MAX_ENTRIES {
                                maps.found.clear();
                            }
                        }
                        // The last write of `last_used_at` survives a refetch of the key.
                        let last = maps.found.get(&digest).and_then(|e| e.touched);
                        let touch = last.is_none_or(|t| now.duration_since(t) >= TOUCH_EVERY);
                        let touched = if touch { Some(now) } else { last };
                        let entry = Entry {
                            key: found.clone(),
                            fetched: now,
                            touched,
                        };
                        maps.found.insert(digest, entry);
                        (Some(found.clone()), touch)
                    }
                }
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
        Ok(Some(key))
    }
}
