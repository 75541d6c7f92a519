//! The connection layer: accepts TCP connections and serves HTTP/1.1 on them with hyper, with
//! what `axum::serve` lacks for a public on-sale:
//! - a cap on open connections (`server.max_connections`): beyond it a new connection is closed
//!   at once, never queued, and counted;
//! - a header read timeout (`server.header_read_timeout_ms`): a client that has not sent a whole
//!   request header within it (from its connection for the first request, from the request's
//!   first byte for later ones) is disconnected, so half-sent headers cannot pile up;
//! - an idle timeout (`server.idle_timeout_ms`) for kept-alive connections without a request;
//! - a graceful drain: on shutdown the listener closes, idle and half-header connections close at
//!   once, in-flight requests finish (for up to the grace period), and a connection accepted
//!   before the signal that has not sent a byte yet is served when its request comes.
//!
//! A request counts as in flight until its response body is dropped (written or abandoned), so a
//! long response (the live seat map) is never taken for an idle connection.

mod watch;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch as signal;
use tower::Service;

use self::watch::{Activity, DRAIN_HEADER_WINDOW, InFlight, Tracked, Watched};
use crate::telemetry::{ConnectionMetrics, connection_metrics};

/// The limits of the connection layer.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub grace: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes, then drains: returns once every
/// connection has closed, or when `limits.grace` has passed (reported as `false`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> bool {
    let open = Arc::new(AtomicUsize::new(0));
    let (drain_tx, drain_rx) = signal::channel(false);
    let metrics = connection_metrics();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_error_log: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors, mostly: say so at most once a second, and let the
                // open connections finish or time out instead of spinning.
                if last_error_log.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    tracing::error!(error = %e, open = open.load(Ordering::Relaxed), "accept failed");
                    last_error_log = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= limits.max_connections {
            metrics.refused.increment(1);
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let slot = Slot::take(&open, &metrics);
        let conn = Conn {
            router: router.clone(),
            peer,
            limits,
            builder: builder.clone(),
            drain: drain_rx.clone(),
        };
        tokio::spawn(conn.run(stream, slot));
    }
    // Connections the kernel completed before now are in the listener's backlog: served too
    // (their first request, at most `DRAIN_HEADER_WINDOW` away), instead of being reset unread
    // when the listener closes.
    let _ = drain_tx.send(true);
    // Accepted with plain non-blocking syscalls until the backlog is empty: the runtime's view
    // of the listener's readiness may lag behind a connection that just arrived.
    let backlog = listener.into_std();
    while let Ok(listener) = &backlog {
        let Ok((stream, peer)) = listener.accept() else {
            break;
        };
        if open.load(Ordering::Relaxed) >= limits.max_connections {
            metrics.refused.increment(1);
            continue;
        }
        let Ok(stream) = stream
            .set_nonblocking(true)
            .and_then(|()| TcpStream::from_std(stream))
        else {
            continue;
        };
        let slot = Slot::take(&open, &metrics);
        let conn = Conn {
            router: router.clone(),
            peer,
            limits,
            builder: builder.clone(),
            drain: drain_rx.clone(),
        };
        tokio::spawn(conn.run(stream, slot));
    }
    drop(backlog);
    let deadline = Instant::now() + limits.grace;
    while open.load(Ordering::Relaxed) > 0 {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// One open connection in the count; given back when dropped.
struct Slot {
    open: Arc<AtomicUsize>,
    metrics: ConnectionMetrics,
}

impl Slot {
    fn take(open: &Arc<AtomicUsize>, metrics: &ConnectionMetrics) -> Self {
        let now = open.fetch_add(1, Ordering::Relaxed) + 1;
        metrics.open.set(now as f64);
        Slot {
            open: open.clone(),
            metrics: metrics.clone(),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let now = self.open.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
        self.metrics.open.set(now as f64);
    }
}

struct Conn {
    router: Router,
    peer: SocketAddr,
    limits: ConnectionLimits,
    builder: hyper::server::conn::http1::Builder,
    drain: signal::Receiver<bool>,
}

impl Conn {
    async fn run(self, stream: TcpStream, slot: Slot) {
        let Conn {
            router,
            peer,
            limits,
            builder,
            mut drain,
        } = self;
        let clock = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            inner: stream,
            clock: clock.clone(),
        });
        let service = {
            let clock = clock.clone();
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let in_flight = InFlight::begin(&clock);
                let mut router = router.clone();
                async move {
                    let response = match router.call(req.map(Body::new)).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    };
                    Ok::<_, Infallible>(response.map(|inner| Tracked::new(inner, in_flight)))
                }
            })
        };
        let conn = builder.serve_connection(io, service);
        let mut conn = std::pin::pin!(conn);
        let mut draining = false;
        // Shutting down, with the graceful shutdown of hyper held back until the first bytes of
        // the request are read.
        let mut waiting_for_request = false;
        let header = limits.header_read_timeout;
        let mut watchdog = Box::pin(clock.expired(header, header, limits.idle_timeout));
        loop {
            tokio::select! {
                _ = conn.as_mut() => break,
                why = &mut watchdog => {
                    if !draining {
                        slot.metrics.closed(why);
                    }
                    break;
                }
                _ = drain.wait_for(|d| *d), if !draining => {
                    // Shutting down: no keep-alive after the request in flight, and hyper
                    // closes an idle connection itself (and one whose last response it has
                    // flushed: closing it here could cut that response short). A half-header
                    // connection is closed now (unless a header is arriving this instant); one
                    // that has sent nothing yet (just connected, its request on the way) still
                    // gets the header read timeout, and its request is served: hyper would close
                    // it at once if told to shut down before it has read a byte, so it is told
                    // after.
                    draining = true;
                    if clock.is_fresh() {
                        waiting_for_request = true;
                    } else {
                        conn.as_mut().graceful_shutdown();
                    }
                    let window = DRAIN_HEADER_WINDOW.min(header);
                    watchdog = Box::pin(clock.expired(window, header, header));
                }
                () = clock.read_started(), if waiting_for_request => {
                    waiting_for_request = false;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
        drop(slot);
    }
}
