use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::Body;
use mesh_core::route::ClusterName;
use pin_project::pin_project;
use tower::util::Oneshot;

use super::{ClusterService, RoutedService};
use crate::split::SelectedCluster;
use crate::{BoxError, RequestBody, ResponseBody};

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
    Cluster(#[pin] ClusterFuture<B>),
    Routed(#[pin] Oneshot<RoutedService<B>, http::Request<B>>),
    /// Waiting for the configuration of a new xDS target.
    #[cfg(feature = "xds")]
    Waiting(Pin<Box<dyn Future<Output = Result<http::Response<ResponseBody>, BoxError>> + Send>>),
}

impl<B> ResponseFuture<B>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    pub(super) fn cluster(fut: ClusterFuture<B>) -> Self {
        Self {
            state: State::Cluster(fut),
        }
    }

    pub(super) fn routed(routes: RoutedService<B>, req: http::Request<B>) -> Self {
        Self {
            state: State::Routed(tower::ServiceExt::oneshot(routes, req)),
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
            StateProj::Cluster(fut) => fut.poll(cx),
            StateProj::Routed(fut) => fut.poll(cx),
            #[cfg(feature = "xds")]
            StateProj::Waiting(fut) => fut.as_mut().poll(cx),
        }
    }
}

/// A request on its way through one cluster's stack, or failed before.
#[pin_project]
pub(super) struct ClusterFuture<B> {
    #[pin]
    state: ClusterState<B>,
    /// The configured cluster, to name on the response.
    cluster: Option<ClusterName>,
}

#[allow(clippy::large_enum_variant)]
#[pin_project(project = ClusterStateProj)]
enum ClusterState<B> {
    Sent(#[pin] Oneshot<ClusterService<B>, http::Request<RequestBody<B>>>),
    Failed(Option<BoxError>),
}

impl<B> ClusterFuture<B> {
    pub(super) fn new(cluster: ClusterService<B>, req: http::Request<RequestBody<B>>) -> Self {
        Self {
            state: ClusterState::Sent(tower::ServiceExt::oneshot(cluster, req)),
            cluster: None,
        }
    }

    pub(super) fn failed(e: BoxError) -> Self {
        Self {
            state: ClusterState::Failed(Some(e)),
            cluster: None,
        }
    }

    /// Names `cluster`, if any, on the response, as a [`SelectedCluster`]
    /// extension.
    pub(super) fn naming(mut self, cluster: Option<ClusterName>) -> Self {
        self.cluster = cluster;
        self
    }
}

impl<B> Future for ClusterFuture<B> {
    type Output = Result<http::Response<ResponseBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.state.project() {
            ClusterStateProj::Sent(fut) => {
                let mut res = ready!(fut.poll(cx))?;
                if let Some(cluster) = this.cluster.take() {
                    res.extensions_mut().insert(SelectedCluster(cluster));
                }
                Poll::Ready(Ok(res))
            }
            ClusterStateProj::Failed(e) => {
                Poll::Ready(Err(e.take().expect("polled after completion")))
            }
        }
    }
}
