//! A webhook receiver for `bench/webhooks.sh`: answers every POST 204 at once and counts what it
//! got; `GET /count` answers the count and the distinct `webhook-id`s seen. Nothing is verified
//! (the tests verify signatures): it measures how fast seatlock delivers, not the receiver.
//!
//! ```text
//! PORT=18090 cargo run --release --example webhook_sink
//! ```

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;

#[derive(Default)]
struct Seen {
    requests: u64,
    ids: HashSet<String>,
}

type Shared = Arc<Mutex<Seen>>;

async fn receive(State(seen): State<Shared>, headers: HeaderMap) -> StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
    s.requests += 1;
    s.ids.insert(id);
    StatusCode::NO_CONTENT
}

async fn count(State(seen): State<Shared>) -> String {
    let s = seen.lock().unwrap_or_else(|p| p.into_inner());
    format!(
        "{{\"requests\":{},\"distinct\":{}}}",
        s.requests,
        s.ids.len()
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(18090);
    let app = Router::new()
        .route("/count", get(count))
        .fallback(receive)
        .with_state(Shared::default());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await
}
