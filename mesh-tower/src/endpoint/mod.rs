//! Pooled HTTP connections to one endpoint.
//!
//! [`HttpEndpoint`] sends requests to a single address over a pool of
//! HTTP/1.1 connections, or multiplexed over cleartext HTTP/2 with prior
//! knowledge (h2c) for HTTP/2 requests such as gRPC, as the cluster's
//! [`Protocol`] says. Connections come from a pluggable connector: any
//! `tower::Service<SocketAddr>` returning an I/O stream, so TLS can wrap
//! [`TcpConnector`] without touching the pool. The default connector sets
//! `TCP_NODELAY` and a connect timeout.
//!
//! TLS is a connector over the plain one
//! ([`MeshTlsConnector`](crate::tls::MeshTlsConnector)). An `https`
//! request to an endpoint reached in plain text, or one to an endpoint its
//! cluster says needs TLS the client cannot dial ([`TlsRequired`]), fails
//! with [`TlsUnavailable`] and is never sent in plain text.
//!
//! Failures are returned as [`UpstreamError`]s classified as connect
//! failure, reset, refused stream or local error, which the retry and
//! outlier layers decide from. Each response carries the endpoint that
//! sent it as an [`UpstreamHost`] extension (Envoy's `%UPSTREAM_HOST%`).

mod connect;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::Connection;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use mesh_core::policy::{ConnectionPolicy, Protocol};
use mesh_core::{FailureKind, UpstreamError};
use tower::Service;

pub use connect::{AddrConnector, ConnectTimeout, TcpConnector};
pub use tls::{TlsRefusals, TlsRequired, TlsUnavailable};

use crate::BoxError;

/// The endpoint a response came from; a response extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UpstreamHost(pub SocketAddr);

/// The response future of [`HttpEndpoint`].
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Incoming>, BoxError>> + Send>>;

/// Sends requests to one endpoint over pooled connections.
pub struct HttpEndpoint<C, B> {
    addr: SocketAddr,
    protocol: Protocol,
    /// Whether its connections are TLS, so `https` requests may use them.
    encrypted: bool,
    http1: Client<AddrConnector<C>, B>,
    http2: Client<AddrConnector<C>, B>,
    /// For requests that upgrade their connection, when `http1` may
    /// negotiate HTTP/2 (over TLS, by ALPN).
    upgrades: Option<Client<AddrConnector<C>, B>>,
}

impl<C: Clone, B> Clone for HttpEndpoint<C, B> {
    fn clone(&self) -> Self {
        Self {
            addr: self.addr,
            protocol: self.protocol,
            encrypted: self.encrypted,
            http1: self.http1.clone(),
            http2: self.http2.clone(),
            upgrades: self.upgrades.clone(),
        }
    }
}

impl<C, B> std::fmt::Debug for HttpEndpoint<C, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpEndpoint")
            .field("addr", &self.addr)
            .field("protocol", &self.protocol)
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}

impl<C, B> HttpEndpoint<C, B>
where
    C: Service<SocketAddr> + Clone + Send + Sync + 'static,
    C::Response: hyper::rt::Read + hyper::rt::Write + Connection + Unpin + Send + 'static,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    /// Connections to `addr` made by `connector`, kept as `policy` says.
    pub fn new(addr: SocketAddr, connector: C, policy: &ConnectionPolicy) -> Self {
        let connector = AddrConnector::new(addr, connector);
        let http1 = pool(policy).build(connector.clone());
        let http2 = pool(policy).http2_only(true).build(connector);
        Self {
            addr,
            protocol: policy.protocol,
            encrypted: false,
            http1,
            http2,
            upgrades: None,
        }
    }

    /// Sends requests that upgrade their connection (`Upgrade`,
    /// WebSocket) over connections `connector` makes, which must be
    /// HTTP/1.1 ([`MeshTlsConnector::http1_only`](crate::tls::MeshTlsConnector::http1_only)).
    pub fn upgrades_over(mut self, connector: C, policy: &ConnectionPolicy) -> Self {
        let connector = AddrConnector::new(self.addr, connector);
        self.upgrades = Some(pool(policy).build(connector));
        self
    }
}

impl<C, B> Service<http::Request<B>> for HttpEndpoint<C, B>
where
    C: Service<SocketAddr> + Clone + Send + Sync + 'static,
    C::Response: hyper::rt::Read + hyper::rt::Write + Connection + Unpin + Send + 'static,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Incoming>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        self.send(req)
    }
}

impl<C, B> HttpEndpoint<C, B>
where
    C: Service<SocketAddr> + Clone + Send + Sync + 'static,
    C::Response: hyper::rt::Read + hyper::rt::Write + Connection + Unpin + Send + 'static,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    /// The connector makes TLS connections: `https` requests go over them
    /// (without it they are refused, never sent in plain text).
    pub fn encrypted(mut self) -> Self {
        self.encrypted = true;
        self
    }

    /// Sends `req`, as [`call`](Service::call) does, from a shared
    /// reference.
    pub fn send(&self, mut req: http::Request<B>) -> ResponseFuture {
        if !self.encrypted && req.uri().scheme() == Some(&http::uri::Scheme::HTTPS) {
            let authority = req.uri().authority().map(ToString::to_string);
            let error = TlsUnavailable::Target {
                authority: authority.unwrap_or_default(),
            };
            return Box::pin(std::future::ready(Err(error.into())));
        }
        let http2 = match self.protocol {
            Protocol::UseClientProtocol => req.version() == http::Version::HTTP_2,
            Protocol::Http1 => false,
            Protocol::Http2 => true,
        };
        *req.version_mut() = if http2 {
            http::Version::HTTP_2
        } else {
            http::Version::HTTP_11
        };
        let upgrade = !http2 && req.headers().contains_key(http::header::UPGRADE);
        let client = match &self.upgrades {
            Some(upgrades) if upgrade => upgrades,
            _ if http2 => &self.http2,
            _ => &self.http1,
        };
        let fut = client.request(req);
        let addr = self.addr;
        Box::pin(async move {
            match fut.await {
                Ok(mut res) => {
                    res.extensions_mut().insert(UpstreamHost(addr));
                    Ok(res)
                }
                Err(e) => Err(UpstreamError::new(classify(&e), addr, e).into()),
            }
        })
    }
}

/// A client builder pooling as `policy` says.
fn pool(policy: &ConnectionPolicy) -> hyper_util::client::legacy::Builder {
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(policy.idle_timeout)
        .pool_max_idle_per_host(policy.max_idle_per_endpoint);
    builder
}

/// The kind of failure a client error is.
fn classify(e: &hyper_util::client::legacy::Error) -> FailureKind {
    if e.is_connect() {
        return FailureKind::ConnectFailure;
    }
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        if let Some(h) = cause.downcast_ref::<hyper::Error>()
            && h.is_user()
        {
            return FailureKind::Local;
        }
        if let Some(h2) = cause.downcast_ref::<h2::Error>()
            && h2.reason() == Some(h2::Reason::REFUSED_STREAM)
        {
            return FailureKind::RefusedStream;
        }
        next = cause.source();
    }
    FailureKind::Reset
}
