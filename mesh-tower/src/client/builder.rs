use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper_util::client::legacy::connect::Connection;
use mesh_core::policy::{ClusterPolicy, ConnectionPolicy, RingHash, UpstreamTls};
use mesh_core::telemetry::WorkloadMetadata;
use mesh_core::{Authority, Endpoint, MeshConfig, Resolve};
use std::sync::atomic::AtomicBool;

use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

use super::{MeshClient, Shared, Stacks};
use crate::cluster::{
    CacheLimits, ClusterParts, Clusters, EndpointService, NewEndpoint, ToCluster,
};
use crate::endpoint::{HttpEndpoint, TcpConnector};
use crate::fault::FaultLayer;
use crate::metadata_exchange::{self, MetadataExchangeLayer, Side};
use crate::mirror::MirrorLayer;
use crate::retry::ReplayBody;
use crate::route::{Route, SharedConfig, SharedRoutes};
use crate::split::SplitLayer;
#[cfg(doc)]
use crate::tls::WorkloadIdentity;
use crate::tls::{IdentitySource, MeshTlsConnector};
use crate::trace::TraceLayer;
use crate::{BoxError, RequestBody};

/// Builds a [`MeshClient`].
///
/// ```
/// use std::time::Duration;
/// use mesh_core::{ClusterPolicy, StaticResolve};
/// use mesh_tower::MeshClient;
///
/// let client: MeshClient<http_body_util::Empty<bytes::Bytes>> = MeshClient::builder(StaticResolve::default())
///     .policy(ClusterPolicy { timeout: Some(Duration::from_secs(3)), ..Default::default() })
///     .build();
/// ```
pub struct MeshClientBuilder<C = TcpConnector> {
    resolve: Arc<dyn Resolve>,
    default_policy: ClusterPolicy,
    policies: HashMap<Authority, ClusterPolicy>,
    connector: MakeConnector<C>,
    cache: CacheLimits,
    config: Option<MeshConfig>,
    seed: Option<u64>,
    ring_size_cap: u64,
    registry_only: bool,
    identity: Option<IdentitySource>,
    metadata: Option<MetadataExchangeLayer>,
    attempts: Option<TraceLayer>,
    #[cfg(feature = "xds")]
    xds: Option<mesh_xds::ads::AdsHandle>,
}

/// Each attempt sent to `endpoint`, through `trace` when given.
fn attempt_service<C, B>(
    endpoint: HttpEndpoint<C, ReplayBody<RequestBody<B>>>,
    trace: Option<&TraceLayer>,
) -> EndpointService<B>
where
    C: Service<SocketAddr> + Clone + Send + Sync + 'static,
    C::Response: hyper::rt::Read + hyper::rt::Write + Connection + Unpin + Send + 'static,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    match trace {
        None => EndpointService::new(move |req| endpoint.send(req)),
        Some(trace) => {
            let traced = trace.layer(endpoint);
            EndpointService::new(move |req| Box::pin(traced.clone().oneshot(req)))
        }
    }
}

/// Why a client without a workload identity cannot dial the mesh's mutual
/// TLS.
const NO_IDENTITY: &str = "this client has no workload identity to dial it with \
    (MeshClientBuilder::identity, or the xDS bootstrap's certificate provider `default`)";

/// Makes the connector for a cluster's connection policy.
type MakeConnector<C> = Arc<dyn Fn(&ConnectionPolicy) -> C + Send + Sync>;

impl std::fmt::Debug for MeshClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshClientBuilder")
            .field("default_policy", &self.default_policy)
            .field("policies", &self.policies)
            .finish_non_exhaustive()
    }
}

impl MeshClientBuilder {
    pub(super) fn new(resolve: Arc<dyn Resolve>) -> Self {
        Self {
            resolve,
            default_policy: ClusterPolicy::default(),
            policies: HashMap::new(),
            connector: Arc::new(|p: &ConnectionPolicy| {
                TcpConnector::new(p.connect_timeout, p.tcp_nodelay)
            }),
            cache: CacheLimits::default(),
            config: None,
            seed: None,
            ring_size_cap: RingHash::DEFAULT_SIZE_CAP,
            registry_only: false,
            identity: None,
            metadata: None,
            attempts: None,
            #[cfg(feature = "xds")]
            xds: None,
        }
    }
}

impl<C> MeshClientBuilder<C> {
    /// The policy of every target without one of its own.
    pub fn policy(mut self, policy: ClusterPolicy) -> Self {
        self.default_policy = policy;
        self
    }

    /// The workload identity the client presents where a cluster asks for
    /// the mesh's mutual TLS (an [`UpstreamTls`] without files of its own:
    /// a DestinationRule's `ISTIO_MUTUAL`, an xDS `UpstreamTlsContext`
    /// from a certificate provider, or code), checking each server's
    /// SPIFFE id against the cluster's expected ones. Without one, such
    /// requests fail; none is ever sent in plain text. (TLS with files of
    /// the cluster's own, `SIMPLE` and `MUTUAL`, needs no identity.)
    ///
    /// A [`WorkloadIdentity`] is used as it is; an [`IdentitySource`]
    /// made from files ([`IdentitySource::from_files`], then `watch`ed)
    /// gives new handshakes the certificate of the moment as it rotates.
    pub fn identity(mut self, identity: impl Into<IdentitySource>) -> Self {
        self.identity = Some(identity.into());
        self
    }

    /// Tells the servers of the clusters this client is configured with
    /// (by routes, xDS, or [`cluster_policy`](Self::cluster_policy)) who
    /// it is, as Istio's sidecars do ([`metadata_exchange`]), and reads
    /// theirs from their responses (a
    /// [`PeerMetadata`](crate::metadata_exchange::PeerMetadata) response
    /// extension, which [`IstioMetricsLayer`](crate::metrics::IstioMetricsLayer)
    /// labels `destination_*` with). An unconfigured target outside the
    /// mesh is told nothing.
    pub fn metadata(mut self, workload: &WorkloadMetadata) -> Self {
        let id = metadata_exchange::node_id(workload);
        self.metadata = Some(MetadataExchangeLayer::new(Side::Client, workload, id));
        self
    }

    /// A client span for each attempt (`trace`, a
    /// [`TraceLayer::client`]), so that retries show as sibling spans
    /// under the request's span (a [`TraceLayer::client`] around the
    /// client, or the context a handler [`propagate`](crate::trace::propagate)d);
    /// each carries the endpoint it went to.
    pub fn trace_attempts(mut self, trace: TraceLayer) -> Self {
        self.attempts = Some(trace);
        self
    }

    /// The policy of one target.
    pub fn cluster_policy(mut self, target: Authority, policy: ClusterPolicy) -> Self {
        self.policies.insert(target, policy);
        self
    }

    /// How long a target's cluster (its connections, balancer state and
    /// discovery), and with xDS the target's subscription, is kept unused
    /// before it is dropped; whole seconds, at least one. Default 5
    /// minutes.
    pub fn cluster_idle_timeout(mut self, idle: Duration) -> Self {
        self.cache.idle_timeout = idle;
        self
    }

    /// The most target clusters kept at once; a new target beyond it drops
    /// the least recently used. Default 10,000.
    pub fn max_clusters(mut self, max: usize) -> Self {
        self.cache.max_clusters = max;
        self
    }

    /// Routes requests by `config`: its route table picks each request's
    /// cluster, and its clusters' policies replace [`policy`](Self::policy)
    /// and [`cluster_policy`](Self::cluster_policy) for them. Replace it
    /// later with [`MeshClient::set_config`].
    pub fn config(mut self, config: MeshConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Answers requests to authorities no virtual host serves with `404`,
    /// as Istio's `outboundTrafficPolicy: REGISTRY_ONLY`. By default they go
    /// to the authority's own cluster (`ALLOW_ANY`).
    pub fn registry_only(mut self, registry_only: bool) -> Self {
        self.registry_only = registry_only;
        self
    }

    /// Fixes the draws of weighted splits, faults and mirrors, so a run is
    /// repeatable (tests checking ratios). Random by default.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The most entries a ring-hash balancer builds, whatever its policy
    /// and its endpoints' weights ask: gRPC's `ring_size_cap` (gRFC A42).
    /// Default [`RingHash::DEFAULT_SIZE_CAP`] (4,096); at most
    /// [`RingHash::MAX_RING_SIZE`].
    pub fn ring_size_cap(mut self, cap: u64) -> Self {
        self.ring_size_cap = cap;
        self
    }

    /// Takes routes, clusters and endpoints from the control plane `ads`
    /// talks to (feature `xds`): each authority requests are sent to is an
    /// xDS target, `xds:///AUTHORITY`, whose listener is subscribed to on
    /// the first request, which waits for it. Clusters' endpoints come
    /// from xDS; the resolver given to [`MeshClient::builder`] still
    /// answers LOGICAL_DNS clusters. Replaces [`config`](Self::config);
    /// authorities no virtual host serves get `404`, as with
    /// [`registry_only`](Self::registry_only). [`build`](Self::build) must
    /// then be called within a Tokio runtime.
    #[cfg(feature = "xds")]
    pub fn xds(mut self, ads: mesh_xds::ads::AdsHandle) -> Self {
        self.xds = Some(ads);
        self
    }

    /// Connections are made by `connector` (any `Service<SocketAddr>`
    /// returning an I/O stream) instead of plain TCP; the cluster policy's
    /// connect timeout then is the connector's to apply.
    pub fn connector<C2>(self, connector: C2) -> MeshClientBuilder<C2>
    where
        C2: Clone + Send + Sync + 'static,
    {
        MeshClientBuilder {
            resolve: self.resolve,
            default_policy: self.default_policy,
            policies: self.policies,
            connector: Arc::new(move |_: &ConnectionPolicy| connector.clone()),
            cache: self.cache,
            config: self.config,
            seed: self.seed,
            ring_size_cap: self.ring_size_cap,
            registry_only: self.registry_only,
            identity: self.identity,
            metadata: self.metadata,
            attempts: self.attempts,
            #[cfg(feature = "xds")]
            xds: self.xds,
        }
    }

    /// The client.
    pub fn build<B>(self) -> MeshClient<B>
    where
        C: Service<SocketAddr> + Clone + Send + Sync + 'static,
        C::Response: hyper::rt::Read + hyper::rt::Write + Connection + Unpin + Send + 'static,
        C::Future: Send + 'static,
        C::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let connector = self.connector;
        #[cfg(feature = "xds")]
        let identity = match (self.identity, &self.xds) {
            (None, Some(ads)) => match crate::tls::bootstrap_identity(ads.bootstrap()) {
                Some(identity) => identity.map_err(Arc::from),
                None => Err(Arc::from(NO_IDENTITY)),
            },
            (identity, _) => identity.ok_or_else(|| Arc::from(NO_IDENTITY)),
        };
        #[cfg(not(feature = "xds"))]
        let identity: Result<IdentitySource, Arc<str>> =
            self.identity.ok_or_else(|| Arc::from(NO_IDENTITY));
        let attempts = self.attempts;
        let new_endpoint: NewEndpoint<B> = Arc::new(
            move |endpoint: &Endpoint, policy: &ClusterPolicy, tls: Option<&UpstreamTls>| {
                let connection = &policy.connection;
                let connector = connector(connection);
                let Some(tls) = tls else {
                    let endpoint = HttpEndpoint::new(endpoint.addr, connector, connection);
                    return Ok(attempt_service(endpoint, attempts.as_ref()));
                };
                let tls = match &tls.files {
                    Some(files) => {
                        MeshTlsConnector::with_files(connector, tls, files, connection.protocol)
                            .map_err(|e| Arc::<str>::from(e.to_string()))?
                    }
                    None => {
                        let identity = identity.as_ref().map_err(Clone::clone)?;
                        MeshTlsConnector::new(connector, identity, tls, connection.protocol)
                            .map_err(|e| Arc::<str>::from(e.to_string()))?
                    }
                }
                .handshake_timeout(connection.connect_timeout);
                let upgrades = tls.http1_only();
                let endpoint = HttpEndpoint::new(endpoint.addr, tls, connection)
                    .encrypted()
                    .upgrades_over(upgrades, connection);
                Ok(attempt_service(endpoint, attempts.as_ref()))
            },
        );
        #[cfg(feature = "xds")]
        let (resolve, xds, config) = match self.xds {
            Some(ads) => {
                let resolve: Arc<dyn Resolve> =
                    Arc::new(mesh_xds::XdsResolve::new(&ads, self.resolve));
                (
                    resolve,
                    Some(super::xds::Xds::new(ads, self.cache)),
                    Some(MeshConfig::default()),
                )
            }
            None => (self.resolve, None, self.config),
        };
        #[cfg(not(feature = "xds"))]
        let (resolve, config) = (self.resolve, self.config);
        #[cfg(feature = "xds")]
        let registry_only = self.registry_only || xds.is_some();
        #[cfg(not(feature = "xds"))]
        let registry_only = self.registry_only;
        let routing = config.is_some();
        let config = Arc::new(config.unwrap_or_default());
        let shared_config = SharedConfig::from(config.clone());
        let clusters = Clusters::new(ClusterParts {
            resolve,
            new_endpoint,
            default_policy: self.default_policy,
            policies: self.policies,
            config: shared_config.clone(),
            limits: self.cache,
            ring_size_cap: self.ring_size_cap,
            exchange: self.metadata,
        });
        let seeded = |n: u64| self.seed.map(|s| s.wrapping_add(n));
        let stacks = Stacks {
            clusters: clusters.clone(),
            fault: FaultLayer::seeded(seeded(1)),
            split: SplitLayer::seeded(seeded(2)),
            mirror: MirrorLayer::seeded(seeded(3)),
        };
        let (routes, limiters) = stacks.routes(config, None, &Default::default());
        let passthrough = (!registry_only).then(|| {
            let to_target = ToCluster::target(&clusters);
            let stack = ServiceBuilder::new()
                .map_request(|req: http::Request<B>| req.map(RequestBody::new))
                .service(to_target);
            BoxCloneSyncService::new(stack)
        });
        let route = Route::new(SharedRoutes::new(routes)).passthrough(passthrough);
        let shared = Arc::new(Shared {
            config: shared_config,
            routing: AtomicBool::new(routing),
            stacks,
            route,
            update: std::sync::Mutex::new(limiters),
            #[cfg(feature = "xds")]
            xds,
        });
        #[cfg(feature = "xds")]
        super::xds::Xds::follow(&shared);
        MeshClient { shared }
    }
}
