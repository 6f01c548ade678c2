//! Outlier detection (passive health checking): watches every response and
//! failure of each endpoint and ejects an endpoint from load balancing when
//! it reaches a consecutive-error threshold, as Envoy's `outlier_detection`
//! and Istio's `outlierDetection` do.
//!
//! - `consecutive_5xx` counts 5xx responses and upstream failures (connect
//!   failure, reset, timeout) — Envoy's default mode, where locally
//!   originated errors count as 5xx. Any other response resets the count.
//! - `consecutive_gateway_errors` counts 502/503/504 and upstream failures.
//! - An ejection lasts `base_ejection_time × times ejected`, capped at
//!   `max_ejection_time`; the endpoint comes back by itself when it is over.
//! - At most `max_ejection_percent` of the endpoints are ejected at once, and
//!   at least one endpoint may always be ejected (as Envoy).
//!
//! One [`OutlierDetector`] serves a cluster. [`Outlier`] wraps each
//! endpoint's service and reports to the detector; the
//! [`balance`](crate::balance) layer skips ejected endpoints.

mod detector;
mod future;
mod layer;

use std::sync::Arc;
use std::task::{Context, Poll};

use tower::Service;

pub use detector::{EndpointHealth, OutlierDetector};
pub use future::ResponseFuture;
pub use layer::OutlierLayer;

use crate::BoxError;

/// Reports each outcome of one endpoint's service to its detector.
#[derive(Clone, Debug)]
pub struct Outlier<S> {
    inner: S,
    detector: Arc<OutlierDetector>,
    health: Arc<EndpointHealth>,
}

impl<S> Outlier<S> {
    /// Wraps the service of the endpoint whose state is `health`.
    pub fn new(inner: S, detector: Arc<OutlierDetector>, health: Arc<EndpointHealth>) -> Self {
        Self {
            inner,
            detector,
            health,
        }
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

impl<S, Req, B> Service<Req> for Outlier<S>
where
    S: Service<Req, Response = http::Response<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        ResponseFuture::new(
            self.inner.call(req),
            self.detector.clone(),
            self.health.clone(),
        )
    }
}

#[cfg(test)]
mod tests;
