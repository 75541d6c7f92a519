//! Webhooks: endpoints (created, changed, deleted, their secret rotated; a URL that is not http
//! or https, or whose host has a non-public address, is refused unless
//! `webhooks.allow_private_networks`), their delivery log and replays; [`deliver`]: the loop
//! that sends queued messages; [`client`]: the HTTP client and its address guard.

mod client;
mod deliver;

use std::time::Duration;

use chrono::{DateTime, Utc};

pub use client::WebhookClient;

use super::Seatlock;
use crate::domain::webhooks::{Delivery, Endpoint, EndpointChange, NewEndpoint, new_secret};
use crate::error::{Error, Result};

/// How long a creation waits for the URL's host to resolve before it accepts it unchecked.
const RESOLVE_AT_CREATION: Duration = Duration::from_secs(2);

/// How long the secret a rotation replaced keeps signing beside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);

impl Seatlock {
    /// Checks where a URL points: its host's every address must be public (unless private
    /// networks are allowed). A host name that cannot be resolved now (no DNS, a name not yet
    /// published) is accepted: every delivery resolves it again and refuses a non-public address
    /// there, so nothing is let through that the delivery would not refuse.
    async fn check_destination(&self, url: &str) -> Result<()> {
        let parsed = url::Url::parse(url).map_err(|e| Error::Validation(format!("url: {e}")))?;
        let host = parsed.host_str().unwrap_or_default();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let allow = self.settings.webhooks.allow_private_networks;
        let resolved =
            tokio::time::timeout(RESOLVE_AT_CREATION, client::resolve(host, port, allow));
        match resolved.await {
            Ok(Err(e)) if e.to_string().contains("not a public address") => {
                Err(Error::WebhookUrlForbidden(format!("url refused: {e}")))
            }
            Ok(Err(e)) => {
                tracing::debug!(host, error = %e, "webhook host not resolved at creation");
                Ok(())
            }
            Err(_) | Ok(Ok(_)) => Ok(()),
        }
    }

    /// Creates an endpoint; returns it with its secret (shown only now and at a rotation).
    pub async fn create_webhook(&self, new: NewEndpoint) -> Result<(Endpoint, String)> {
        self.check_destination(&new.url).await?;
        let secret = new_secret();
        let endpoint = self.pg.insert_endpoint(&new, &secret).await?;
        Ok((endpoint, secret))
    }

    pub async fn list_webhooks(&self) -> Result<Vec<Endpoint>> {
        self.pg.fetch_endpoints().await
    }

    pub async fn webhook(&self, id: uuid::Uuid) -> Result<Endpoint> {
        self.pg
            .fetch_endpoint(id)
            .await?
            .ok_or(Error::WebhookNotFound)
    }

    pub async fn update_webhook(&self, id: uuid::Uuid, change: EndpointChange) -> Result<Endpoint> {
        if let Some(url) = &change.url {
            self.check_destination(url).await?;
        }
        let endpoint = self
            .pg
            .update_endpoint(id, &change)
            .await?
            .ok_or(Error::WebhookNotFound)?;
        if change.enabled == Some(true) {
            self.webhooks_wake.notify_one();
        }
        Ok(endpoint)
    }

    pub async fn delete_webhook(&self, id: uuid::Uuid) -> Result<()> {
        if self.pg.delete_endpoint(id).await? {
            Ok(())
        } else {
            Err(Error::WebhookNotFound)
        }
    }

    /// A new secret for the endpoint; the old one keeps signing beside it for 24 h.
    pub async fn rotate_webhook_secret(&self, id: uuid::Uuid) -> Result<(Endpoint, String)> {
        let secret = new_secret();
        let endpoint = self
            .pg
            .rotate_secret(id, &secret, ROTATION_OVERLAP)
            .await?
            .ok_or(Error::WebhookNotFound)?;
        Ok((endpoint, secret))
    }

    /// The endpoint's messages, newest first, with their attempts.
    pub async fn webhook_deliveries(
        &self,
        id: uuid::Uuid,
        limit: i64,
        status: Option<&str>,
    ) -> Result<Vec<Delivery>> {
        self.webhook(id).await?;
        self.pg.fetch_deliveries(id, limit, status).await
    }

    /// Queues again every message of the endpoint made since `since`; how many.
    pub async fn replay_webhook(&self, id: uuid::Uuid, since: DateTime<Utc>) -> Result<u64> {
        self.webhook(id).await?;
        let queued = self.pg.replay_messages(id, since).await?;
        self.webhooks_wake.notify_one();
        Ok(queued)
    }
}
