//! A JSON body extractor whose every rejection is a JSON error: malformed JSON is 400 (not
//! axum's plain-text 422), an oversized body 413. The Content-Type header is not required, so
//! `curl -d '{...}'` works as typed.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::error::Error;

pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.settings.server.max_body_bytes;
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Error::PayloadTooLarge { limit }
                } else {
                    Error::InvalidJson(format!("could not read the request body: {e}"))
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::InvalidJson(
                "the request body must be a JSON object".into(),
            ));
        }
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => Error::Validation(e.to_string()),
                _ => Error::InvalidJson(format!("malformed JSON: {e}")),
            })
    }
}
