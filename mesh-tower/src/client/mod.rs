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
//! A client given a [`MeshConfig`] ([`MeshClientBuilder::config`],
//! [`MeshClient::set_config`]) routes first: the route, rate-limit, fault,
//! split and mirror layers pick a configured cluster, whose stack is built
//! for the request's port from the cluster's service, subset and policy.
//! Authorities no virtual host serves go to their own cluster as above,
//! unless the client is [`registry_only`](MeshClientBuilder::registry_only).
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
mod dispatch;
mod future;
mod subset;
#[cfg(feature = "xds")]
mod xds;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::Incoming;
use mesh_core::policy::ClusterPolicy;
use mesh_core::route::ClusterName;
use mesh_core::{Authority, Endpoint, InvalidAuthority, MeshConfig, Resolution, Resolve};

use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceBuilder};

pub use builder::MeshClientBuilder;
use cache::{CacheLimits, ClusterCache};
pub use channel::{InvalidTarget, MeshChannel};
pub use dispatch::UndefinedCluster;
use future::ClusterFuture;
pub use future::ResponseFuture;
#[cfg(feature = "xds")]
pub use xds::{TARGET_WAIT, XdsTargetError};

use crate::balance::Balance;
use crate::circuit::{CircuitBreakerLayer, Limits};
use crate::endpoint::{TlsRefusals, TlsRequired};
use crate::fault::Fault;
use crate::mirror::Mirror;
use crate::outlier::{OutlierDetector, OutlierLayer};
use crate::rate_limit::{RateLimit, RateLimitLayer};
use crate::retry::{ReplayBody, RetryLayer};
use crate::route::{Route, SharedConfig};
use crate::split::Split;
use crate::timeout::TimeoutLayer;
use crate::{BoxError, RequestBody, ResponseBody};
use dispatch::Dispatch;

/// One cluster's whole stack.
type ClusterService<B> =
    BoxCloneSyncService<http::Request<RequestBody<B>>, http::Response<ResponseBody>, BoxError>;

/// The route layers and dispatch, for a client with a configuration. Not
/// boxed: cloning it per request costs reference counts, not an allocation.
type RoutedService<B> = Route<RateLimit<Fault<Split<Mirror<Dispatch<B>>>>>>;

/// One endpoint's service, as the balancer holds it.
pub type EndpointService<B> = BoxCloneSyncService<
    http::Request<ReplayBody<RequestBody<B>>>,
    http::Response<Incoming>,
    BoxError,
>;

/// Builds an endpoint's service from the endpoint and the cluster's policy.
type NewEndpoint<B> = Arc<dyn Fn(&Endpoint, &ClusterPolicy) -> EndpointService<B> + Send + Sync>;

/// What a cluster stack is kept by: a request authority (unrouted), or a
/// configured cluster and the port of the service requests to it reach
/// (`None` for a named endpoint set, whose endpoints carry their ports).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum ClusterKey {
    Target(Authority),
    Named(ClusterName, Option<u16>),
}

impl fmt::Display for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterKey::Target(t) => t.fmt(f),
            ClusterKey::Named(name, Some(port)) => write!(f, "{name} (port {port})"),
            ClusterKey::Named(name, None) => name.fmt(f),
        }
    }
}

/// A client that routes each request through the mesh. Cheap to clone;
/// clones share clusters, connections, budgets and configuration.
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
    clusters: ClusterCache<ClusterKey, ClusterService<B>>,
    config: SharedConfig,
    /// Whether requests are routed by `config` (one was given).
    routing: AtomicBool,
    /// The most entries a ring-hash balancer builds.
    ring_size_cap: u64,
    /// Requests refused for want of TLS, by cluster.
    tls_refusals: TlsRefusals,
    /// Held while the configuration is replaced.
    update: std::sync::Mutex<()>,
    routed: RoutedService<B>,
    /// The ADS client the configuration comes from, if any.
    #[cfg(feature = "xds")]
    xds: Option<xds::Xds>,
}

impl MeshClient<()> {
    /// A builder resolving targets through `resolve`. The request body type
    /// is chosen by [`MeshClientBuilder::build`].
    pub fn builder(resolve: impl Resolve) -> MeshClientBuilder {
        MeshClientBuilder::new(Arc::new(resolve))
    }
}

impl<B> MeshClient<B> {
    /// Whether the client was built with xDS.
    fn is_xds(&self) -> bool {
        #[cfg(feature = "xds")]
        return self.shared.xds.is_some();
        #[cfg(not(feature = "xds"))]
        false
    }

    /// How many requests each cluster refused because its endpoints need
    /// TLS, which this client does not dial yet (they are never sent in
    /// plain text; the first of each cluster is logged).
    pub fn tls_refusals(&self) -> std::collections::BTreeMap<String, u64> {
        self.shared.tls_refusals.counts()
    }

    /// The configuration requests are routed by.
    pub fn config(&self) -> Arc<MeshConfig> {
        self.shared.config.load()
    }

    /// Routes the next requests by `config`. Clusters whose definition
    /// changed are rebuilt on their next request; the others keep their
    /// connections, balancer state and budgets.
    pub fn set_config(&self, config: MeshConfig) {
        let _one_at_a_time = self.shared.update.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.shared.config.load();
        self.shared.config.store(config);
        let new = self.shared.config.load();
        // Clusters are built from the definition current when they are
        // built (see `named_cluster`), so after the store only clusters
        // built before it can be stale, and they are dropped here.
        self.shared.clusters.retain(|key| match key {
            ClusterKey::Named(name, _) => old.cluster(name) == new.cluster(name),
            ClusterKey::Target(_) => true,
        });
        self.shared.routing.store(true, Ordering::Release);
    }
}

impl<B> MeshClient<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    /// The cluster stack of an unrouted request's authority.
    fn target_cluster(&self, target: &Authority) -> ClusterService<B> {
        let key = ClusterKey::Target(target.clone());
        self.shared.clusters.get_or_build(&key, || {
            let policy = self.shared.policies.get(target);
            let policy = policy.unwrap_or(&self.shared.default_policy);
            self.build_cluster(
                &target.to_string(),
                self.shared.resolve.resolve(target),
                policy,
            )
        })
    }

    /// The stack of the cluster `name`: its endpoints from `resolution`,
    /// each reached as `policy` says; one that needs TLS refuses its
    /// requests ([`TlsRequired`]).
    fn build_cluster(
        &self,
        name: &str,
        resolution: Resolution,
        policy: &ClusterPolicy,
    ) -> ClusterService<B> {
        let detector = OutlierDetector::new(policy.outlier);
        let new_endpoint = {
            let detector = detector.clone();
            let make = self.shared.new_endpoint.clone();
            let policy = policy.clone();
            let refusing = TlsRequired::new(name, &self.shared.tls_refusals);
            move |endpoint: Endpoint| {
                let service = match policy.tls_for(&endpoint.labels) {
                    Some(_) => BoxCloneSyncService::new(refusing.clone()),
                    None => make(&endpoint, &policy),
                };
                OutlierLayer::new(detector.clone(), endpoint.addr).layer(service)
            }
        };
        let balance = Balance::new(
            resolution,
            new_endpoint,
            policy
                .load_balancer
                .with_ring_size_cap(self.shared.ring_size_cap),
            Some(detector),
        );
        let stack = ServiceBuilder::new()
            .option_layer(policy.rate_limit.clone().map(RateLimitLayer::new))
            .map_response(|res: http::Response<Incoming>| res.map(ResponseBody::from))
            .layer(TimeoutLayer::new(policy.timeout))
            .layer(RetryLayer::new(policy.retry.clone()))
            .layer(CircuitBreakerLayer::new(Limits::new(
                policy.circuit_breakers,
            )))
            .service(balance);
        BoxCloneSyncService::new(stack)
    }
}

#[cfg(feature = "xds")]
impl<B> MeshClient<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    /// For a request to a target the xDS configuration does not route
    /// yet: what sends it once it does.
    fn new_xds_target(
        &self,
        req: &http::Request<B>,
    ) -> Option<impl FnOnce(http::Request<B>) -> ResponseFuture<B> + use<B>> {
        let xds = self.shared.xds.as_ref()?;
        let target = req.uri().authority()?.as_str();
        if xds.touch(target) && self.shared.config.has_listener(target) {
            return None;
        }
        let target = target.to_owned();
        let shared = self.shared.clone();
        Some(move |req| {
            ResponseFuture::waiting(Box::pin(async move {
                xds::Xds::ready(&shared, &target).await?;
                tower::ServiceExt::oneshot(shared.routed.clone(), req).await
            }))
        })
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
        self.send(req, |req| Authority::from_uri(req.uri()))
    }
}

impl<B> MeshClient<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    /// Sends `req`: through the routes when there is a configuration, else
    /// straight to the cluster of its `target`.
    fn send(
        &self,
        req: http::Request<B>,
        target: impl FnOnce(&http::Request<B>) -> Result<Authority, InvalidAuthority>,
    ) -> ResponseFuture<B> {
        if self.shared.routing.load(Ordering::Acquire) {
            #[cfg(feature = "xds")]
            if let Some(waiting) = self.new_xds_target(&req) {
                return waiting(req);
            }
            return ResponseFuture::routed(self.shared.routed.clone(), req);
        }
        ResponseFuture::cluster(match target(&req) {
            Ok(target) => {
                ClusterFuture::new(self.target_cluster(&target), req.map(RequestBody::new))
            }
            Err(e) => ClusterFuture::failed(e.into()),
        })
    }
}
