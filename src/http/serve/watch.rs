//! What one connection is doing: requests in flight (until their response bodies are dropped),
//! when it went idle, when a request header began to arrive; and the deadline that follows.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::telemetry::ConnectionClose;

const NONE: u64 = u64::MAX;

/// At shutdown, how long a connection whose request header is arriving may take to finish it
/// (then the request is served); a half header older than this is cut off at once.
pub(super) const DRAIN_HEADER_WINDOW: Duration = Duration::from_millis(250);

/// What a connection is doing, in milliseconds since it was accepted.
pub(super) struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    /// When the last request finished (or the connection opened).
    idle_since: AtomicU64,
    /// When the first byte of a request header not yet complete arrived; `NONE` when there is
    /// none. The connection's start for its first request.
    header_since: AtomicU64,
    /// Nothing has been read yet.
    fresh: AtomicBool,
    /// Signalled once, when the first bytes are read.
    first_read: Notify,
}

impl Activity {
    pub(super) fn new() -> Self {
        Activity {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            header_since: AtomicU64::new(0),
            fresh: AtomicBool::new(true),
            first_read: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn read_some(&self) {
        if self.fresh.swap(false, Ordering::AcqRel) {
            // A stored permit: a waiter that comes later completes at once.
            self.first_read.notify_one();
        }
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.header_since.load(Ordering::Relaxed) == NONE
        {
            self.header_since.store(self.now(), Ordering::Relaxed);
        }
    }

    /// Whether nothing has been read yet.
    pub(super) fn is_fresh(&self) -> bool {
        self.fresh.load(Ordering::Acquire)
    }

    /// Completes once something has been read (at once if it already has).
    pub(super) async fn read_started(&self) {
        if self.is_fresh() {
            self.first_read.notified().await;
        }
    }

    /// Completes when the connection has waited too long: for a request header (`fresh_header`
    /// while nothing at all has been read), or idle.
    pub(super) async fn expired(
        &self,
        header: Duration,
        fresh_header: Duration,
        idle: Duration,
    ) -> ConnectionClose {
        let ms = |d: Duration| d.as_millis() as u64;
        let (header, fresh_header, idle) = (ms(header), ms(fresh_header), ms(idle));
        loop {
            let now = self.now();
            let wait = if self.in_flight.load(Ordering::Relaxed) > 0 {
                header.min(idle).max(50)
            } else {
                let since = self.header_since.load(Ordering::Relaxed);
                let (deadline, why) = if since == NONE {
                    (
                        self.idle_since.load(Ordering::Relaxed) + idle,
                        ConnectionClose::Idle,
                    )
                } else if self.fresh.load(Ordering::Relaxed) {
                    (since + fresh_header, ConnectionClose::HeaderTimeout)
                } else {
                    (since + header, ConnectionClose::HeaderTimeout)
                };
                if now >= deadline {
                    return why;
                }
                deadline - now
            };
            tokio::time::sleep(Duration::from_millis(wait.max(1))).await;
        }
    }
}

/// A request in flight on a connection, until its response body is dropped.
pub(super) struct InFlight(Arc<Activity>);

impl InFlight {
    pub(super) fn begin(clock: &Arc<Activity>) -> Self {
        clock.in_flight.fetch_add(1, Ordering::Relaxed);
        clock.header_since.store(NONE, Ordering::Relaxed);
        InFlight(clock.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let clock = &self.0;
        clock.idle_since.store(clock.now(), Ordering::Relaxed);
        clock.header_since.store(NONE, Ordering::Relaxed);
        clock.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request in flight.
pub(super) struct Tracked {
    inner: Body,
    /// Not read: dropped with the body, it ends the request.
    _in_flight: InFlight,
}

impl Tracked {
    pub(super) fn new(inner: Body, in_flight: InFlight) -> Self {
        Tracked {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The TCP stream, noting when a request's first bytes arrive.
pub(super) struct Watched {
    pub(super) inner: TcpStream,
    pub(super) clock: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.read_some();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
