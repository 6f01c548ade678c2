//! [`Outbound`]: requests an application sends out through its sidecar,
//! handed to the mesh's client with their target made explicit.

use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::{Authority, Scheme};
use hyper::upgrade::OnUpgrade;
use mesh_core::{FailureKind, ResolveError, UpstreamError};
use tokio::net::TcpStream;
use tower::Service;

use super::ResponseFuture;
use super::future::{Local, spawn_tunnel};
use super::headers::{is_upgrade, strip_hop_by_hop};
use crate::BoxError;
use crate::body::{ResponseBody, local_response};
use http::StatusCode;

/// A request with neither an absolute URI nor a `Host`: nothing says
/// where it goes.
#[derive(Debug, thiserror::Error)]
#[error("the request names no target: no absolute URI, no Host header")]
pub struct MissingTarget;

/// Sends each request to `inner` (a [`MeshClient`](crate::MeshClient))
/// with an absolute URI: the one it came with (absolute-form, HTTP/2's
/// `:authority`), else `http://` and its `Host`; its authority with the
/// scheme's port when it names none (`http://reviews/` is for
/// `reviews:80`, the listener a control plane serves for it). The `Host`
/// header stays as the application wrote it. `CONNECT host:port`
/// opens a TCP tunnel to that address, answered `200` once connected.
#[derive(Clone, Debug)]
pub struct Outbound<S> {
    inner: S,
    /// An ingress gateway's: `http://` for every request, no tunnels.
    ingress: bool,
}

impl<S> Outbound<S> {
    /// Requests an application sends out, through `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            ingress: false,
        }
    }

    /// Requests an ingress gateway takes from outside the mesh, through
    /// `inner`: each goes on as `http://`, whatever scheme it came with
    /// (the gateway terminated its TLS), its route's cluster deciding
    /// whether it is secured again; and `CONNECT` is refused (`405`), so
    /// that the gateway opens no tunnel to an address no route names, as
    /// an Envoy gateway refuses it unless told to tunnel.
    pub fn ingress(inner: S) -> Self {
        Self {
            inner,
            ingress: true,
        }
    }
}

impl<S, B> Service<http::Request<B>> for Outbound<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResponseBody>>,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<ResponseBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let grpc = crate::body::is_grpc(req.headers());
        if req.method() == http::Method::CONNECT {
            if self.ingress {
                let refused =
                    local_response(StatusCode::METHOD_NOT_ALLOWED, "CONNECT is not routed");
                return ResponseFuture::local(Box::pin(std::future::ready(Ok(refused))), grpc);
            }
            let downstream = hyper::upgrade::on(&mut req);
            return ResponseFuture::local(
                connect(req.uri().authority().cloned(), downstream),
                grpc,
            );
        }
        let scheme = self.ingress.then_some(Scheme::HTTP);
        if let Err(e) = absolute(&mut req, scheme).and_then(|()| with_port(&mut req)) {
            return ResponseFuture::local(Box::pin(std::future::ready(Err(e.into()))), grpc);
        }
        let upgrade = is_upgrade(req.headers());
        let downstream = upgrade.then(|| hyper::upgrade::on(&mut req));
        strip_hop_by_hop(req.headers_mut(), upgrade);
        ResponseFuture::sent(self.inner.call(req), downstream, false, grpc)
    }
}

/// How long a `CONNECT` waits for its TCP connection (Istio's
/// `connectTimeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `target` and answers `200`, the tunnel opening when the
/// client has the answer.
fn connect(target: Option<Authority>, downstream: OnUpgrade) -> Local {
    Box::pin(async move {
        let target = target.ok_or(MissingTarget)?;
        let port = target.port_u16().ok_or(MissingTarget)?;
        let resolve_error = |reason: String| ResolveError::new(&target, reason);
        let addr = match tokio::net::lookup_host((target.host(), port)).await {
            Ok(mut addrs) => addrs
                .next()
                .ok_or_else(|| resolve_error("no address".into()))?,
            Err(e) => return Err(resolve_error(e.to_string()).into()),
        };
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                return Err(UpstreamError::new(FailureKind::ConnectFailure, addr, e).into());
            }
            Err(_) => return Err(crate::timeout::RequestTimeout(CONNECT_TIMEOUT).into()),
        };
        let _ = stream.set_nodelay(true);
        spawn_tunnel(
            downstream,
            std::future::ready(Ok::<_, std::io::Error>(stream)),
        );
        Ok(http::Response::new(ResponseBody::empty()))
    })
}

/// Writes the scheme's port into the absolute URI of `req` if it has none.
fn with_port<B>(req: &mut http::Request<B>) -> Result<(), MissingTarget> {
    let uri = req.uri();
    let Some(authority) = uri.authority().filter(|a| a.port().is_none()) else {
        return Ok(());
    };
    let port = if uri.scheme() == Some(&Scheme::HTTPS) {
        443
    } else {
        80
    };
    let mut parts = uri.clone().into_parts();
    let ported = format!("{authority}:{port}");
    parts.authority = Some(Authority::try_from(ported).map_err(|_| MissingTarget)?);
    *req.uri_mut() = http::Uri::from_parts(parts).map_err(|_| MissingTarget)?;
    Ok(())
}

/// Makes the URI of `req` absolute: `scheme` (else the one it has, else
/// `http`) and its authority, else its `Host`.
pub(super) fn absolute<B>(
    req: &mut http::Request<B>,
    scheme: Option<Scheme>,
) -> Result<(), MissingTarget> {
    let uri = req.uri();
    let scheme_kept = match (&scheme, uri.scheme()) {
        (Some(wanted), Some(has)) => wanted == has,
        (None, has) => has.is_some(),
        (Some(_), None) => false,
    };
    // Already absolute (HTTP/2, the absolute form): nothing to build.
    if scheme_kept && uri.authority().is_some() && uri.path_and_query().is_some() {
        return Ok(());
    }
    let mut parts = uri.clone().into_parts();
    if parts.authority.is_none() {
        let host = req.headers().get(http::header::HOST).ok_or(MissingTarget)?;
        parts.authority = Some(Authority::try_from(host.as_bytes()).map_err(|_| MissingTarget)?);
    }
    parts.scheme = Some(scheme.or(parts.scheme).unwrap_or(Scheme::HTTP));
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    *req.uri_mut() = http::Uri::from_parts(parts).map_err(|_| MissingTarget)?;
    Ok(())
}
