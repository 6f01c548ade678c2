//! [`MeshClient`]: one `tower::Service<http::Request<B>>` that gives a hyper
//! or tonic client discovery, load balancing, retries, timeouts, outlier
//! detection and circuit breaking.
//!
//! The target of a request is its URI's authority (`http://reviews:9080/…`
//! → `reviews:9080`; the scheme's port when none is written), resolved
//! through the client's [`Resolve`]: a static list, DNS (`mesh-dns`) or xDS.
//! Each target gets a cluster stack of its own on first use, built from its
//! [`ClusterPolicy`]:
//!
//! ```text
//! request ─▶ timeout ─▶ retry ─▶ circuit ─▶ balance ─▶ outlier ─▶ endpoint
//!            (whole)    (per try, budget)   (P2C…)    (eject)    (pool)
//! ```
//!
//! Stacks are held in a map that requests read without locks; a new target
//! copies the map once. A stack unused for 5 minutes is dropped when a new
//! target arrives, and at most 10,000 are kept (least recently used go
//! first), so requests to ever-new authorities cannot grow the client
//! without bound (see [`MeshClientBuilder::cluster_idle_timeout`] and
//! [`MeshClientBuilder::max_clusters`]). Per-request layers (metrics, tracing) belong around
//! the cluster stack, per-attempt ones around each endpoint's service.
//!
//! It works where a `hyper_util::client::legacy::Client` is used, and as the
//! transport of a tonic generated client:
//!
//! ```no_run
//! # async fn run() -> Result<(), mesh_tower::BoxError> {
//! use mesh_core::StaticResolve;
//! use mesh_tower::MeshClient;
//! use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
//!
//! let client = MeshClient::builder(StaticResolve::default()).build();
//! let mut health = HealthClient::with_origin(client.clone(), "http://ratings:9080".parse()?);
//! let status = health.check(HealthCheckRequest { service: String::new() }).await?;
//! // Or bound to one target, for `FooClient::new`:
//! let mut health = HealthClient::new(client.channel("ratings:9080".parse()?));
//! # Ok(()) }
//! ```

mod builder;
mod cache;
mod channel;
mod future;

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::Incoming;
use mesh_core::policy::ClusterPolicy;
use mesh_core::{Authority, Endpoint, Resolve};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceBuilder};

pub use builder::MeshClientBuilder;
use cache::{CacheLimits, ClusterCache};
pub use channel::MeshChannel;
pub use future::ResponseFuture;

use crate::BoxError;
use crate::balance::Balance;
use crate::circuit::{CircuitBreakerLayer, Limits};
use crate::outlier::{OutlierDetector, OutlierLayer};
use crate::retry::{ReplayBody, RetryLayer};
use crate::timeout::TimeoutLayer;

/// One cluster's whole stack.
type ClusterService<B> = BoxCloneSyncService<http::Request<B>, http::Response<Incoming>, BoxError>;

/// One endpoint's service, as the balancer holds it.
pub type EndpointService<B> =
    BoxCloneSyncService<http::Request<ReplayBody<B>>, http::Response<Incoming>, BoxError>;

/// Builds an endpoint's service from the endpoint and the cluster's policy.
type NewEndpoint<B> = Arc<dyn Fn(&Endpoint, &ClusterPolicy) -> EndpointService<B> + Send + Sync>;

/// A client that routes each request through the mesh. Cheap to clone; clones
/// share clusters, connections and budgets.
pub struct MeshClient<B> {
    shared: Arc<Shared<B>>,
}

impl<B> Clone for MeshClient<B> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<B> std::fmt::Debug for MeshClient<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let clusters: Vec<String> = self
            .shared
            .clusters
            .targets()
            .iter()
            .map(ToString::to_string)
            .collect();
        f.debug_struct("MeshClient")
            .field("clusters", &clusters)
            .finish()
    }
}

struct Shared<B> {
    resolve: Arc<dyn Resolve>,
    default_policy: ClusterPolicy,
    policies: HashMap<Authority, ClusterPolicy>,
    new_endpoint: NewEndpoint<B>,
    clusters: ClusterCache<ClusterService<B>>,
}

impl MeshClient<()> {
    /// A builder resolving targets through `resolve`. The request body type
    /// is chosen by [`MeshClientBuilder::build`].
    pub fn builder(resolve: impl Resolve) -> MeshClientBuilder {
        MeshClientBuilder::new(Arc::new(resolve))
    }
}

impl<B> MeshClient<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    /// The cluster stack of `target`, built on first use.
    fn cluster(&self, target: &Authority) -> ClusterService<B> {
        self.shared.clusters.get_or_build(target, || {
            let policy = self
                .shared
                .policies
                .get(target)
                .unwrap_or(&self.shared.default_policy);
            self.build_cluster(target, policy)
        })
    }

    fn build_cluster(&self, target: &Authority, policy: &ClusterPolicy) -> ClusterService<B> {
        let detector = OutlierDetector::new(policy.outlier);
        let new_endpoint = {
            let detector = detector.clone();
            let make = self.shared.new_endpoint.clone();
            let policy = policy.clone();
            move |endpoint: Endpoint| {
                OutlierLayer::new(detector.clone(), endpoint.addr).layer(make(&endpoint, &policy))
            }
        };
        let balance = Balance::new(
            self.shared.resolve.resolve(target),
            new_endpoint,
            policy.load_balancer,
            Some(detector),
        );
        let stack = ServiceBuilder::new()
            .layer(TimeoutLayer::new(policy.timeout))
            .layer(RetryLayer::new(policy.retry.clone()))
            .layer(CircuitBreakerLayer::new(Limits::new(
                policy.circuit_breakers,
            )))
            .service(balance);
        BoxCloneSyncService::new(stack)
    }
}

impl<B> Service<http::Request<B>> for MeshClient<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<crate::ResponseBody>;
    type Error = BoxError;
    type Future = ResponseFuture<B>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match Authority::from_uri(req.uri()) {
            Ok(target) => self.send(&target, req),
            Err(e) => ResponseFuture::failed(e.into()),
        }
    }
}

impl<B> MeshClient<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    /// Sends `req` through the cluster of `target`.
    fn send(&self, target: &Authority, req: http::Request<B>) -> ResponseFuture<B> {
        ResponseFuture::new(tower::ServiceExt::oneshot(self.cluster(target), req))
    }
}
