//! Fault injection policy: Envoy's HTTP fault filter (`HTTPFault`), Istio's
//! VirtualService `fault`, and gRFC A33 for proxyless gRPC.

use std::time::Duration;

use http::StatusCode;

use super::Percent;
use crate::GrpcCode;

/// Delays and aborts injected into a share of requests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultPolicy {
    /// Delay before the request is forwarded.
    pub delay: Option<FaultDelay>,
    /// Answer without forwarding.
    pub abort: Option<FaultAbort>,
    /// Faults active at once at most; beyond it requests pass untouched
    /// (Envoy's `max_active_faults`). `None`: no bound.
    pub max_active_faults: Option<u32>,
}

/// A delay and the share of requests it applies to.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultDelay {
    /// How long.
    pub delay: DelaySource,
    /// The share delayed.
    pub percent: Percent,
}

/// Where a delay's length comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum DelaySource {
    /// A fixed duration (Istio's `fixedDelay`).
    Fixed(Duration),
    /// The request's `x-envoy-fault-delay-request` header, in milliseconds
    /// (Envoy's `header_delay`); requests without it are not delayed.
    Header,
}

/// An abort and the share of requests it applies to.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultAbort {
    /// What the caller gets.
    pub abort: AbortSource,
    /// The share aborted.
    pub percent: Percent,
}

/// What an aborted request is answered with.
#[derive(Clone, Debug, PartialEq)]
pub enum AbortSource {
    /// An HTTP status (Istio's `abort.httpStatus`).
    Http(StatusCode),
    /// A gRPC status in a trailers-only response (Istio's
    /// `abort.grpcStatus`).
    Grpc(GrpcCode),
    /// The request's `x-envoy-fault-abort-request` (HTTP status) or
    /// `x-envoy-fault-abort-grpc-request` (gRPC status) header (Envoy's
    /// `header_abort`); requests without either are not aborted.
    Header,
}
