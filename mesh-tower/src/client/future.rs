//! The response future of [`MeshClient`](super::MeshClient).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Body;
use pin_project::pin_project;
use tower::util::Oneshot;

use super::RouteService;
use crate::{BoxError, ResponseBody};

type Routed<B> = crate::route::ResponseFuture<Oneshot<RouteService<B>, http::Request<B>>>;

/// The response future of [`MeshClient`](super::MeshClient).
#[pin_project]
pub struct ResponseFuture<B>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    #[pin]
    state: State<B>,
}

// A future lives pinned in place; boxing the larger state would cost an
// allocation per request.
#[allow(clippy::large_enum_variant)]
#[pin_project(project = StateProj)]
enum State<B>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    /// Sent straight to a cluster.
    Cluster(crate::cluster::ResponseFuture),
    /// Routed into a route's stack.
    Routed(#[pin] Routed<B>),
    /// Waiting for the configuration of a new xDS target.
    #[cfg(feature = "xds")]
    Waiting(Pin<Box<dyn Future<Output = Result<http::Response<ResponseBody>, BoxError>> + Send>>),
    /// Failed before it was sent.
    Failed(Option<BoxError>),
}

impl<B> ResponseFuture<B>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    pub(super) fn cluster(fut: crate::cluster::ResponseFuture) -> Self {
        Self {
            state: State::Cluster(fut),
        }
    }

    pub(super) fn routed(fut: Routed<B>) -> Self {
        Self {
            state: State::Routed(fut),
        }
    }

    pub(super) fn failed(e: BoxError) -> Self {
        Self {
            state: State::Failed(Some(e)),
        }
    }

    #[cfg(feature = "xds")]
    pub(super) fn waiting(
        fut: Pin<Box<dyn Future<Output = Result<http::Response<ResponseBody>, BoxError>> + Send>>,
    ) -> Self {
        Self {
            state: State::Waiting(fut),
        }
    }
}

impl<B> Future for ResponseFuture<B>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<http::Response<ResponseBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Cluster(fut) => fut.as_mut().poll(cx),
            StateProj::Routed(fut) => fut.poll(cx),
            #[cfg(feature = "xds")]
            StateProj::Waiting(fut) => fut.as_mut().poll(cx),
            StateProj::Failed(e) => Poll::Ready(Err(e.take().expect("polled after completion"))),
        }
    }
}
