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
    /// `xds:///reviews.default.svc.cluster.local:9080`,
    /// `dns:///reviews:9080`, or a bare authority. The authority is kept as
    /// written (`xds:///echo` is xDS listener `echo`), and takes port 80
    /// where it has none.
    ///
    /// ```
    /// use mesh_core::StaticResolve;
    /// use mesh_tower::MeshClient;
    ///
    /// let client: MeshClient<String> = MeshClient::builder(StaticResolve::default()).build();
    /// let channel = client.channel_to("xds:///ratings.default.svc.cluster.local:9080")?;
    /// assert_eq!(channel.target().to_string(), "ratings.default.svc.cluster.local:9080");
    /// assert!(client.channel_to("xds:///").is_err());
    /// # Ok::<(), mesh_core::InvalidAuthority>(())
    /// ```
    pub fn channel_to(&self, target: &str) -> Result<MeshChannel<B>, InvalidAuthority> {
        let written = ["xds:///", "dns:///"]
            .iter()
            .find_map(|scheme| target.strip_prefix(scheme))
            .unwrap_or(target);
        Ok(MeshChannel {
            client: self.clone(),
            target: Authority::parse_with_default_port(written, 80)?,
            origin: written.parse().ok(),
        })
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
                return ResponseFuture::cluster(super::ClusterFuture::failed(e.into()));
            }
        }
        // The target is known: no need to parse it back out of the URI.
        self.client.send(req, |_| Ok(self.target.clone()))
    }
}
