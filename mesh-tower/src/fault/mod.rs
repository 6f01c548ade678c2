//! Fault injection, as Envoy's HTTP fault filter, Istio's VirtualService
//! `fault` and gRFC A33: a share of the requests through a [`Fault`] (a
//! route's, with its [`FaultPolicy`]) is delayed before it is forwarded,
//! and a share is
//! answered without being forwarded — with an HTTP status and the body
//! `fault filter abort`, or for gRPC a trailers-only response carrying the
//! `grpc-status`.
//!
//! The delay and the abort are drawn independently; a delayed request may
//! also be aborted, after its delay. A policy may take them from the
//! request (Envoy's `header_delay`/`header_abort`):
//! `x-envoy-fault-delay-request` (milliseconds),
//! `x-envoy-fault-abort-request` (HTTP status) and
//! `x-envoy-fault-abort-grpc-request` (gRPC status), with
//! `x-envoy-fault-delay-request-percentage` and
//! `x-envoy-fault-abort-request-percentage` lowering the configured share.
//! No more than `max_active_faults` requests are faulted at once, counted
//! across every `Fault` a [`FaultLayer`] made (a client's routes); the
//! rest pass untouched.
//!
//! The delay happens before the route's timeout starts, as in Envoy; a
//! caller's own deadline covers it.

mod future;
mod layer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use mesh_core::GrpcCode;
use mesh_core::route::{AbortSource, DelaySource, FaultPolicy, Percent};
use tower::{Layer, Service};

pub use future::ResponseFuture;
pub use layer::FaultLayer;

use crate::body::{flagged, local_grpc_response, local_response};
use crate::draw::Draws;
use crate::{BoxError, ResponseBody};

const DELAY_HEADER: &str = "x-envoy-fault-delay-request";
const DELAY_PERCENT_HEADER: &str = "x-envoy-fault-delay-request-percentage";
const ABORT_HEADER: &str = "x-envoy-fault-abort-request";
const ABORT_GRPC_HEADER: &str = "x-envoy-fault-abort-grpc-request";
const ABORT_PERCENT_HEADER: &str = "x-envoy-fault-abort-request-percentage";

/// Injects the faults of a policy into the requests through it.
#[derive(Clone, Debug)]
pub struct Fault<S> {
    inner: S,
    policy: Arc<FaultPolicy>,
    draws: Draws,
    active: Arc<AtomicU32>,
}

impl<S> Fault<S> {
    /// Wraps `inner` with `policy`, drawing at random.
    pub fn new(inner: S, policy: FaultPolicy) -> Self {
        FaultLayer::new().policy(policy).layer(inner)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// What to do to one request.
#[derive(Debug, Default)]
struct Injection {
    delay: Option<Duration>,
    abort: Option<http::Response<ResponseBody>>,
}

impl<S, B> Service<http::Request<B>> for Fault<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResponseBody>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<ResponseBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, http::Request<B>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let injection = self.decide(&self.policy, req.headers());
        if injection.delay.is_none() && injection.abort.is_none() {
            return ResponseFuture::passed(self.inner.call(req));
        }
        let active = ActiveFault::start(&self.active);
        match injection.delay {
            Some(delay) => {
                let inner = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, inner);
                ResponseFuture::delayed(delay, inner, req, injection.abort, active)
            }
            None => ResponseFuture::aborted(injection.abort, active),
        }
    }
}

impl<S> Fault<S> {
    fn decide(&self, policy: &FaultPolicy, headers: &HeaderMap) -> Injection {
        if let Some(max) = policy.max_active_faults
            && self.active.load(Ordering::Relaxed) >= max
        {
            return Injection::default();
        }
        let delay = policy.delay.as_ref().and_then(|d| {
            let (delay, percent) = match d.delay {
                DelaySource::Fixed(t) => (Some(t), d.percent),
                DelaySource::Header => (
                    header::<u64>(headers, DELAY_HEADER).map(Duration::from_millis),
                    header_percent(headers, DELAY_PERCENT_HEADER, d.percent),
                ),
            };
            delay.filter(|_| percent.hit(self.draws.draw_u32()))
        });
        let abort = policy.abort.as_ref().and_then(|a| {
            let percent = match &a.abort {
                AbortSource::Header => header_percent(headers, ABORT_PERCENT_HEADER, a.percent),
                _ => a.percent,
            };
            // Drawn first: the response is built only for a hit.
            if !percent.hit(self.draws.draw_u32()) {
                return None;
            }
            match &a.abort {
                AbortSource::Http(s) => Some(http_abort(*s)),
                AbortSource::Grpc(c) => Some(grpc_abort(*c)),
                AbortSource::Header => header::<u16>(headers, ABORT_HEADER)
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .filter(|s| (200..600).contains(&s.as_u16()))
                    .map(http_abort)
                    .or_else(|| {
                        header::<u32>(headers, ABORT_GRPC_HEADER).map(|c| grpc_abort(GrpcCode(c)))
                    }),
            }
        });
        Injection { delay, abort }
    }
}

fn header<T: std::str::FromStr>(headers: &HeaderMap, name: &str) -> Option<T> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The share named by a percentage header, never above the configured one.
fn header_percent(headers: &HeaderMap, name: &str, configured: Percent) -> Percent {
    header::<f64>(headers, name)
        .and_then(|p| Percent::new(p).ok())
        .map_or(configured, |p| p.min(configured))
}

fn http_abort(status: StatusCode) -> http::Response<ResponseBody> {
    flagged(local_response(status, "fault filter abort"), "FI")
}

fn grpc_abort(code: GrpcCode) -> http::Response<ResponseBody> {
    flagged(local_grpc_response(code, "fault filter abort"), "FI")
}

/// Counts a fault as active until dropped.
#[derive(Debug)]
pub(crate) struct ActiveFault(Arc<AtomicU32>);

impl ActiveFault {
    fn start(active: &Arc<AtomicU32>) -> Self {
        active.fetch_add(1, Ordering::Relaxed);
        Self(active.clone())
    }
}

impl Drop for ActiveFault {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
