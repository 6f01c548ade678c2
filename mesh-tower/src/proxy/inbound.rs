//! [`Inbound`]: requests a sidecar takes for its application, forwarded
//! to the application's local port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::HeaderValue;
use http::uri::Scheme;
use mesh_core::policy::ConnectionPolicy;
use tower::Service;

use super::ResponseFuture;
use super::headers::{is_upgrade, strip_hop_by_hop};
use super::outbound::absolute;
use crate::BoxError;
use crate::endpoint::{HttpEndpoint, TcpConnector};
use crate::tls::ClientIdentity;

/// The header the caller's verified identity is passed to the
/// application in, as Envoy's sidecars pass it.
pub const FORWARDED_CLIENT_CERT: http::HeaderName =
    http::HeaderName::from_static("x-forwarded-client-cert");

/// Forwards each request to the application at one address over pooled
/// plain-text connections: HTTP/2 requests as h2c, the rest as HTTP/1.1,
/// the authority as the caller wrote it.
pub struct Inbound<B> {
    app: HttpEndpoint<TcpConnector, B>,
    /// The workload's own SPIFFE id, the `By` of the forwarded identity.
    by: Option<Arc<str>>,
    /// The last caller's identity and its header: a server clones the
    /// service per connection, whose requests all have one caller.
    forwarded: Option<(Arc<str>, HeaderValue)>,
}

impl<B> Clone for Inbound<B> {
    fn clone(&self) -> Self {
        Self {
            app: self.app.clone(),
            by: self.by.clone(),
            forwarded: None,
        }
    }
}

impl<B> std::fmt::Debug for Inbound<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound").field("app", &self.app).finish()
    }
}

impl<B> Inbound<B>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    /// Requests forwarded to the application at `app`; `by`, the
    /// workload's own SPIFFE id, is named as the receiver in
    /// `x-forwarded-client-cert`.
    pub fn new(app: SocketAddr, by: Option<&str>) -> Self {
        let policy = ConnectionPolicy::default();
        let connector = TcpConnector::new(policy.connect_timeout, true);
        Self {
            app: HttpEndpoint::new(app, connector, &policy),
            by: by.map(Arc::from),
            forwarded: None,
        }
    }
}

impl<B> Service<http::Request<B>> for Inbound<B>
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<crate::ResponseBody>;
    type Error = BoxError;
    type Future = ResponseFuture<crate::endpoint::ResponseFuture>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let grpc = crate::body::is_grpc(req.headers());
        let connect = req.method() == http::Method::CONNECT;
        let upgrade = !connect && is_upgrade(req.headers());
        let downstream = (connect || upgrade).then(|| hyper::upgrade::on(&mut req));
        if !connect && let Err(e) = absolute(&mut req, Some(Scheme::HTTP)) {
            return ResponseFuture::local(Box::pin(std::future::ready(Err(e.into()))), grpc);
        }
        strip_hop_by_hop(req.headers_mut(), upgrade);
        self.forward_identity(&mut req);
        ResponseFuture::sent(self.app.send(req), downstream, connect, grpc)
    }
}

impl<B> Inbound<B> {
    /// Replaces whatever `x-forwarded-client-cert` the caller sent with
    /// the identity its certificate proved, if any.
    fn forward_identity(&mut self, req: &mut http::Request<B>) {
        req.headers_mut().remove(FORWARDED_CLIENT_CERT);
        let Some(ClientIdentity(uri)) = req.extensions().get::<ClientIdentity>() else {
            return;
        };
        let value = match &self.forwarded {
            Some((caller, value)) if caller == uri => value.clone(),
            _ => {
                let text = match &self.by {
                    Some(by) => format!("By={by};URI={uri}"),
                    None => format!("URI={uri}"),
                };
                let Ok(value) = HeaderValue::try_from(text) else {
                    return;
                };
                self.forwarded = Some((uri.clone(), value.clone()));
                value
            }
        };
        req.headers_mut().insert(FORWARDED_CLIENT_CERT, value);
    }
}
