//! The API document: OpenAPI 3.1 generated from the handlers' annotations (utoipa) and served at
//! `GET /openapi.json`, with Swagger UI at `GET /docs` (its files are vendored into the binary:
//! no CDN). `tests/api/openapi.rs` fails when a route of the router is missing from it, or an
//! event of the seat-map stream.

use axum::Router;
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::error::{ErrorBody, ErrorCode};
use super::state::AppState;
use super::{
    blocks, bookings, events, health, history, holds, policy, reserve, stream, web, webhooks,
};
use crate::config::Settings;
use crate::domain::layout::MAX_SEAT_NUMBER;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "seatlock",
        description = "Seat holds in Redis, guarded bookings in Postgres. In `auth.mode = token` every operation but health, readiness, metrics and this document needs `Authorization: Bearer <JWT or API key>`.",
        license(name = "MIT")
    ),
    paths(
        events::create_event,
        events::list_events,
        events::get_event,
        events::get_seat_map,
        policy::patch_event,
        policy::put_channels,
        blocks::block_seats,
        blocks::unblock_seats,
        stream::stream_seat_map,
        reserve::reserve_seats,
        holds::confirm_hold,
        holds::release_hold,
        holds::extend_hold,
        bookings::get_booking,
        bookings::cancel_booking,
        history::list_changes,
        history::seat_history,
        webhooks::create_webhook,
        webhooks::list_webhooks,
        webhooks::get_webhook,
        webhooks::update_webhook,
        webhooks::delete_webhook,
        webhooks::rotate_secret,
        webhooks::list_deliveries,
        webhooks::replay,
        health::healthz,
        health::readyz,
        health::render_metrics,
        openapi_json,
        docs,
        web::events_page,
        web::event_page,
        web::asset,
    ),
    components(schemas(ErrorBody, ErrorCode, stream::SnapshotData, stream::UpdateData)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "events", description = "Events and seat maps"),
        (name = "holds", description = "Hold, confirm, release"),
        (name = "bookings", description = "Bookings and cancels"),
        (name = "history", description = "Every seat's changes"),
        (name = "webhooks", description = "Signed webhooks (Standard Webhooks) of every change"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
        (name = "buyer page", description = "The buyer page (HTML, CSS, JavaScript embedded in the binary)"),
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme: a JWT, or an API key `sl_...`.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A JWT (HS256, RS256, ES256 or EdDSA) or an API key `sl_...`",
                    ))
                    .build(),
            ),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
#[expect(dead_code, reason = "documents a route that SwaggerUi serves")]
async fn openapi_json() {}

/// Swagger UI over this document (`/docs` redirects to `/docs/`).
#[utoipa::path(get, path = "/docs", tag = "operations", security(()),
    responses(
        (status = 200, description = "Swagger UI", content_type = "text/html", body = String),
        (status = 303, description = "Redirect to /docs/"),
    ))]
#[expect(dead_code, reason = "documents a route that SwaggerUi serves")]
async fn docs() {}

/// The document of this deployment: the generated one, with the seat-map stream's events (which
/// utoipa cannot express: see `stream::event_schemas`) and the limits that depend on the
/// settings (seats per event, seats per hold, tiers per event, tier capacity) filled in, so generated requests stay within them.
pub fn document(settings: &Settings) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    if let Some(Value::Object(schemas)) = doc.pointer_mut("/components/schemas") {
        for (name, schema) in stream::event_schemas() {
            schemas.insert(name.to_string(), schema);
        }
    }
    let max_seats = settings.events.max_seats;
    let per_hold = settings.holds.max_seats_per_hold;
    let (max_tiers, tier_capacity) = (
        settings.events.max_tiers as usize,
        settings.events.max_tier_capacity as usize,
    );
    for (pointer, value) in [
        (
            "/components/schemas/CreateEventBody/properties/tiers/maxItems",
            max_tiers,
        ),
        (
            "/components/schemas/TierInput/properties/capacity/maximum",
            tier_capacity,
        ),
        (
            "/components/schemas/ReserveBody/properties/tiers/maxItems",
            per_hold,
        ),
        (
            "/components/schemas/TierLineInput/properties/quantity/maximum",
            per_hold,
        ),
        (
            "/components/schemas/CreateEventBody/properties/totalSeats/maximum",
            max_seats as usize,
        ),
        (
            "/components/schemas/CreateEventBody/properties/seats/maxItems",
            max_seats as usize,
        ),
        (
            "/components/schemas/ReserveBody/properties/seatCodes/maxItems",
            per_hold,
        ),
        (
            "/components/schemas/BestAvailableInput/properties/count/maximum",
            per_hold,
        ),
        (
            "/components/schemas/CreateEventBody/properties/rows/maxItems",
            max_seats as usize,
        ),
        (
            "/components/schemas/RowInput/properties/seats/maximum",
            (max_seats as usize).min(MAX_SEAT_NUMBER as usize),
        ),
    ] {
        if let Some(slot) = doc.pointer_mut(pointer) {
            *slot = json!(value);
        }
    }
    document_error_headers(&mut doc);
    doc
}

/// The headers of the 401, 429 and 503 answers, on every operation that has them.
fn document_error_headers(doc: &mut Value) {
    let header =
        |description: &str| json!({"description": description, "schema": {"type": "string"}});
    let retry = header("Seconds to wait before trying again");
    let by_status = [
        (
            "401",
            json!({"WWW-Authenticate": header("`Bearer`, with `error=\"invalid_token\"` when a token was sent")}),
        ),
        (
            "429",
            json!({
                "Retry-After": retry.clone(),
                "RateLimit-Policy": header("The caller's quota, e.g. `\"user\";q=20;w=4`"),
                "RateLimit": header("What is left of it, e.g. `\"user\";r=0;t=1`"),
            }),
        ),
        ("503", json!({"Retry-After": retry})),
    ];
    let Some(Value::Object(paths)) = doc.get_mut("paths") else {
        return;
    };
    for operation in paths.values_mut().filter_map(Value::as_object_mut) {
        for op in operation.values_mut() {
            for (status, headers) in &by_status {
                if let Some(Value::Object(response)) =
                    op.pointer_mut(&format!("/responses/{status}"))
                {
                    response.insert("headers".into(), headers.clone());
                }
            }
        }
    }
}

/// `GET /openapi.json` and the Swagger UI under `/docs`.
pub fn router(settings: &Settings) -> Router<AppState> {
    let ui = SwaggerUi::new("/docs").external_url_unchecked("/openapi.json", document(settings));
    Router::from(ui)
}
