//! The buyer page's files: served from the binary with a strict Content-Security-Policy and
//! validators, small, and outside the token gate (the page itself asks for a token).

use axum::http::StatusCode;
use sqlx::PgPool;

use crate::support::{TestApp, redis_url, token_mode};

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn the_page_and_its_files_are_served_with_csp_and_validators(pg: PgPool) {
    let app = TestApp::with(pg, &redis_url(), token_mode);
    for (path, kind) in [
        ("/", "text/html"),
        ("/e/42", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
        ("/assets/icon.svg", "image/svg+xml"),
    ] {
        let (status, headers, body) = app.call_raw("GET", path, None, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}: open without a token");
        let header = |name: &str| headers[name].to_str().expect("ascii").to_string();
        assert!(header("content-type").starts_with(kind), "{path}");
        let csp = header("content-security-policy");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(header("cache-control"), "no-cache");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert!(!body.is_empty());
        let etag = header("etag");
        let (status, _, body) = app
            .call_raw("GET", path, None, &[("if-none-match", etag.as_str())])
            .await;
        assert_eq!(
            (status, body.len()),
            (StatusCode::NOT_MODIFIED, 0),
            "{path}"
        );
    }
    let (status, _, _) = app.call_raw("GET", "/assets/nope.js", None, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // No inline script or style anywhere, so the policy needs no exception.
    for path in ["/", "/e/1"] {
        let html = String::from_utf8(app.call_raw("GET", path, None, &[]).await.2).expect("utf8");
        assert!(
            !html.contains("<script>") && !html.contains("style="),
            "{path}"
        );
        assert!(html.contains(r#"<script src="/assets/app.js" defer></script>"#));
    }
}

#[test]
fn the_page_weighs_under_100_kb() {
    let bytes = seatlock::http::web::page_bytes();
    assert!(bytes < 100 * 1024, "{bytes} bytes");
}
