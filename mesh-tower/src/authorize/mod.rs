//! Authorization of a server's requests, as Envoy's RBAC filter does it
//! behind istiod and gRPC's xDS servers do it (gRFC A41): each request's
//! path is made canonical ([`normalize_path`]; one that cannot be is
//! answered `400`), then decided by the port's [`InboundPolicy`] of the
//! moment: a request over plain text to a `STRICT` port, or one its RBAC
//! filters refuse ([`authorize`]), is
//! answered `403` with the body `RBAC: access denied` (a gRPC request:
//! `PERMISSION_DENIED`, trailers only). Which policy refused it, and why,
//! is logged (at `debug`, so that refused traffic cannot flood the log),
//! never told to the client.
//!
//! What the decision reads of the connection is what
//! [`MeshServer`](crate::server::MeshServer) puts in each request's
//! extensions: its [`ConnectInfo`] (addresses) and, over mutual TLS, its
//! [`ClientIdentity`]. A request without a `ConnectInfo` is refused.
//!
//! The policy is a [`SharedPolicy`]: swapped whole when the configuration
//! changes, read with one atomic load per request, so a change applies to
//! the next request of every connection, established ones included.

mod future;
mod layer;
mod normalize;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::Either;
use mesh_core::GrpcCode;
use mesh_core::security::{AccessRequest, Decision, InboundPolicy, MtlsMode, authorize};
use tower::Service;

pub use future::ResponseFuture;
pub use layer::AuthorizeLayer;
pub use normalize::{InvalidPath, normalize_path};

use crate::ResponseBody;
use crate::body::{local_grpc_response, local_response};
use crate::server::ConnectInfo;
use crate::tls::ClientIdentity;

/// What a denied request is told.
pub const ACCESS_DENIED: &str = "RBAC: access denied";

/// A port's policy of the moment; clones share it.
#[derive(Clone, Debug, Default)]
pub struct SharedPolicy(Arc<ArcSwap<InboundPolicy>>);

impl SharedPolicy {
    /// A policy that is `policy` until [`set`](Self::set).
    pub fn new(policy: InboundPolicy) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(policy)))
    }

    /// Replaces the policy for every request from now on.
    pub fn set(&self, policy: InboundPolicy) {
        self.0.store(Arc::new(policy));
    }

    /// The policy now.
    pub fn get(&self) -> Arc<InboundPolicy> {
        self.0.load_full()
    }
}

impl From<InboundPolicy> for SharedPolicy {
    fn from(policy: InboundPolicy) -> Self {
        Self::new(policy)
    }
}

/// Lets through to `S` only the requests its policy allows.
#[derive(Clone, Debug)]
pub struct Authorize<S> {
    inner: S,
    policy: SharedPolicy,
}

impl<S> Authorize<S> {
    /// `inner` behind `policy`.
    pub fn new(inner: S, policy: SharedPolicy) -> Self {
        Self { inner, policy }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Authorize<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<Either<ResBody, ResponseBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        match check(&self.policy.0.load(), &mut req) {
            Ok(()) => ResponseFuture::inner(self.inner.call(req)),
            Err(refusal) => ResponseFuture::refused(refusal.response(&req)),
        }
    }
}

/// Why a request is not let through.
enum Refusal {
    /// Its path is not one.
    BadPath,
    /// The policy refused it.
    Denied,
}

impl Refusal {
    fn response<B>(&self, req: &Request<B>) -> Response<ResponseBody> {
        match self {
            Refusal::BadPath => local_response(StatusCode::BAD_REQUEST, "Bad Request"),
            Refusal::Denied if crate::body::is_grpc(req.headers()) => {
                local_grpc_response(GrpcCode::PERMISSION_DENIED, ACCESS_DENIED)
            }
            Refusal::Denied => local_response(StatusCode::FORBIDDEN, ACCESS_DENIED),
        }
    }
}

/// Normalizes `req`'s path in place, then decides it by `policy`.
fn check<B>(policy: &InboundPolicy, req: &mut Request<B>) -> Result<(), Refusal> {
    let Some(&ConnectInfo {
        local_addr,
        remote_addr,
    }) = req.extensions().get()
    else {
        tracing::debug!("request refused: it carries no connection information");
        return Err(Refusal::Denied);
    };
    normalize(req).map_err(|e| {
        tracing::debug!(error = %e, "request refused");
        Refusal::BadPath
    })?;
    let peer = req.extensions().get::<ClientIdentity>().map(|i| &*i.0);
    if policy.mtls == MtlsMode::Strict && peer.is_none() {
        tracing::debug!(%remote_addr, "request refused: plain text to a STRICT port");
        return Err(Refusal::Denied);
    }
    if policy.rbac.is_empty() {
        return Ok(());
    }
    let authority = match req.uri().authority() {
        Some(a) => a.as_str(),
        None => req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default(),
    };
    let request = AccessRequest {
        method: req.method(),
        authority,
        path_and_query: req.uri().path_and_query().map_or("/", |p| p.as_str()),
        headers: req.headers(),
        destination_port: local_addr.port(),
        peer,
        direct_remote_ip: remote_addr.ip(),
        remote_ip: remote_addr.ip(),
    };
    match authorize(&policy.rbac, &request) {
        Decision::Allow => Ok(()),
        Decision::Deny { policy } => {
            tracing::debug!(
                policy = policy.as_deref().unwrap_or("(no ALLOW policy matched)"),
                peer = peer.unwrap_or("(plain text)"),
                %remote_addr,
                method = %req.method(),
                path = %req.uri().path(),
                "request refused: RBAC: access denied",
            );
            Err(Refusal::Denied)
        }
    }
}

/// Puts `req`'s canonical path in its URI, if it is not already; a
/// `CONNECT`, whose target is an authority, has none.
fn normalize<B>(req: &mut Request<B>) -> Result<(), InvalidPath> {
    if req.method() == http::Method::CONNECT {
        return Ok(());
    }
    let path = req.uri().path();
    let canonical = match normalize_path(path)? {
        std::borrow::Cow::Borrowed(_) => return Ok(()),
        std::borrow::Cow::Owned(p) => p,
    };
    let mut parts = req.uri().clone().into_parts();
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{canonical}?{q}"),
        None => canonical,
    };
    parts.path_and_query = Some(
        path_and_query
            .parse()
            .map_err(|_| InvalidPath::NotAbsolute(path_and_query))?,
    );
    *req.uri_mut() =
        Uri::from_parts(parts).map_err(|_| InvalidPath::NotAbsolute(path.to_owned()))?;
    Ok(())
}
