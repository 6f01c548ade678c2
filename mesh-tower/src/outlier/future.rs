use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use mesh_core::Outcome;
use pin_project::{pin_project, pinned_drop};

use super::{EndpointHealth, OutlierDetector};
use crate::BoxError;

/// The response future of [`Outlier`](super::Outlier). Dropped before
/// it completes (a timeout, a caller gone), its attempt counts as an
/// error of the endpoint (`rq_error`), though not towards an ejection.
#[pin_project(PinnedDrop)]
#[derive(Debug)]
pub struct ResponseFuture<F> {
    #[pin]
    inner: F,
    detector: Arc<OutlierDetector>,
    health: Arc<EndpointHealth>,
    done: bool,
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(
        inner: F,
        detector: Arc<OutlierDetector>,
        health: Arc<EndpointHealth>,
    ) -> Self {
        Self {
            inner,
            detector,
            health,
            done: false,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<http::Response<B>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = ready!(this.inner.poll(cx)).map_err(Into::into);
        let outcome = match &res {
            Ok(res) => Outcome::from_response(res),
            Err(e) => Outcome::Failure(crate::classify(&**e)),
        };
        this.detector.record(this.health, &outcome);
        *this.done = true;
        Poll::Ready(res)
    }
}

#[pinned_drop]
impl<F> PinnedDrop for ResponseFuture<F> {
    fn drop(self: Pin<&mut Self>) {
        let this = self.project();
        if !*this.done {
            this.health.cut_short();
        }
    }
}
