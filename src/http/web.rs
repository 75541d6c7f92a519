//! The buyer page: `GET /` lists events, `GET /e/{id}` is an event's live seat map, and their
//! files under `/assets/`. Static HTML, CSS and JavaScript from `web/`, embedded in the binary (no
//! Node toolchain, no CDN: it works offline). Served with an `ETag` (a 304 for a matching
//! `If-None-Match`), `Cache-Control: no-cache` (revalidate every time, so a new release shows at
//! once) and a strict Content-Security-Policy: only this origin's own files, no inline code.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::error::{ApiError, ErrorBody};
use super::state::AppState;

/// Only this origin's files; no inline scripts or styles, no frames, no plug-ins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file with its type and strong validator.
struct Asset {
    body: &'static [u8],
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(body: &'static [u8], content_type: &'static str) -> Self {
        let digest = Sha256::digest(body);
        let etag = format!(
            "\"{}\"",
            digest[..12]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Asset {
            body,
            content_type,
            etag,
        }
    }

    fn respond(&self, headers: &HeaderMap) -> Response {
        let fresh = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|tag| tag.trim() == self.etag));
        let status = if fresh {
            StatusCode::NOT_MODIFIED
        } else {
            StatusCode::OK
        };
        let body = if fresh { &[][..] } else { self.body };
        let mut response = (status, body).into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        if let Ok(etag) = HeaderValue::from_str(&self.etag) {
            h.insert(header::ETAG, etag);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        response
    }
}

static INDEX: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!("../../web/index.html"),
        "text/html; charset=utf-8",
    )
});
static EVENT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!("../../web/event.html"),
        "text/html; charset=utf-8",
    )
});
static SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!("../../web/app.js"),
        "text/javascript; charset=utf-8",
    )
});
static STYLE: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!("../../web/app.css"),
        "text/css; charset=utf-8",
    )
});
static ICON: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_bytes!("../../web/icon.svg"), "image/svg+xml"));

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(events_page))
        .route("/e/{event_id}", get(event_page))
        .route("/assets/{file}", get(asset))
}

/// The buyer page: the list of events.
#[utoipa::path(get, path = "/", tag = "buyer page", security(()),
    responses((status = 200, description = "The events page (HTML)", content_type = "text/html", body = String),
              (status = 304, description = "Not modified (If-None-Match)")))]
pub(super) async fn events_page(headers: HeaderMap) -> Response {
    INDEX.respond(&headers)
}

/// The buyer page of one event: its live seat map, hold, pay and release.
#[utoipa::path(get, path = "/e/{event_id}", tag = "buyer page", security(()),
    params(("event_id" = String, Path, description = "Event id (the page says so when it does not exist)")),
    responses((status = 200, description = "The event page (HTML)", content_type = "text/html", body = String),
              (status = 304, description = "Not modified (If-None-Match)")))]
pub(super) async fn event_page(Path(_event): Path<String>, headers: HeaderMap) -> Response {
    EVENT.respond(&headers)
}

/// The page's script, style sheet and icon.
#[utoipa::path(get, path = "/assets/{file}", tag = "buyer page", security(()),
    params(("file" = String, Path, description = "app.js, app.css or icon.svg")),
    responses((status = 200, description = "The file", content(
                  (String = "text/javascript"), (String = "text/css"), (String = "image/svg+xml"))),
              (status = 304, description = "Not modified (If-None-Match)"),
              (status = 404, description = "No such file", body = ErrorBody)))]
pub(super) async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match file.as_str() {
        "app.js" => SCRIPT.respond(&headers),
        "app.css" => STYLE.respond(&headers),
        "icon.svg" => ICON.respond(&headers),
        _ => ApiError::RouteNotFound.into_response(),
    }
}

/// Sizes of the page's files, for the test that keeps them under 100 KB together.
pub fn page_bytes() -> usize {
    [&*INDEX, &*EVENT, &*SCRIPT, &*STYLE, &*ICON]
        .iter()
        .map(|a| a.body.len())
        .sum()
}
