//! Whole-request timeout: the time allowed from sending a request to
//! receiving its response head, covering every retry and backoff (Envoy's
//! route `timeout`, Istio's VirtualService `timeout`). It is distinct from
//! the per-try timeout, which the [`retry`](crate::retry) layer applies to
//! each attempt.
//!
//! With no duration the layer passes requests through. Istio sets no timeout
//! by default; a route's `timeout` replaces its cluster's (see
//! [`cluster`](crate::cluster)).

mod error;
mod future;
mod layer;

use std::task::{Context, Poll};
use std::time::Duration;

use tower::Service;

pub use error::RequestTimeout;
pub use future::ResponseFuture;
pub use layer::TimeoutLayer;

use crate::BoxError;

/// Fails requests whose response head does not arrive within a duration.
#[derive(Clone, Debug)]
pub struct Timeout<S> {
    inner: S,
    timeout: Option<Duration>,
}

impl<S> Timeout<S> {
    /// Wraps `inner`; `None` means no timeout.
    pub fn new(inner: S, timeout: Option<Duration>) -> Self {
        Self { inner, timeout }
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

impl<S, B> Service<http::Request<B>> for Timeout<S>
where
    S: Service<http::Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        ResponseFuture::within(self.inner.call(req), self.timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_configured_time() {
        let slow = tower::service_fn(|_: http::Request<()>| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, BoxError>("late")
        });
        let start = tokio::time::Instant::now();
        let err = Timeout::new(slow, Some(Duration::from_secs(3)))
            .oneshot(http::Request::new(()))
            .await
            .unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        assert_eq!(err.to_string(), "request timed out after 3s");
        assert!(err.is::<RequestTimeout>());
    }

    #[tokio::test(start_paused = true)]
    async fn passes_fast_responses_and_none_means_forever() {
        let svc = tower::service_fn(|_: http::Request<()>| async {
            tokio::time::sleep(Duration::from_secs(100)).await;
            Ok::<_, BoxError>("ok")
        });
        let req = || http::Request::new(());
        assert_eq!(Timeout::new(svc, None).oneshot(req()).await.unwrap(), "ok");
        let fast = tower::service_fn(|_: http::Request<()>| async { Ok::<_, BoxError>("ok") });
        let t = Timeout::new(fast, Some(Duration::from_millis(1)));
        assert_eq!(t.oneshot(req()).await.unwrap(), "ok");
    }
}
