//! `POST /events/{id}/seats/reserve`: named seats and tier units, or best-available, checked
//! here (sizes, codes, who holds as the sales policy sees it) and held by the service.

use std::pin::Pin;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::{Extension, Json};
use serde::Deserialize;
use tracing::Instrument;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody, service_code, service_status};
use super::extract::{ApiJson, EventPath, UserIdInput};
use super::holds::{HoldView, TierLineInput, TierLineView};
use super::rfc3339;
use super::state::AppState;
use crate::config::AdmissionMode;
use crate::domain::access::{Caller, Role};
use crate::domain::best::BestFilter;
use crate::domain::events::EventId;
use crate::domain::fields::{price_cents, validate_seat_codes};
use crate::domain::idempotency::KeyUse;
use crate::domain::limits::DeferredCount;
use crate::domain::policy::{AdmissionUse, HoldCaller, is_channel_code};
use crate::domain::tiers::{TierLine, validate_hold_lines};
use crate::error::Error;
use crate::service::Wanted;
use crate::telemetry::{self, HoldRefusal};

/// The header that carries a waiting room's admission token (the raw token).
pub const ADMISSION_HEADER: &str = "seatlock-admission";

/// `userId` may be left out by a buyer with a JWT (its `sub` is used); keys must name it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReserveBody {
    #[schema(value_type = Option<String>, max_length = 128, example = "user-42")]
    user_id: Option<UserIdInput>,
    /// Seats to hold; may be left out (or `[]`) when `tiers` asks for units.
    #[schema(value_type = Option<Vec<String>>, max_items = 10)]
    seat_codes: Option<Vec<String>>,
    /// General-admission units to hold: a tier at most once, quantity 1 or more. Seats plus
    /// quantities at most `holds.max_seats_per_hold`.
    #[schema(max_items = 10)]
    tiers: Option<Vec<TierLineInput>>,
    /// Instead of `seatCodes` and `tiers`: let the service choose `count` seats together, as good
    /// as possible (see docs/api.md, "Best available").
    best_available: Option<BestAvailableInput>,
    /// `auth.mode = none` only: the sales channel the caller sells for (its seats and units
    /// may be held); in token mode a caller's channels come from its credentials (then 400).
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9._-]+$",
        example = "presale"
    )]
    channel: Option<String>,
}

/// A best-available request: how many seats together, and optional filters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct BestAvailableInput {
    #[schema(minimum = 1, maximum = 10, example = 4)]
    count: i64,
    /// Only seats of this type.
    #[serde(rename = "type")]
    #[schema(max_length = 64, example = "STANDARD")]
    seat_type: Option<String>,
    /// Only seats at this price or less.
    #[schema(minimum = 0, maximum = 10000000, example = 60)]
    max_price: Option<f64>,
}

/// Holds seats and/or general-admission units, all or nothing, for `holds.ttl_seconds`; or, with
/// `bestAvailable`, the best block of `count` seats together that the service chooses.
#[utoipa::path(post, path = "/events/{event_id}/seats/reserve", tag = "holds", request_body = ReserveBody,
    params(("event_id" = i64, Path, description = "Event id", minimum = 1, example = 1), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry of this request return the first answer (1-255 visible ASCII characters)", max_length = 255), ("Seatlock-Admission" = Option<String>, Header, description = "With admission.mode on: the waiting room's admission token for this event (a JWT whose aud is the event id, or a Queue-it token); buyers and service keys without --no-admission need it", max_length = 4096)),
    responses(
        (status = 200, description = "Held", body = HoldView),
        (status = 400, description = "Invalid JSON or a field out of range", body = ErrorBody),
        (status = 401, description = "No valid bearer token (token mode)", body = ErrorBody),
        (status = 403, description = "The token may not do this, or ADMISSION_REQUIRED: no valid admission token", body = ErrorBody),
        (status = 404, description = "No such event / seats / tiers", body = ErrorBody),
        (status = 409, description = "SALES_NOT_OPEN (opensAt), SALES_CLOSED (closedAt), SEATS_UNAVAILABLE (taken, blocked or another channel's), NO_ADJACENT_SEATS, USER_LIMIT_REACHED", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
        (status = 422, description = "Idempotency-Key reused with another body", body = ErrorBody),
        (status = 429, description = "Rate limit of the caller reached", body = ErrorBody),
        (status = 503, description = "A store is unavailable; retry after Retry-After", body = ErrorBody)
    ))]
pub(super) async fn reserve_seats(
    State(state): State<AppState>,
    caller: Caller,
    EventPath(event): EventPath,
    key_use: Option<Extension<KeyUse>>,
    count: Option<Extension<Arc<DeferredCount>>>,
    headers: HeaderMap,
    body: ApiResult<ApiJson<ReserveBody>>,
) -> ApiResult<Json<HoldView>> {
    // The admission comes before what was sent: without a token, a bad body is 403, not 400.
    let admission = admit(&state, &caller, event, &headers)?;
    if let Some(named) = admission.as_ref().and_then(|a| a.queueit_event.as_deref()) {
        // Boxed: the handler's future carries a pointer, not this check's state.
        let names = Box::pin(state.seatlock.queueit_names_event(event, named));
        if !names.await {
            tracing::debug!(reason = "wrong_event", "admission refused");
            telemetry::record_hold_refused(HoldRefusal::Admission);
            return Err(Error::AdmissionRequired.into());
        }
    }
    let ApiJson(body) =
        body.inspect_err(|_| telemetry::record_hold_refused(HoldRefusal::Invalid))?;
    let max = state.settings.holds.max_seats_per_hold;
    let best = body.best_available;
    let checked = UserIdInput::acting_user(&caller, body.user_id.as_ref()).and_then(|user| {
        let codes = body.seat_codes.unwrap_or_default();
        let tiers = tier_lines(body.tiers.unwrap_or_default(), max)?;
        let best = match best {
            Some(best) if codes.is_empty() && tiers.is_empty() => Some(best_filter(best, max)?),
            Some(_) => {
                return Err(ApiError::validation(
                    "ask for bestAvailable or for seatCodes/tiers, not both",
                ));
            }
            None => None,
        };
        if best.is_none() {
            if !codes.is_empty() {
                validate_seat_codes(&codes, max).map_err(ApiError::validation)?;
            }
            validate_hold_lines(codes.len(), &tiers, max).map_err(ApiError::validation)?;
        }
        Ok((
            user,
            codes,
            tiers,
            best,
            hold_caller(&caller, body.channel, admission)?,
        ))
    });
    let (user, codes, tiers, best, policy) =
        checked.inspect_err(|_| telemetry::record_hold_refused(HoldRefusal::Invalid))?;
    let seed = key_use.map(|Extension(k)| k.seed());
    let asked = best
        .as_ref()
        .map_or(codes.len(), |(count, _)| *count as usize);
    let wanted = match &best {
        Some((count, filter)) => Wanted::Best {
            count: *count,
            filter,
        },
        None => Wanted::Named {
            codes: &codes,
            tiers: &tiers,
        },
    };
    let (seed, count) = (seed.as_deref(), count.as_deref().map(Arc::as_ref));
    // With trace export off, the reserve is awaited as it is: no span, no wrapper, no local
    // holding its future (each of these measured ~1-2 us more CPU per hold, bench/README.md).
    let hold = match telemetry::hold_span(asked) {
        None => {
            state
                .seatlock
                .reserve(event, &user, wanted, seed, count, &policy)
                .await
        }
        Some(span) => {
            let reserve = state
                .seatlock
                .reserve(event, &user, wanted, seed, count, &policy);
            traced_decision(span, Box::pin(reserve)).await
        }
    }?;
    let expires_at = chrono::DateTime::from_timestamp_millis(hold.expires_at_ms)
        .ok_or_else(|| Error::Internal("hold expiry out of range".into()))?;
    Ok(Json(HoldView {
        hold_group_id: hold.id,
        expires_in: state.settings.holds.ttl_seconds,
        expires_at: rfc3339(expires_at),
        seat_codes: hold.seats,
        tiers: tiers.into_iter().map(TierLineView::from).collect(),
    }))
}

/// Awaits a boxed hold decision inside its span (trace export on), then records its outcome
/// and, when refused, the answer's code (the refusal's reason is recorded where it is decided).
#[inline(never)]
async fn traced_decision<T>(
    span: tracing::Span,
    decision: Pin<Box<dyn Future<Output = Result<T, Error>> + Send + '_>>,
) -> Result<T, Error> {
    let result = decision.instrument(span.clone()).await;
    let outcome = match &result {
        Ok(_) => "held",
        Err(e) if service_status(e).is_server_error() => "error",
        Err(_) => "refused",
    };
    span.record("seatlock.hold.outcome", outcome);
    if let Err(e) = &result {
        span.record("seatlock.hold.code", service_code(e));
    }
    result
}

/// The admission a hold is taken under: with `admission.mode` on, a caller that does not skip
/// it (buyers, service keys without `--no-admission`) sends a token that verifies for this
/// event in `Seatlock-Admission`, or is refused with 403 `ADMISSION_REQUIRED`.
fn admit(
    state: &AppState,
    caller: &Caller,
    event: EventId,
    headers: &HeaderMap,
) -> ApiResult<Option<AdmissionUse>> {
    if caller.skips_admission || state.seatlock.admission_mode() == AdmissionMode::Off {
        return Ok(None);
    }
    let refused = |why: &str| {
        tracing::debug!(reason = why, "admission refused");
        telemetry::record_hold_refused(HoldRefusal::Admission);
        ApiError::from(Error::AdmissionRequired)
    };
    let token = headers
        .get(ADMISSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| refused("missing"))?;
    let admission = state
        .seatlock
        .verify_admission(token.trim(), &event.to_string())
        .map_err(|why| refused(why.as_str()))?;
    Ok(Some(AdmissionUse {
        buyer: admission.buyer,
        max_live_holds: state.settings.admission.max_live_holds,
        queueit_event: admission.queueit_event,
    }))
}

/// Who holds, as the sales policy sees it: an admin is a box office (any channel, any time);
/// a key or a JWT brings its channels; in `none` mode the body's `channel` names the caller's.
fn hold_caller(
    caller: &Caller,
    channel: Option<String>,
    admission: Option<AdmissionUse>,
) -> ApiResult<HoldCaller> {
    let mut who = HoldCaller {
        box_office: caller.role == Role::Admin,
        channels: caller.channels.clone(),
        admission,
    };
    match (caller.role, channel) {
        (_, None) => {}
        (Role::Trusted, Some(c)) if is_channel_code(&c) => who.channels.push(c),
        (Role::Trusted, Some(_)) => {
            return Err(ApiError::validation(
                "channel must be 1-64 letters, digits, '.', '_' or '-'",
            ));
        }
        (_, Some(_)) => {
            return Err(ApiError::validation(
                "channel is for auth.mode = none only: a caller's channels come from its credentials",
            ));
        }
    }
    Ok(who)
}

/// The count and filters of a best-available request.
fn best_filter(input: BestAvailableInput, max: usize) -> ApiResult<(u32, BestFilter)> {
    let count = u32::try_from(input.count)
        .ok()
        .filter(|c| (1..=max as u32).contains(c))
        .ok_or_else(|| ApiError::validation(format!("bestAvailable.count must be 1 to {max}")))?;
    let seat_type = input.seat_type.map(|t| t.trim().to_string());
    if seat_type
        .as_deref()
        .is_some_and(|t| t.is_empty() || t.chars().count() > 64 || t.chars().any(char::is_control))
    {
        return Err(ApiError::validation(
            "bestAvailable.type must be 1 to 64 characters without control characters",
        ));
    }
    let max_price_cents = match input.max_price {
        None => None,
        Some(_) => Some(
            price_cents(input.max_price)
                .map_err(|why| ApiError::validation(format!("bestAvailable.maxPrice {why}")))?,
        ),
    };
    let filter = BestFilter {
        seat_type,
        max_price_cents,
    };
    Ok((count, filter))
}

/// The tier lines of a reserve body; a quantity out of range is refused before anything else
/// looks at it.
fn tier_lines(input: Vec<TierLineInput>, max: usize) -> ApiResult<Vec<TierLine>> {
    if input.len() > max {
        return Err(ApiError::validation(format!(
            "a hold may list at most {max} tiers"
        )));
    }
    input
        .into_iter()
        .map(|l| match u32::try_from(l.quantity) {
            Ok(quantity) if quantity >= 1 => Ok(TierLine {
                code: l.code,
                quantity,
            }),
            _ => Err(ApiError::validation(format!(
                "the quantity of tier {} must be an integer from 1 to {max}",
                l.code
            ))),
        })
        .collect()
}
