use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use hyper::body::Incoming;
use pin_project::pin_project;
use tower::util::Oneshot;

use super::ClusterService;
use crate::{BoxError, ResponseBody};

/// The response future of [`MeshClient`](super::MeshClient).
#[pin_project(project = Proj)]
pub enum ResponseFuture<B> {
    /// Sent to a cluster.
    Sent(#[pin] Oneshot<ClusterService<B>, http::Request<B>>),
    /// Failed before it could be sent.
    Failed(Option<BoxError>),
}

impl<B> ResponseFuture<B> {
    pub(super) fn new(fut: Oneshot<ClusterService<B>, http::Request<B>>) -> Self {
        Self::Sent(fut)
    }

    pub(super) fn failed(e: BoxError) -> Self {
        Self::Failed(Some(e))
    }
}

impl<B> Future for ResponseFuture<B> {
    type Output = Result<http::Response<ResponseBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Proj::Sent(fut) => {
                let res: http::Response<Incoming> = ready!(fut.poll(cx))?;
                Poll::Ready(Ok(res.map(ResponseBody::from)))
            }
            Proj::Failed(e) => Poll::Ready(Err(e.take().expect("polled after completion"))),
        }
    }
}
