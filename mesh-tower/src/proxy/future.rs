//! [`ResponseFuture`]: the response of [`Inbound`](super::Inbound) and
//! [`Outbound`](super::Outbound), with its failure answered and its
//! tunnel opened.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::future::BoxFuture;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use pin_project::pin_project;

use super::error_response;
use super::headers::strip_hop_by_hop;
use crate::BoxError;
use crate::body::ResponseBody;

/// The response to a proxied request: the far side's, with its hop-by-hop
/// headers dropped, or a local reply when it could not be had.
#[pin_project]
pub struct ResponseFuture<F> {
    #[pin]
    inner: Inner<F>,
    /// The client's side of a tunnel it asked for.
    downstream: Option<OnUpgrade>,
    /// Whether the request was a `CONNECT`, which a `2xx` opens.
    connect: bool,
    /// Whether a failure is answered as gRPC.
    grpc: bool,
}

/// A locally made answer.
pub(super) type Local = BoxFuture<'static, Result<http::Response<ResponseBody>, BoxError>>;

#[pin_project(project = InnerProj)]
enum Inner<F> {
    /// The request sent on.
    Sent(#[pin] F),
    /// An answer of the proxy's own.
    Local(Local),
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("connect", &self.connect)
            .field("grpc", &self.grpc)
            .finish_non_exhaustive()
    }
}

impl<F> ResponseFuture<F> {
    /// The answer to a request sent on as `sent`; with `downstream`, the
    /// tunnel the client asked for opened if the far side agrees.
    pub(super) fn sent(sent: F, downstream: Option<OnUpgrade>, connect: bool, grpc: bool) -> Self {
        Self {
            inner: Inner::Sent(sent),
            downstream,
            connect,
            grpc,
        }
    }

    /// An answer of the proxy's own.
    pub(super) fn local(local: Local, grpc: bool) -> Self {
        Self {
            inner: Inner::Local(local),
            downstream: None,
            connect: false,
            grpc,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: Into<ResponseBody>,
    E: Into<BoxError>,
{
    type Output = Result<http::Response<ResponseBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = match this.inner.project() {
            InnerProj::Sent(f) => ready!(f.poll(cx))
                .map(|r| r.map(Into::into))
                .map_err(Into::into),
            InnerProj::Local(f) => ready!(f.as_mut().poll(cx)),
        };
        let mut res = match polled {
            Ok(res) => res,
            Err(e) => {
                tracing::debug!(error = %e, "proxied request failed");
                return Poll::Ready(Ok(error_response(&*e, *this.grpc)));
            }
        };
        let opened = if *this.connect {
            res.status().is_success()
        } else {
            res.status() == http::StatusCode::SWITCHING_PROTOCOLS
        };
        let tunnel = opened.then(|| this.downstream.take()).flatten();
        strip_hop_by_hop(res.headers_mut(), tunnel.is_some() && !*this.connect);
        if let Some(downstream) = tunnel {
            let upstream = hyper::upgrade::on(&mut res);
            spawn_tunnel(downstream, async move { upstream.await.map(TokioIo::new) });
        }
        Poll::Ready(Ok(res))
    }
}

/// Copies bytes both ways between the two sides of a tunnel once both
/// are open, until either closes.
pub(super) fn spawn_tunnel<U, T, E>(downstream: OnUpgrade, upstream: U)
where
    U: Future<Output = Result<T, E>> + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
    E: std::fmt::Display + Send,
{
    tokio::spawn(async move {
        let (down, up) = tokio::join!(downstream, upstream);
        let (down, mut up) = match (down, up) {
            (Ok(down), Ok(up)) => (down, up),
            (Err(e), _) => return tracing::debug!(error = %e, "tunnel not opened"),
            (_, Err(e)) => return tracing::debug!(error = %e, "tunnel not opened"),
        };
        if let Err(e) = tokio::io::copy_bidirectional(&mut TokioIo::new(down), &mut up).await {
            tracing::debug!(error = %e, "tunnel ended with an error");
        }
    });
}
