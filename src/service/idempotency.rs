//! Stored responses of keyed requests (`Idempotency-Key`): the HTTP layer claims a key before a
//! request runs and stores the response after; these pass its calls to Postgres with the
//! configured lease and lifetime.

use std::time::Duration;

use super::Seatlock;
use crate::domain::idempotency::{IdempotencyScope, KeyClaim};
use crate::error::Result;

impl Seatlock {
    /// Claims a key for one request, or reports what it already holds (a stored response, a
    /// different body, a request still running).
    pub async fn claim_idempotency_key(
        &self,
        scope: &IdempotencyScope,
        fingerprint: &str,
    ) -> Result<KeyClaim> {
        let settings = &self.settings.idempotency;
        let lease = Duration::from_secs(settings.lease_seconds);
        let ttl = Duration::from_secs(settings.ttl_hours * 3600);
        self.pg
            .claim_idempotency_key(scope, fingerprint, lease, ttl)
            .await
    }

    /// Stores the final response of a claimed key.
    pub async fn complete_idempotency_key(
        &self,
        scope: &IdempotencyScope,
        status: u16,
        body: &[u8],
    ) -> Result<()> {
        self.pg.complete_idempotency_key(scope, status, body).await
    }

    /// Hands a claimed key with no stored response straight to the retry.
    pub async fn release_idempotency_key(&self, scope: &IdempotencyScope) -> Result<()> {
        self.pg.release_idempotency_key(scope).await
    }
}
