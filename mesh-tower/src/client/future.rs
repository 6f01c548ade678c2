use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use hyper::body::Incoming;
use pin_project::pin_project;
use tower::util::Oneshot;

use super::ClusterService;
use crate::{BoxError, ResponseBody};

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
    Sent(#[pin] Oneshot<ClusterService<B>, http::Request<B>>),
    Failed(Option<BoxError>),
}

impl<B> ResponseFuture<B> {
    pub(super) fn new(fut: Oneshot<ClusterService<B>, http::Request<B>>) -> Self {
        Self {
            state: State::Sent(fut),
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
            StateProj::Sent(fut) => {
                let res: http::Response<Incoming> = ready!(fut.poll(cx))?;
                Poll::Ready(Ok(res.map(ResponseBody::from)))
            }
            StateProj::Failed(e) => Poll::Ready(Err(e.take().expect("polled after completion"))),
        }
    }
}
