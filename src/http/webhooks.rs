//! Webhook endpoints (admins): `POST /webhooks`, `GET /webhooks`, `GET|PATCH|DELETE
//! /webhooks/{id}`, `POST /webhooks/{id}/rotate-secret`, `GET /webhooks/{id}/deliveries`,
//! `POST /webhooks/{id}/replay`. The secret appears in the answers of creation and rotation only.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::ApiJson;
use super::state::AppState;
pub(super) use super::webhook_views::{
    DeliveryList, MessageView, Replayed, WebhookList, WebhookView, WebhookWithSecret,
};
use crate::domain::access::{Action, Caller, authorize};
use crate::domain::webhooks::{
    DELIVERY_STATUSES, EndpointChange, NewEndpoint, check_description, check_event_ids,
    check_types, check_url,
};
use crate::error::Error;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list_webhooks).post(create_webhook))
        .route(
            "/webhooks/{webhook_id}",
            get(get_webhook)
                .patch(update_webhook)
                .delete(delete_webhook),
        )
        .route("/webhooks/{webhook_id}/rotate-secret", post(rotate_secret))
        .route("/webhooks/{webhook_id}/deliveries", get(list_deliveries))
        .route("/webhooks/{webhook_id}/replay", post(replay))
}

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateWebhookBody {
    /// `http` or `https`; its host must have only public addresses (unless
    /// `webhooks.allow_private_networks`).
    #[schema(value_type = String, required = true, max_length = 2048, example = "https://example.com/seatlock")]
    url: Option<String>,
    /// Message types to send (left out or null: all).
    #[schema(example = json!(["booking.confirmed", "booking.cancelled"]))]
    types: Option<Vec<String>>,
    /// Events to send messages of (left out or null: all).
    #[schema(max_items = 1000)]
    event_ids: Option<Vec<i64>>,
    #[schema(max_length = 1000)]
    description: Option<String>,
}

/// A change: each field present is set (`types` or `eventIds` null: all again).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct UpdateWebhookBody {
    /// Not null: an endpoint always has a URL.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, required = false, max_length = 2048)]
    url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<i64>>)]
    event_ids: Option<Option<Vec<i64>>>,
    /// true re-enables a disabled endpoint (it then gets what queued while it was off); not
    /// null.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool, required = false)]
    enabled: Option<Option<bool>>,
    #[schema(max_length = 1000)]
    description: Option<String>,
}

/// A field that is present (even as null) is `Some`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct ReplayBody {
    /// RFC 3339: every message of the endpoint made since then is queued again.
    #[schema(value_type = String, required = true, format = DateTime)]
    since: Option<String>,
}

/// The `{webhook_id}` of a route; anything but a UUID is an unknown endpoint (404).
fn webhook_id(path: Option<Path<String>>) -> Result<uuid::Uuid, Error> {
    path.and_then(|Path(s)| uuid::Uuid::parse_str(&s).ok())
        .ok_or(Error::WebhookNotFound)
}

/// Creates an endpoint (admins); the answer carries its secret, shown only here.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", request_body = CreateWebhookBody,
    responses(
        (status = 201, description = "Created, with its secret", body = WebhookWithSecret),
        (status = 400, description = "A field out of range, or the URL points at a non-public address (WEBHOOK_URL_FORBIDDEN)", body = ErrorBody),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "history.enabled is false (HISTORY_DISABLED)", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    body: ApiResult<ApiJson<CreateWebhookBody>>,
) -> ApiResult<(StatusCode, Json<WebhookWithSecret>)> {
    authorize(&caller, Action::ManageWebhooks, None)?;
    let ApiJson(body) = body?;
    let url = body
        .url
        .ok_or_else(|| ApiError::validation("url is required"))?;
    let new = NewEndpoint {
        url: check_url(&url).map_err(ApiError::validation)?.to_string(),
        types: check_types(body.types).map_err(ApiError::validation)?,
        event_ids: check_event_ids(body.event_ids).map_err(ApiError::validation)?,
        description: check_description(body.description).map_err(ApiError::validation)?,
    };
    let (endpoint, secret) = state.seatlock.create_webhook(new).await?;
    let endpoint = endpoint.into();
    Ok((
        StatusCode::CREATED,
        Json(WebhookWithSecret { endpoint, secret }),
    ))
}

/// Every endpoint (admins).
#[utoipa::path(get, path = "/webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "The endpoints", body = WebhookList),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "history.enabled is false (HISTORY_DISABLED)", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn list_webhooks(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<WebhookList>> {
    authorize(&caller, Action::ManageWebhooks, None)?;
    let webhooks = state.seatlock.list_webhooks().await?;
    Ok(Json(WebhookList {
        webhooks: webhooks.into_iter().map(WebhookView::from).collect(),
    }))
}

/// One endpoint (admins).
#[utoipa::path(get, path = "/webhooks/{webhook_id}", tag = "webhooks",
    params(("webhook_id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The endpoint", body = WebhookView),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "No such endpoint, or history.enabled is false (HISTORY_DISABLED)", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn get_webhook(
    State(state): State<AppState>,
    caller: Caller,
    path: Option<Path<String>>,
) -> ApiResult<Json<WebhookView>> {
    authorize(&caller, Action::ManageWebhooks, None)?;
    let id = webhook_id(path)?;
    Ok(Json(state.seatlock.webhook(id).await?.into()))
}

/// Changes an endpoint (admins); `enabled: true` re-enables it.
#[utoipa::path(patch, path = "/webhooks/{webhook_id}", tag = "webhooks",
    params(("webhook_id" = String, Path, format = Uuid)), request_body = UpdateWebhookBody,
    responses(
        (status = 200, description = "The endpoint as changed", body = WebhookView),
        (status = 400, description = "A field out of range, or the URL points at a non-public address (WEBHOOK_URL_FORBIDDEN)", body = ErrorBody),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "No such endpoint, or history.enabled is false (HISTORY_DISABLED)", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn update_webhook(
    State(state): State<AppState>,
    caller: Caller,
    path: Option<Path<String>>,
    body: ApiResult<ApiJson<UpdateWebhookBody>>,
) -> ApiResult<Json<WebhookView>> {
    authorize(&caller, Action::ManageWebhooks, None)?;
    let id = webhook_id(path)?;
    let ApiJson(body) = body?;
    let invalid = ApiError::validation;
    let change = EndpointChange {
        url: match body.url {
            Some(Some(url)) => Some(check_url(&url).map_err(invalid)?.to_string()),
            Some(None) => return Err(ApiError::validation("url may not be null")),
            None => None,
        },
        types: match body.types {
            Some(t) => Some(check_types(t).map_err(invalid)?),
            None => None,
        },
        event_ids: match body.event_ids {
            Some(ids) => Some(check_event_ids(ids).map_err(invalid)?),
            None => None,
        },
        enabled: match body.enabled {
            Some(None) => {
                return Err(ApiError::validation(
                    "enabled must be true or false, not null",
                ));
            }
            Some(enabled) => enabled,
            None => None,
        },
        description: match body.description {
            Some(d) => Some(check_description(Some(d)).map_err(invalid)?),
            None => None,
        },
    };
    Ok(Json(
        state.seatlock.update_webhook(id, change).await?.into(),
    ))
}

/// Deletes an endpoint and its queued messages (admins).
#[utoipa::path(delete, path = "/webhooks/{webhook_id}", tag = "webhooks",
    params(("webhook_id" = String, Path, format = Uuid)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "No such endpoint, or history.enabled is false (HISTORY_DISABLED)", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    path: Option<Path<String>>,
) -> ApiResult<StatusCode> {
    authorize(&caller, Action::ManageWebhooks, None)?;
    state.seatlock.delete_webhook(webhook_id(path)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new secret (admins); messages carry signatures by both secrets for the next 24 h.
#[utoipa::path(post, path = "/webhooks/{webhook_id}/rotate-secret", tag = "webhooks",
    params(("webhook_id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The endpoint with its new secret", body = WebhookWithSecret),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "No such endpoint, or history.enabled is false (HISTORY_DISABLED)", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    path: Option<Path<String>>,
) -> ApiResult<Json<WebhookWithSecret>> {
    authorize(&caller, Action::ManageWebhooks, None)?;
    let (endpoint, secret) = state
        .seatlock
        .rotate_webhook_secret(webhook_id(path)?)
        .await?;
    let endpoint = endpoint.into();
    Ok(Json(WebhookWithSecret { endpoint, secret }))
}

/// The endpoint's messages, newest first, with their attempts (admins).
#[utoipa::path(get, path = "/webhooks/{webhook_id}/deliveries", tag = "webhooks",
    params(
        ("webhook_id" = String, Path, format = Uuid),
        ("limit" = Option<i64>, Query, description = "At most this many (default 100)", minimum = 1, maximum = 1000),
        ("status" = Option<String>, Query, description = "pending, delivered or failed"),
    ),
    responses(
        (status = 200, description = "The messages", body = DeliveryList),
        (status = 400, description = "A parameter out of range", body = ErrorBody),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "No such endpoint, or history.enabled is false (HISTORY_DISABLED)", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    path: Option<Path<String>>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<DeliveryList>> {
    authorize(&caller, Action::ManageWebhooks, None)?;
    let id = webhook_id(path)?;
    let limit = match params.get("limit") {
        None => 100,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::validation("limit must be an integer from 1 to 1000"))?,
    };
    let status = params.get("status").map(String::as_str);
    if let Some(s) = status
        && !DELIVERY_STATUSES.contains(&s)
    {
        return Err(ApiError::validation(
            "status must be pending, delivered or failed",
        ));
    }
    let messages = state.seatlock.webhook_deliveries(id, limit, status).await?;
    Ok(Json(DeliveryList {
        messages: messages.into_iter().map(MessageView::from).collect(),
    }))
}

/// Queues again every message of the endpoint made since `since` (admins), with the same
/// `webhook-id`s.
#[utoipa::path(post, path = "/webhooks/{webhook_id}/replay", tag = "webhooks",
    params(("webhook_id" = String, Path, format = Uuid)), request_body = ReplayBody,
    responses(
        (status = 200, description = "Queued again", body = Replayed),
        (status = 400, description = "since is missing or not RFC 3339", body = ErrorBody),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "No such endpoint, or history.enabled is false (HISTORY_DISABLED)", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    path: Option<Path<String>>,
    body: ApiResult<ApiJson<ReplayBody>>,
) -> ApiResult<Json<Replayed>> {
    authorize(&caller, Action::ManageWebhooks, None)?;
    let id = webhook_id(path)?;
    let ApiJson(body) = body?;
    let since = body
        .since
        .as_deref()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .ok_or_else(|| ApiError::validation("since is required, an RFC 3339 time"))?;
    let queued = state
        .seatlock
        .replay_webhook(id, since.with_timezone(&chrono::Utc))
        .await?;
    Ok(Json(Replayed { queued }))
}
