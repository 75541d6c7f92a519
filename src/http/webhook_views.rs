//! The answers of the webhook routes (`super::webhooks`): endpoints (never with their secret
//! but on creation and rotation), the delivery log, replays.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::webhooks::{Delivery, Endpoint, rfc3339};

/// An endpoint (never with its secret).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhookView {
    #[schema(value_type = String, format = Uuid)]
    pub(crate) id: String,
    pub(crate) url: String,
    /// null: every type.
    pub(crate) types: Option<Vec<String>>,
    /// null: every event.
    pub(crate) event_ids: Option<Vec<i64>>,
    pub(crate) description: String,
    pub(crate) enabled: bool,
    /// Why it was disabled (410 Gone, failing for `webhooks.disable_after_hours`, an
    /// administrator); null while enabled.
    pub(crate) disabled_reason: Option<String>,
    #[schema(format = DateTime)]
    pub(crate) created_at: String,
}

impl From<Endpoint> for WebhookView {
    fn from(e: Endpoint) -> Self {
        WebhookView {
            id: e.id.to_string(),
            url: e.url,
            types: e.types,
            event_ids: e.event_ids,
            description: e.description,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            created_at: rfc3339(e.created_at_ms),
        }
    }
}

/// An endpoint with its signing secret: the answer of a creation or a rotation only.
#[derive(Serialize, ToSchema)]
pub(crate) struct WebhookWithSecret {
    #[serde(flatten)]
    pub(crate) endpoint: WebhookView,
    /// `whsec_` + base64 of 32 random bytes: verify `webhook-signature` with it.
    pub(crate) secret: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct WebhookList {
    pub(crate) webhooks: Vec<WebhookView>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AttemptView {
    #[schema(format = DateTime)]
    pub(crate) at: String,
    /// The receiver's status, or null when it did not answer.
    pub(crate) status_code: Option<u16>,
    /// Why there was no usable answer (timeout, connection, address refused), or null.
    pub(crate) error: Option<String>,
    pub(crate) duration_ms: u32,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageView {
    /// Its `webhook-id`, the same on every retry and replay.
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// pending, delivered or failed.
    pub(crate) status: String,
    #[schema(format = DateTime)]
    pub(crate) created_at: String,
    /// When it is due next; null once delivered or failed.
    #[schema(format = DateTime)]
    pub(crate) next_attempt_at: Option<String>,
    pub(crate) attempts: Vec<AttemptView>,
}

impl From<Delivery> for MessageView {
    fn from(d: Delivery) -> Self {
        MessageView {
            id: d.id,
            kind: d.kind,
            status: d.status,
            created_at: rfc3339(d.created_at_ms),
            next_attempt_at: d.next_attempt_at_ms.map(rfc3339),
            attempts: d
                .attempts
                .into_iter()
                .map(|a| AttemptView {
                    at: rfc3339(a.at_ms),
                    status_code: a.status_code,
                    error: a.error,
                    duration_ms: a.duration_ms,
                })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct DeliveryList {
    /// Newest first.
    pub(crate) messages: Vec<MessageView>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Replayed {
    /// Messages queued again.
    pub(crate) queued: u64,
}
