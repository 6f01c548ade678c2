//! Connection policy for endpoints.

use std::time::Duration;

/// Which HTTP version is spoken to endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    /// The request's own version: HTTP/2 requests (gRPC) go over cleartext
    /// HTTP/2 with prior knowledge, the rest over HTTP/1.1. Envoy's
    /// `use_downstream_protocol`. The default.
    #[default]
    UseClientProtocol,
    /// Always HTTP/1.1.
    Http1,
    /// Always HTTP/2 with prior knowledge (h2c).
    Http2,
}

/// How connections to endpoints are made and kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionPolicy {
    /// Time allowed to establish a connection. Default 10 s (Istio's
    /// `connectTimeout`).
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept. Default 90 s.
    pub idle_timeout: Duration,
    /// Idle connections kept per endpoint. Default unbounded (hyper's
    /// default): a burst's connections stay for the next one.
    pub max_idle_per_endpoint: usize,
    /// The HTTP version spoken.
    pub protocol: Protocol,
    /// Sets `TCP_NODELAY`. Default true.
    pub tcp_nodelay: bool,
}

impl Default for ConnectionPolicy {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            max_idle_per_endpoint: usize::MAX,
            protocol: Protocol::UseClientProtocol,
            tcp_nodelay: true,
        }
    }
}
