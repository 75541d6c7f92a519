//! Authentication: turns a bearer token into a [`Caller`]. In `auth.mode = none` every request
//! is a trusted caller; in `token` mode a token is an API key (`sl_...`, looked up through a
//! short cache) or a JWT (verified locally, no I/O). Beside it, admission: the waiting-room
//! token of a hold (`admission.mode`), verified locally too.

mod admission;
mod jwt;
mod keys;
mod numeric_date;
mod queueit_events;

use std::time::Duration;

pub use self::admission::{
    Admission, AdmissionRefused, AdmissionVerifier, MAX_ADMISSION_TOKEN_BYTES,
};
use self::jwt::JwtVerifier;
use self::keys::KeyCache;
use self::queueit_events::QueueitEvents;
use super::Seatlock;
use crate::config::{AdmissionMode, AdmissionSettings, AuthMode, AuthSettings};
use crate::domain::access::{
    ApiKeyInfo, Caller, KeyRole, NewApiKey, check_channels, generate_key, is_api_key, key_digest,
    validate_key_name,
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
    admission_mode: AdmissionMode,
    /// None when `admission.mode` is `off`.
    admission: Option<AdmissionVerifier>,
    queueit_events: QueueitEvents,
}

impl Authenticator {
    pub(super) fn new(
        settings: &AuthSettings,
        admission: &AdmissionSettings,
    ) -> anyhow::Result<Self> {
        Ok(Authenticator {
            mode: settings.mode,
            jwt: JwtVerifier::new(&settings.jwt)?,
            keys: KeyCache::new(Duration::from_secs(settings.key_cache_seconds)),
            admission_mode: admission.mode,
            admission: AdmissionVerifier::new(admission)?,
            queueit_events: QueueitEvents::default(),
        })
    }
}

/// Reads and parses the configured JWT and admission keys, as start-up will: a missing file or a
/// key of the wrong kind is a bad setting (the error names its key).
pub fn check_keys(settings: &crate::config::Settings) -> anyhow::Result<()> {
    Authenticator::new(&settings.auth, &settings.admission).map(|_| ())
}

impl Seatlock {
    pub fn auth_mode(&self) -> AuthMode {
        self.auth.mode
    }

    /// Which admission tokens holds need (`admission.mode`).
    pub fn admission_mode(&self) -> AdmissionMode {
        self.auth.admission_mode
    }

    /// Verifies a hold's admission token for the event `event_id` (its id as text) and returns
    /// whom it admits; refused with [`AdmissionRefused::Off`] when admission is off. Whether
    /// the caller needs one at all is [`Caller::skips_admission`]'s to say.
    pub fn verify_admission(
        &self,
        token: &str,
        event_id: &str,
    ) -> Result<Admission, AdmissionRefused> {
        match &self.auth.admission {
            Some(verifier) => verifier.verify(token, event_id),
            None => Err(AdmissionRefused::Off),
        }
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
            return found.map(Caller::of_key).ok_or(AuthFailure::UnknownKey);
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
    /// Creates an API key; only its digest is stored. Its channels are checked (duplicates
    /// dropped); an admin key always skips admission.
    pub async fn create_api_key(&self, new: &NewApiKey) -> crate::error::Result<KeyCreated> {
        use crate::error::Error;
        validate_key_name(&new.name).map_err(Error::Validation)?;
        let new = NewApiKey {
            channels: check_channels(new.channels.clone()).map_err(Error::Validation)?,
            skips_admission: new.skips_admission || new.role == KeyRole::Admin,
            ..new.clone()
        };
        let key = generate_key();
        let created = self.pg.insert_api_key(&new, &key_digest(&key)).await?;
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
