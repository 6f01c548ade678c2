//! [`MeshClient`]: one `tower::Service<http::Request<B>>` that gives a hyper
//! or tonic client discovery, load balancing, retries, timeouts, outlier
//! detection and circuit breaking.
//!
//! The target of a request is its URI's authority (`http://reviews:9080/…`
//! → `reviews:9080`; the scheme's port when none is written), resolved
//! through the client's [`Resolve`]: a static list, DNS (`mesh-dns`) or xDS.
//! Each target gets a cluster stack of its own on first use, built from its
//! [`ClusterPolicy`](mesh_core::policy::ClusterPolicy):
//!
//! ```text
//! request ─▶ timeout ─▶ retry ─▶ circuit ─▶ balance ─▶ outlier ─▶ endpoint
//!            (whole)    (per try, budget)   (P2C…)    (eject)    (pool)
//! ```
//!
//! A client given a [`MeshConfig`] ([`MeshClientBuilder::config`],
//! [`MeshClient::set_config`]) routes first. When a configuration is
//! applied, every route gets a prebuilt stack with its policies bound in
//! (see `stack.rs`): the [`route`](crate::route) head matches a request
//! and calls its route's stack, which ends in the
//! [`cluster`](crate::cluster) layer, where each configured cluster's
//! stack is built for the request's port from the cluster's service,
//! subset and policy. Authorities no virtual host serves go to their own
//! cluster as above, unless the client is
//! [`registry_only`](MeshClientBuilder::registry_only).
//!
//! ```text
//! MeshClient ─▶ route ─▶ [route's stack: rate_limit ─▶ fault ─▶ mirror ─▶ split]
//!            ─▶ cluster ─▶ timeout ─▶ retry ─▶ circuit ─▶ balance ─▶ outlier ─▶ endpoint
//! ```
//!
//! Nothing calls back into the client: a request does one load of the
//! routes, one route lookup and one call into a prebuilt stack. Cluster
//! stacks are held in a map that requests read without locks; a stack
//! unused for 5 minutes is dropped when a new one arrives, and at most
//! 10,000 are kept (least recently used go first), so requests to
//! ever-new authorities cannot grow the client without bound (see
//! [`MeshClientBuilder::cluster_idle_timeout`] and
//! [`MeshClientBuilder::max_clusters`]). Per-request layers (metrics,
//! tracing) belong around the client, per-attempt ones around the
//! cluster's core, the service each retry attempt calls (see
//! [`cluster`](crate::cluster)).
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
mod channel;
mod future;
mod stack;
mod status;
#[cfg(feature = "xds")]
mod xds;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use mesh_core::{Authority, InvalidAuthority, MeshConfig, Resolve};
use tower::Service;

pub use builder::MeshClientBuilder;
pub use channel::{InvalidTarget, MeshChannel};
pub use future::ResponseFuture;
pub(crate) use status::ClientReader;
pub use status::{ClientStatus, ClusterStatus};
#[cfg(feature = "xds")]
pub use xds::{TARGET_WAIT, XdsTargetError};

pub use crate::cluster::{EndpointService, UndefinedCluster};
use crate::rate_limit::RateLimiter;
use crate::route::{Route, RouteKey, SharedConfig};
use crate::{BoxError, RequestBody};
use stack::{RouteService, Stacks};

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
            .stacks
            .clusters
            .keys()
            .iter()
            .map(ToString::to_string)
            .collect();
        f.debug_struct("MeshClient")
            .field("clusters", &clusters)
            .finish()
    }
}

struct Shared<B> {
    config: SharedConfig,
    /// Whether requests are routed by `config` (one was given).
    routing: AtomicBool,
    /// What route stacks are made of.
    stacks: Stacks<B>,
    /// The head of the routed path.
    route: Route<RouteService<B>>,
    /// The rate limiters of the routes now, by route.
    update: std::sync::Mutex<HashMap<RouteKey, Arc<RateLimiter>>>,
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
        self.shared.stacks.clusters.tls_refusals().counts()
    }

    /// What the client holds now: its clusters with their endpoints and
    /// counters, and its routes' rate limits.
    pub fn status(&self) -> ClientStatus {
        let route_rate_limited = self
            .shared
            .update
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(key, limiter)| {
                let listener = key.listener.as_deref().unwrap_or("-");
                let id = key.id;
                let route = format!("{listener}/{}/{}", id.virtual_host, id.route);
                (route, limiter.limited())
            })
            .collect();
        ClientStatus {
            clusters: self.shared.stacks.clusters.status(),
            route_rate_limited,
            tls_refusals: self.tls_refusals(),
        }
    }

    /// The configuration requests are routed by.
    pub fn config(&self) -> Arc<MeshConfig> {
        self.shared.config.load()
    }
}

impl<B> MeshClient<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    /// Routes the next requests by `config`: every route's stack is built
    /// now, except those of a listener whose table and clusters are the
    /// ones the configuration before had (the same values, as
    /// [`MeshConfig::after`] and xDS updates share them), which are kept.
    /// Clusters whose definition changed are rebuilt on their next
    /// request; the others keep their connections, balancer state and
    /// budgets, and routes whose rate limit stayed keep their buckets.
    pub fn set_config(&self, config: MeshConfig) {
        let mut limiters = self.shared.update.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.shared.config.load();
        let config = Arc::new(config);
        let previous = self.shared.route.routes().load();
        let (routes, kept) = self
            .shared
            .stacks
            .routes(config.clone(), Some(&previous), &limiters);
        *limiters = kept;
        // Routes first: a request that sees the new configuration (an xDS
        // target now routed) must find its routes.
        self.shared.route.routes().store(routes);
        self.shared.config.store(config.clone());
        // Clusters are built from the definition current when they are
        // built, so after the store only those built before it can be
        // stale, and they are dropped here.
        self.shared.stacks.clusters.configured(&old, &config);
        self.shared.routing.store(true, Ordering::Release);
    }
}

#[cfg(feature = "xds")]
impl<B> MeshClient<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    /// Waits until the xDS configuration routes `target` (an authority
    /// as a request writes it, or a route table's name as a
    /// [`RouteListener`](crate::route::RouteListener) gives it),
    /// subscribing to it now rather than at its first request; at once
    /// for a client without xDS. Fails as that first request would: the
    /// control plane says it does not exist, or sends only rejected
    /// copies, or nothing came within [`TARGET_WAIT`].
    pub async fn ready(&self, target: &str) -> Result<(), XdsTargetError> {
        xds::Xds::ready(&self.shared, target).await
    }

    /// For a request to a target the xDS configuration does not route
    /// yet: what sends it once it does.
    fn new_xds_target(
        &self,
        req: &http::Request<B>,
    ) -> Option<impl FnOnce(http::Request<B>) -> ResponseFuture<B> + use<B>> {
        let xds = self.shared.xds.as_ref()?;
        // A request routed by a named table (a gateway server's) is for
        // the listener of that name.
        let target = match req.extensions().get::<crate::route::RouteListener>() {
            Some(listener) => &*listener.0,
            None => req.uri().authority()?.as_str(),
        };
        if xds.touch(target) && self.shared.config.has_listener(target) {
            return None;
        }
        let target = target.to_owned();
        let shared = self.shared.clone();
        Some(move |req| {
            ResponseFuture::waiting(Box::pin(async move {
                xds::Xds::ready(&shared, &target).await?;
                shared.route.route(req).await
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
            return ResponseFuture::routed(self.shared.route.route(req));
        }
        match target(&req) {
            Ok(target) => {
                let https = crate::cluster::is_https(req.uri());
                let cluster = self.shared.stacks.clusters.target(&target, https);
                ResponseFuture::cluster(cluster.call(req.map(RequestBody::new), None, None, None))
            }
            Err(e) => ResponseFuture::failed(e.into()),
        }
    }
}
