use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project::pin_project;
use tower::util::Oneshot;

use super::{ClusterService, RoutedService};
use crate::{BoxError, RequestBody, ResponseBody};

/// The response future of [`MeshClient`](super::MeshClient).
#[pin_project]
pub struct ResponseFuture<B> {
    #[pin]
    state: State<B>,
}

// A future lives pinned in place; the failed state is rare and small, and
// boxing the common one would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
#[pin_project(project = StateProj)]
enum State<B> {
    Sent(#[pin] Oneshot<ClusterService<B>, http::Request<RequestBody<B>>>),
    Routed(#[pin] Oneshot<RoutedService<B>, http::Request<B>>),
    Failed(Option<BoxError>),
}

impl<B> ResponseFuture<B> {
    pub(super) fn new(cluster: ClusterService<B>, req: http::Request<RequestBody<B>>) -> Self {
        Self {
            state: State::Sent(tower::ServiceExt::oneshot(cluster, req)),
        }
    }

    pub(super) fn routed(routes: RoutedService<B>, req: http::Request<B>) -> Self {
        Self {
            state: State::Routed(tower::ServiceExt::oneshot(routes, req)),
        }
    }

    pub(super) fn failed(e: BoxError) -> Self {
        Self {
            state: State::Failed(Some(e)),
        }
    }
}

impl<B> Future for ResponseFuture<B> {
    type Output = Result<http::Response<ResponseBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Sent(fut) => fut.poll(cx),
            StateProj::Routed(fut) => fut.poll(cx),
            StateProj::Failed(e) => Poll::Ready(Err(e.take().expect("polled after completion"))),
        }
    }
}
