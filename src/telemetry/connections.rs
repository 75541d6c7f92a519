//! The connection layer's metrics: open connections, connections refused at the cap, and
//! connections closed for a header that came too slowly or for idling.

use metrics::{Counter, Gauge, counter, describe_counter, describe_gauge, gauge};

pub const HTTP_CONNECTIONS: &str = "seatlock_http_connections";
pub const HTTP_CONNECTIONS_REFUSED: &str = "seatlock_http_connections_refused_total";
pub const HTTP_CONNECTIONS_CLOSED: &str = "seatlock_http_connections_closed_total";

/// Why the server closed a connection on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionClose {
    /// No whole request header within `server.header_read_timeout_ms`.
    HeaderTimeout,
    /// No request on a kept-alive connection within `server.idle_timeout_ms`.
    Idle,
}

impl ConnectionClose {
    pub const ALL: [ConnectionClose; 2] = [ConnectionClose::HeaderTimeout, ConnectionClose::Idle];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionClose::HeaderTimeout => "header_timeout",
            ConnectionClose::Idle => "idle",
        }
    }
}

pub(super) fn describe() {
    describe_gauge!(HTTP_CONNECTIONS, "Open HTTP connections on this instance.");
    describe_counter!(
        HTTP_CONNECTIONS_REFUSED,
        "Connections closed at once because server.max_connections were open."
    );
    describe_counter!(
        HTTP_CONNECTIONS_CLOSED,
        "Connections the server closed: reason header_timeout (no whole request header within \
         server.header_read_timeout_ms) or idle (no request within server.idle_timeout_ms)."
    );
}

pub(super) fn register_at_zero() {
    gauge!(HTTP_CONNECTIONS).set(0.0);
    counter!(HTTP_CONNECTIONS_REFUSED).absolute(0);
    for why in ConnectionClose::ALL {
        counter!(HTTP_CONNECTIONS_CLOSED, "reason" => why.as_str()).absolute(0);
    }
}

/// The connection layer's metric handles, looked up once.
#[derive(Clone)]
pub struct ConnectionMetrics {
    pub open: Gauge,
    pub refused: Counter,
    header_timeout: Counter,
    idle: Counter,
}

impl ConnectionMetrics {
    pub fn closed(&self, why: ConnectionClose) {
        match why {
            ConnectionClose::HeaderTimeout => self.header_timeout.increment(1),
            ConnectionClose::Idle => self.idle.increment(1),
        }
    }
}

pub fn connection_metrics() -> ConnectionMetrics {
    ConnectionMetrics {
        open: gauge!(HTTP_CONNECTIONS),
        refused: counter!(HTTP_CONNECTIONS_REFUSED),
        header_timeout: counter!(HTTP_CONNECTIONS_CLOSED, "reason" => "header_timeout"),
        idle: counter!(HTTP_CONNECTIONS_CLOSED, "reason" => "idle"),
    }
}
