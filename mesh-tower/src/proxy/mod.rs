//! The services a sidecar is made of, for applications that speak plain
//! HTTP and link nothing of the mesh (what `mesh-sidecar` serves):
//!
//! - [`Outbound`]: what the application sends to the sidecar, as to an
//!   HTTP proxy (absolute-form URI, `HTTP_PROXY`) or with the target in
//!   `Host`/`:authority`, handed to a client (a
//!   [`MeshClient`](crate::MeshClient), which routes, balances, retries,
//!   dials mutual TLS) with its URI made absolute. `CONNECT host:port` is
//!   a TCP tunnel to that address.
//! - [`Inbound`]: what the sidecar takes for the application (behind a
//!   [`MeshServer`](crate::MeshServer), which did mutual TLS and
//!   authorization), forwarded to the application on one local address
//!   in the protocol it came in: HTTP/2 (gRPC) as h2c, the rest as
//!   HTTP/1.1. The caller's verified identity goes with it in
//!   `x-forwarded-client-cert`, and only that one (Envoy's
//!   `SANITIZE_SET`): a caller cannot claim another.
//!
//! - [`intercept`]: connections iptables redirected to the outbound
//!   listener, HTTP served and anything else passed through to its
//!   original destination.
//!
//! Both drop the hop-by-hop headers (RFC 9110 §7.6.1) each way, tunnel
//! `Upgrade` (WebSocket) once the far side has switched protocols, and
//! answer a request that could not be sent as Envoy does, with a response
//! of their own and its response flag ([`ResponseFlag`]): `503` for a
//! connection that failed (`UF`), was reset (`UR`) or had no healthy
//! endpoint (`UH`) or circuit (`UO`), `504` for a timeout (`UT`), `400`
//! for a request without a target; a gRPC request gets a trailers-only
//! `UNAVAILABLE` or `DEADLINE_EXCEEDED` in their place.

mod future;
mod headers;
mod inbound;
pub mod intercept;
mod outbound;
#[cfg(test)]
mod tests;

pub use future::ResponseFuture;
pub use inbound::{FORWARDED_CLIENT_CERT, Inbound};
pub use outbound::{MissingTarget, Outbound};

use crate::body::{ResponseBody, ResponseFlag, local_grpc_response, local_response};
use mesh_core::{FailureKind, GrpcCode};

/// The response a request that failed with `error` is answered with, as
/// Envoy's local replies are, marked with the failure's flag.
pub fn error_response(
    error: &(dyn std::error::Error + 'static),
    grpc: bool,
) -> http::Response<ResponseBody> {
    if crate::error::is_caused_by::<MissingTarget>(error) {
        return local_response(http::StatusCode::BAD_REQUEST, "missing host header");
    }
    let kind = crate::classify(error);
    let (status, text, code) = match kind {
        FailureKind::Timeout => (
            http::StatusCode::GATEWAY_TIMEOUT,
            "upstream request timeout",
            GrpcCode::DEADLINE_EXCEEDED,
        ),
        FailureKind::NoHealthyUpstream => (
            http::StatusCode::SERVICE_UNAVAILABLE,
            "no healthy upstream",
            GrpcCode::UNAVAILABLE,
        ),
        FailureKind::ConnectFailure => (
            http::StatusCode::SERVICE_UNAVAILABLE,
            "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            GrpcCode::UNAVAILABLE,
        ),
        FailureKind::Overflow => (
            http::StatusCode::SERVICE_UNAVAILABLE,
            "upstream connect error or disconnect/reset before headers. reset reason: overflow",
            GrpcCode::UNAVAILABLE,
        ),
        FailureKind::Reset | FailureKind::RefusedStream => (
            http::StatusCode::SERVICE_UNAVAILABLE,
            "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
            GrpcCode::UNAVAILABLE,
        ),
        FailureKind::Local => (
            http::StatusCode::SERVICE_UNAVAILABLE,
            "upstream unavailable",
            GrpcCode::UNAVAILABLE,
        ),
    };
    let mut res = if grpc {
        local_grpc_response(code, text)
    } else {
        local_response(status, text)
    };
    res.extensions_mut()
        .insert(ResponseFlag(kind.response_flag()));
    res
}
