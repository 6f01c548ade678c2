//! Connectors: [`TcpConnector`] opens TCP connections; [`AddrConnector`]
//! pins a connector to one endpoint address for the pool.

use std::future::Future;

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower::{Service, ServiceExt};

use crate::BoxError;

/// Opens TCP connections with a connect timeout and `TCP_NODELAY`.
#[derive(Clone, Copy, Debug)]
pub struct TcpConnector {
    connect_timeout: Duration,
    nodelay: bool,
}

impl TcpConnector {
    /// A connector giving up after `connect_timeout`.
    pub fn new(connect_timeout: Duration, nodelay: bool) -> Self {
        Self {
            connect_timeout,
            nodelay,
        }
    }
}

impl Default for TcpConnector {
    fn default() -> Self {
        let policy = mesh_core::policy::ConnectionPolicy::default();
        Self::new(policy.connect_timeout, policy.tcp_nodelay)
    }
}

/// The connect timeout elapsed.
#[derive(Debug, thiserror::Error)]
#[error("connect timed out after {0:?}")]
pub struct ConnectTimeout(Duration);

impl Service<SocketAddr> for TcpConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, addr: SocketAddr) -> Self::Future {
        let Self {
            connect_timeout,
            nodelay,
        } = *self;
        Box::pin(async move {
            let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
                .await
                .map_err(|_| ConnectTimeout(connect_timeout))??;
            stream.set_nodelay(nodelay)?;
            Ok(TokioIo::new(stream))
        })
    }
}

/// A connector pinned to one address: whatever URI the pool asks for, it
/// connects to the endpoint. The pool keys connections by the request's
/// authority; each endpoint has a pool of its own.
#[derive(Clone, Debug)]
pub struct AddrConnector<C> {
    addr: SocketAddr,
    inner: C,
}

impl<C> AddrConnector<C> {
    /// Connects to `addr` with `inner`.
    pub fn new(addr: SocketAddr, inner: C) -> Self {
        Self { addr, inner }
    }
}

impl<C> Service<http::Uri> for AddrConnector<C>
where
    C: Service<SocketAddr> + Clone + Send + 'static,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let fut = self.inner.clone().oneshot(self.addr);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}
