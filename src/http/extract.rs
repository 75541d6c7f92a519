//! Request extractors whose every rejection is a JSON error: typed path ids (an id that does not
//! parse is an unknown resource, 404, also when it is not UTF-8), a JSON body that need not carry
//! a Content-Type, and the `userId` field.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, RawPathParams, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::state::AppState;
use crate::domain::access::{Caller, acting_user};
use crate::domain::events::EventId;
use crate::domain::fields::validate_user_id;
use crate::domain::holds::HoldGroupId;
use crate::error::Error;

/// The `{event_id}` of a route; anything but a positive integer is an unknown event (404).
/// Records the id on the request span.
pub struct EventPath(pub EventId);

impl<S: Send + Sync> FromRequestParts<S> for EventPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        let raw = Path::<String>::from_request_parts(parts, state).await.ok();
        let id = raw
            .and_then(|Path(s)| EventId::parse(&s))
            .ok_or(Error::EventNotFound)?;
        tracing::Span::current().record("event.id", id.0);
        Ok(EventPath(id))
    }
}

/// The `{booking_id}` of a route; anything but a UUID is an unknown booking (404). Records the
/// id on the request span.
pub struct BookingPath(pub HoldGroupId);

impl<S: Send + Sync> FromRequestParts<S> for BookingPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        let raw = Path::<String>::from_request_parts(parts, state).await.ok();
        let id = raw
            .and_then(|Path(s)| HoldGroupId::parse(&s))
            .ok_or(Error::BookingNotFound)?;
        tracing::Span::current().record("booking.id", tracing::field::display(id));
        Ok(BookingPath(id))
    }
}

/// Who is calling, as the gate (`http::auth`) found it. A route outside the gate has no caller:
/// asking for one there is a bug, answered 500, never a trusted caller by default.
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Self> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            Error::Internal("a route outside the auth gate asked for its caller".into()).into()
        })
    }
}

/// The event a request acts on, from `{event_id}` or from the event a `{booking_id}` carries;
/// None when the route has neither or it does not parse (the handler answers that request).
pub struct ActedOnEvent(pub Option<EventId>);

impl<S: Send + Sync> FromRequestParts<S> for ActedOnEvent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state).await.ok();
        let event = params.and_then(|params| {
            params.iter().find_map(|(name, value)| match name {
                "event_id" => EventId::parse(value),
                "booking_id" => HoldGroupId::parse(value).and_then(|h| h.event()),
                _ => None,
            })
        });
        Ok(ActedOnEvent(event))
    }
}

/// A JSON body: malformed JSON is 400 `INVALID_JSON` (not axum's plain-text 422), a body over
/// `server.max_body_bytes` 413, a field of the wrong type 400 `VALIDATION_FAILED`. No
/// Content-Type is required, so `curl -d '{...}'` works as typed.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> ApiResult<Self> {
        let limit = state.settings.server.max_body_bytes;
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge { limit }
                } else {
                    ApiError::InvalidJson(format!("could not read the request body: {e}"))
                }
            })?;
        // Every body of this API is an object: an array would otherwise fill a struct by
        // position (`["u2", ["S1"]]` as a reserve).
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::InvalidJson(
                "the request body must be a JSON object".into(),
            ));
        }
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => {
                    ApiError::validation(field_error::<T>(&bytes, &e))
                }
                _ => ApiError::InvalidJson(format!("malformed JSON: {e}")),
            })
    }
}

/// A field's error in the API's words, named by its path (`seats[0].price: ...`). The body is
/// read again, tracking the path, only when it failed: a good body pays nothing for it.
fn field_error<T: DeserializeOwned>(bytes: &[u8], first: &serde_json::Error) -> String {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let (path, message) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => (e.path().to_string(), api_words(&e.inner().to_string())),
        Ok(_) => (".".to_string(), api_words(&first.to_string())),
    };
    if path == "." || path.is_empty() {
        message
    } else {
        format!("{path}: {message}")
    }
}

/// serde's message without its position and with the API's types instead of Rust's.
fn api_words(message: &str) -> String {
    let mut out = match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    };
    // "expected struct SeatInput": the struct's name is Rust's, not the API's.
    while let Some(i) = out.find("expected struct ") {
        let name = i + "expected struct ".len();
        let end = out[name..]
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .map_or(out.len(), |j| name + j);
        out.replace_range(i..end, "expected an object");
    }
    for (rust, api) in [
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected an object"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
    ] {
        out = out.replace(rust, api);
    }
    for int in [
        "i64", "u64", "i32", "u32", "i16", "u16", "u8", "i8", "usize", "isize",
    ] {
        out = out.replace(&format!("expected {int}"), "expected a whole number");
    }
    out
}

/// The `userId` of a body as given: a string, or a whole number (used as its decimal text) for
/// clients that number their users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdInput(String);

impl UserIdInput {
    /// The checked user id (trimmed, 1-128 characters, no control characters).
    pub fn validate(&self) -> ApiResult<String> {
        validate_user_id(Some(&self.0)).map_err(ApiError::validation)
    }

    /// The buyer a request acts for: the body's `userId` (checked) and the caller decide (see
    /// [`acting_user`]).
    pub fn acting_user(caller: &Caller, input: Option<&UserIdInput>) -> ApiResult<String> {
        let given = input.map(UserIdInput::validate).transpose()?;
        Ok(acting_user(caller, given)?)
    }
}

impl<'de> Deserialize<'de> for UserIdInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        user_id_text(&Value::deserialize(d)?)
            .map(UserIdInput)
            .map_err(D::Error::custom)
    }
}

/// The text of a JSON `userId`: a string as is, a whole number in decimal; anything else is
/// refused with a sentence in the API's words.
pub fn user_id_text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        _ => Err("userId must be a string or a whole number (at most 20 digits)".into()),
    }
}

/// The checked user id of a JSON body, if it has a valid one.
pub fn user_id_of(body: &Value) -> Option<String> {
    let text = user_id_text(&body["userId"]).ok()?;
    validate_user_id(Some(&text)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_strings_or_whole_numbers() {
        let parse = |s: &str| serde_json::from_str::<UserIdInput>(s).map(|u| u.0);
        assert_eq!(parse(r#""u1""#).ok(), Some("u1".into()));
        assert_eq!(parse("42").ok(), Some("42".into()));
        assert_eq!(
            parse("12345678901234567890").ok(),
            Some("12345678901234567890".into())
        );
        for bad in ["1.5", "1e3", "true", "[]", "123456789012345678901"] {
            let err = parse(bad).expect_err(bad).to_string();
            assert!(err.contains("userId must be"), "{bad}: {err}");
        }
    }

    #[test]
    fn field_errors_name_the_field_in_the_api_words() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct SeatInput {
            code: String,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        #[allow(dead_code)]
        struct Body {
            total_seats: Option<u32>,
            seats: Option<Vec<SeatInput>>,
        }
        let message = |body: &str| {
            let e = serde_json::from_slice::<Body>(body.as_bytes()).expect_err(body);
            field_error::<Body>(body.as_bytes(), &e)
        };
        assert_eq!(
            message(r#"{"seats":[5]}"#),
            "seats[0]: invalid type: integer `5`, expected an object"
        );
        assert_eq!(
            message(r#"{"totalSeats":"5"}"#),
            r#"totalSeats: invalid type: string "5", expected a whole number"#
        );
        assert_eq!(
            message(r#"{"seats":{}}"#),
            "seats: invalid type: map, expected an array"
        );
        assert_eq!(
            message(r#"{"seats":[{}]}"#),
            "seats[0]: missing field `code`"
        );
    }

    #[test]
    fn a_body_yields_its_checked_user_id() {
        let body = |s: &str| serde_json::from_str::<Value>(s).expect("json");
        assert_eq!(user_id_of(&body(r#"{"userId":" u1 "}"#)), Some("u1".into()));
        assert_eq!(user_id_of(&body(r#"{"userId":7}"#)), Some("7".into()));
        assert_eq!(user_id_of(&body(r#"{"userId":""}"#)), None);
        assert_eq!(user_id_of(&body(r#"{"userId":1.5}"#)), None);
        assert_eq!(user_id_of(&body(r#"["u1"]"#)), None);
    }
}
