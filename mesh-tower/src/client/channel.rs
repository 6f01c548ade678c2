//! [`MeshChannel`]: a [`MeshClient`] bound to one target, for clients that
//! send origin-less URIs, such as a tonic generated client made with
//! `FooClient::new(channel)`.

use std::task::{Context, Poll};

use bytes::Bytes;
use mesh_core::{Authority, InvalidAuthority};
use tower::Service;

use super::{MeshClient, ResponseFuture};
use crate::{BoxError, ResponseBody};

/// A [`MeshClient`] bound to one target: requests whose URI has no authority
/// are sent to it; requests that name an authority go where they say.
///
/// ```no_run
/// # async fn run() -> Result<(), mesh_tower::BoxError> {
/// use mesh_core::StaticResolve;
/// use mesh_tower::MeshClient;
/// use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
///
/// let client = MeshClient::builder(StaticResolve::default()).build();
/// let mut health = HealthClient::new(client.channel("ratings:9080".parse()?));
/// health.check(HealthCheckRequest::default()).await?;
/// # Ok(()) }
/// ```
pub struct MeshChannel<B> {
    client: MeshClient<B>,
    target: Authority,
    /// `target` as a URI authority, made once; `None` only if it cannot be
    /// written as one.
    origin: Option<http::uri::Authority>,
}

impl<B> Clone for MeshChannel<B> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            target: self.target.clone(),
            origin: self.origin.clone(),
        }
    }
}

impl<B> std::fmt::Debug for MeshChannel<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshChannel")
            .field("target", &self.target)
            .finish()
    }
}

impl<B> MeshClient<B> {
    /// This client bound to `target`.
    pub fn channel(&self, target: Authority) -> MeshChannel<B> {
        MeshChannel {
            client: self.clone(),
            origin: target.to_string().parse().ok(),
            target,
        }
    }

    /// This client bound to a target written as gRPC writes one:
    /// `xds:///reviews.default.svc.cluster.local:9080` (a client built
    /// with xDS), `dns:///reviews:9080` (one that is not; port 443 when
    /// none is written, as gRPC's), or a bare authority (port 80 when none
    /// is written). The authority is kept as written: `xds:///echo` is xDS
    /// listener `echo`.
    ///
    /// ```
    /// use mesh_core::StaticResolve;
    /// use mesh_tower::MeshClient;
    ///
    /// let client: MeshClient<String> = MeshClient::builder(StaticResolve::default()).build();
    /// let channel = client.channel_to("dns:///ratings.default.svc.cluster.local")?;
    /// assert_eq!(channel.target().to_string(), "ratings.default.svc.cluster.local:443");
    /// let err = client.channel_to("xds:///ratings:9080").unwrap_err();
    /// assert!(err.to_string().contains("a client built with xDS"));
    /// # Ok::<(), mesh_tower::client::InvalidTarget>(())
    /// ```
    pub fn channel_to(&self, target: &str) -> Result<MeshChannel<B>, InvalidTarget> {
        let xds = self.is_xds();
        let (written, default_port) = match target.split_once(":///") {
            Some(("xds", rest)) if xds => (rest, 80),
            Some(("dns", rest)) if !xds => (rest, 443),
            Some((scheme, _)) => {
                return Err(InvalidTarget::Scheme {
                    target: target.to_owned(),
                    scheme: scheme.to_owned(),
                    xds,
                });
            }
            None => (target, 80),
        };
        Ok(MeshChannel {
            client: self.clone(),
            target: Authority::parse_with_default_port(written, default_port)?,
            origin: written.parse().ok(),
        })
    }
}

/// A target [`MeshClient::channel_to`] cannot use.
#[derive(Debug, thiserror::Error)]
pub enum InvalidTarget {
    /// Its authority is not one.
    #[error(transparent)]
    Authority(#[from] InvalidAuthority),
    /// Its scheme is not the client's kind of discovery.
    #[error("{target}: {}", scheme_reason(scheme, *xds))]
    Scheme {
        /// The target as given.
        target: String,
        /// Its scheme.
        scheme: String,
        /// Whether the client was built with xDS.
        xds: bool,
    },
}

fn scheme_reason(scheme: &str, xds: bool) -> String {
    match (scheme, xds) {
        ("xds", false) => "an xds:/// target needs a client built with xDS".into(),
        ("dns", true) => "this client takes its endpoints from xDS: write xds:///".into(),
        (other, _) => format!("unknown scheme {other:?}: xds:/// or dns:///"),
    }
}

impl<B> MeshChannel<B> {
    /// The target requests without an authority go to.
    pub fn target(&self) -> &Authority {
        &self.target
    }
}

impl<B> Service<http::Request<B>> for MeshChannel<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<ResponseBody>;
    type Error = BoxError;
    type Future = ResponseFuture<B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.client.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if req.uri().authority().is_some() {
            return self.client.call(req);
        }
        let mut parts = std::mem::take(req.uri_mut()).into_parts();
        parts.scheme = Some(http::uri::Scheme::HTTP);
        parts.authority = self.origin.clone();
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        match http::Uri::from_parts(parts) {
            Ok(uri) => *req.uri_mut() = uri,
            Err(e) => {
                let e = format!("cannot address a request to {}: {e}", self.target);
                return ResponseFuture::failed(e.into());
            }
        }
        // The target is known: no need to parse it back out of the URI.
        self.client.send(req, |_| Ok(self.target.clone()))
    }
}
