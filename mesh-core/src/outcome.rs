//! How an attempt ended, classified the way Envoy's retry and outlier logic
//! sees it: a response (HTTP status, and gRPC status when the response is
//! trailers-only), or a failure of a known kind.
//!
//! Layers decide from these values, never from error strings.

use std::net::SocketAddr;

/// Why an attempt produced no response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The connection could not be established (refused, unreachable,
    /// connect timeout). The request was not sent, so it is always safe to
    /// retry. Envoy: `connect-failure`, flag `UF`.
    ConnectFailure,
    /// The connection or stream was reset after the request was sent.
    /// Envoy: `reset`, flag `UR`.
    Reset,
    /// An HTTP/2 stream was refused (`REFUSED_STREAM`): the server did not
    /// process it. Envoy: `refused-stream`.
    RefusedStream,
    /// The attempt or request ran out of time. Envoy flag `UT`.
    Timeout,
    /// A circuit breaker refused the request. Envoy flag `UO`.
    Overflow,
    /// No endpoint was available. Envoy flag `UH`/`NR`.
    NoHealthyUpstream,
    /// Anything else that went wrong locally (a bad request, an unreadable
    /// request body).
    Local,
}

impl FailureKind {
    /// Envoy's response flag for the failure (`UF`, `UR`, `UT`, `UO`,
    /// `UH`), `-` for a local one.
    pub fn response_flag(self) -> &'static str {
        match self {
            FailureKind::ConnectFailure => "UF",
            FailureKind::Reset | FailureKind::RefusedStream => "UR",
            FailureKind::Timeout => "UT",
            FailureKind::Overflow => "UO",
            FailureKind::NoHealthyUpstream => "UH",
            FailureKind::Local => "-",
        }
    }

    /// Whether the failure came from the upstream (its connection or its
    /// stream), which outlier detection counts against the endpoint.
    pub fn is_upstream(self) -> bool {
        matches!(
            self,
            FailureKind::ConnectFailure
                | FailureKind::Reset
                | FailureKind::RefusedStream
                | FailureKind::Timeout
        )
    }
}

/// A gRPC status code (only those the mesh decides on are named).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GrpcCode(pub u32);

impl GrpcCode {
    /// `OK` (0).
    pub const OK: GrpcCode = GrpcCode(0);
    /// `CANCELLED` (1).
    pub const CANCELLED: GrpcCode = GrpcCode(1);
    /// `DEADLINE_EXCEEDED` (4).
    pub const DEADLINE_EXCEEDED: GrpcCode = GrpcCode(4);
    /// `PERMISSION_DENIED` (7).
    pub const PERMISSION_DENIED: GrpcCode = GrpcCode(7);
    /// `RESOURCE_EXHAUSTED` (8).
    pub const RESOURCE_EXHAUSTED: GrpcCode = GrpcCode(8);
    /// `INTERNAL` (13).
    pub const INTERNAL: GrpcCode = GrpcCode(13);
    /// `UNAVAILABLE` (14).
    pub const UNAVAILABLE: GrpcCode = GrpcCode(14);

    /// The `grpc-status` of a header map (a trailers-only response carries it
    /// in its headers), if present and numeric.
    pub fn from_headers(headers: &http::HeaderMap) -> Option<GrpcCode> {
        headers
            .get("grpc-status")?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()
            .map(GrpcCode)
    }
}

/// How one attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A response arrived. `grpc` is the gRPC status when the response
    /// headers (a trailers-only response) or trailers carried one.
    Response {
        /// The HTTP status.
        status: http::StatusCode,
        /// The gRPC status, if known.
        grpc: Option<GrpcCode>,
    },
    /// No response.
    Failure(FailureKind),
}

impl Outcome {
    /// The outcome of a response head.
    pub fn from_response<B>(res: &http::Response<B>) -> Self {
        Outcome::Response {
            status: res.status(),
            grpc: GrpcCode::from_headers(res.headers()),
        }
    }

    /// Whether the outcome counts as a 5xx for outlier detection: a 5xx
    /// status or an upstream failure (Envoy maps locally-originated upstream
    /// errors to 5xx unless split).
    pub fn is_5xx(&self) -> bool {
        match self {
            Outcome::Response { status, .. } => status.is_server_error(),
            Outcome::Failure(kind) => kind.is_upstream(),
        }
    }

    /// Whether the outcome is a gateway error: 502, 503, 504 or an upstream
    /// failure (Envoy's `consecutive_gateway_failure`).
    pub fn is_gateway_error(&self) -> bool {
        match self {
            Outcome::Response { status, .. } => matches!(status.as_u16(), 502..=504),
            Outcome::Failure(kind) => kind.is_upstream(),
        }
    }

    /// Whether the outcome is a success for outlier detection (resets the
    /// consecutive counters).
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Response { status, .. } if !status.is_server_error())
    }
}

/// An error from an upstream endpoint, classified. Layers below the balancer
/// produce it; the retry and outlier layers read its [`FailureKind`].
#[derive(Debug, thiserror::Error)]
#[error("{} to {endpoint}", describe(*kind))]
pub struct UpstreamError {
    kind: FailureKind,
    endpoint: SocketAddr,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

fn describe(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::ConnectFailure => "connection failed",
        FailureKind::Reset => "connection reset",
        FailureKind::RefusedStream => "stream refused",
        FailureKind::Timeout => "timed out",
        FailureKind::Overflow => "overflow",
        FailureKind::NoHealthyUpstream => "no healthy upstream",
        FailureKind::Local => "request failed",
    }
}

impl UpstreamError {
    /// A classified error from `endpoint`.
    pub fn new(
        kind: FailureKind,
        endpoint: SocketAddr,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            endpoint,
            source: source.into(),
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// The endpoint that failed.
    pub fn endpoint(&self) -> SocketAddr {
        self.endpoint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_status_from_trailers_only_headers() {
        let res = http::Response::builder()
            .header("grpc-status", "14")
            .body(())
            .unwrap();
        assert_eq!(
            Outcome::from_response(&res),
            Outcome::Response {
                status: http::StatusCode::OK,
                grpc: Some(GrpcCode::UNAVAILABLE)
            }
        );
    }

    #[test]
    fn classifies_for_outlier_detection() {
        let r = |s: u16| Outcome::Response {
            status: http::StatusCode::from_u16(s).unwrap(),
            grpc: None,
        };
        assert!(r(500).is_5xx() && !r(500).is_gateway_error());
        assert!(r(503).is_gateway_error());
        assert!(r(404).is_success());
        assert!(Outcome::Failure(FailureKind::ConnectFailure).is_gateway_error());
        assert!(!Outcome::Failure(FailureKind::Overflow).is_5xx());
    }

    #[test]
    fn upstream_error_prints_its_level_only() {
        let e = UpstreamError::new(
            FailureKind::ConnectFailure,
            "127.0.0.1:1".parse().unwrap(),
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        );
        assert_eq!(e.to_string(), "connection failed to 127.0.0.1:1");
        assert!(std::error::Error::source(&e).is_some());
    }
}
