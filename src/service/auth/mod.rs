//! Authentication: turns a bearer token into a [`Caller`]. In `auth.mode = none` every request
//! is a trusted caller; in `token` mode a token is an API key (`sl_...`, looked up through a
//! short cache) or a JWT (verified locally, no I/O).

mod jwt;
mod keys;

use std::time::Duration;

use self::jwt::JwtVerifier;
use self::keys::KeyCache;
use super::Seatlock;
use crate::config::{AuthMode, AuthSettings};
use crate::domain::access::{
    ApiKeyInfo, Caller, KeyRole, generate_key, is_api_key, key_digest, validate_key_name,
};
use crate::telemetry::{self, AuthFailureReason};

/// Why a token was refused (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a JWT (nor an API key) at all.
    Malformed,
    /// Signed with an algorithm that has no configured key (`none` included).
    Algorithm,
    /// The signature does not verify.
    Signature,
    Expired,
    NotYetValid,
    /// Issuer, audience or subject missing or wrong.
    Claims,
    /// An API key that does not exist or was revoked.
    UnknownKey,
    /// The key could not be checked (Postgres down): not the caller's fault.
    Unavailable,
}

impl AuthFailure {
    fn label(self) -> AuthFailureReason {
        match self {
            AuthFailure::Missing => AuthFailureReason::Missing,
            AuthFailure::Malformed => AuthFailureReason::Malformed,
            AuthFailure::Algorithm => AuthFailureReason::Algorithm,
            AuthFailure::Signature => AuthFailureReason::Signature,
            AuthFailure::Expired => AuthFailureReason::Expired,
            AuthFailure::NotYetValid => AuthFailureReason::NotYetValid,
            AuthFailure::Claims => AuthFailureReason::Claims,
            AuthFailure::UnknownKey => AuthFailureReason::UnknownKey,
            AuthFailure::Unavailable => AuthFailureReason::Unavailable,
        }
    }
}

/// The verifiers of one instance.
pub(super) struct Authenticator {
    mode: AuthMode,
    jwt: Option<JwtVerifier>,
    keys: KeyCache,
}

impl Authenticator {
    pub(super) fn new(settings: &AuthSettings) -> anyhow::Result<Self> {
        Ok(Authenticator {
            mode: settings.mode,
            jwt: JwtVerifier::new(&settings.jwt)?,
            keys: KeyCache::new(Duration::from_secs(settings.key_cache_seconds)),
        })
    }
}

impl Seatlock {
    pub fn auth_mode(&self) -> AuthMode {
        self.auth.mode
    }

    /// The caller of a request, from its bearer token (None: no token was sent).
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Caller, AuthFailure> {
        let result = self.authenticate_token(token).await;
        if let Err(failure) = &result {
            telemetry::record_auth_failure(failure.label());
        }
        result
    }

    async fn authenticate_token(&self, token: Option<&str>) -> Result<Caller, AuthFailure> {
        if self.auth.mode == AuthMode::None {
            return Ok(Caller::trusted());
        }
        let token = token.ok_or(AuthFailure::Missing)?;
        if is_api_key(token) {
            let found = self.auth.keys.lookup(&self.pg, token).await.map_err(|e| {
                tracing::warn!(error = %e, "could not check an API key");
                AuthFailure::Unavailable
            })?;
            let (name, role) = found.ok_or(AuthFailure::UnknownKey)?;
            return Ok(Caller {
                role: role.role(),
                subject: None,
                key_name: Some(name),
            });
        }
        match &self.auth.jwt {
            Some(verifier) => verifier.verify(token),
            None => Err(AuthFailure::Algorithm),
        }
    }
}

/// What `keys create` can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCreated {
    /// The new key, to be shown once.
    Created(String),
    /// A live key already has this name.
    NameTaken,
}

impl Seatlock {
    /// Creates an API key; only its digest is stored.
    pub async fn create_api_key(
        &self,
        name: &str,
        role: KeyRole,
    ) -> crate::error::Result<KeyCreated> {
        validate_key_name(name).map_err(crate::error::Error::Validation)?;
        let key = generate_key();
        let created = self
            .pg
            .insert_api_key(name, &key_digest(&key), role)
            .await?;
        Ok(if created {
            KeyCreated::Created(key)
        } else {
            KeyCreated::NameTaken
        })
    }

    /// Every key (never the key itself), live first.
    pub async fn list_api_keys(&self) -> crate::error::Result<Vec<ApiKeyInfo>> {
        self.pg.list_api_keys().await
    }

    /// Revokes the live key of this name; false when there is none. Instances stop accepting
    /// it within `auth.key_cache_seconds`.
    pub async fn revoke_api_key(&self, name: &str) -> crate::error::Result<bool> {
        self.pg.revoke_api_key(name).await
    }
}
