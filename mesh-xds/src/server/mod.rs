//! An ADS server: serves the resources of a [`ResourceCache`] over
//! `StreamAggregatedResources` (state of the world) and
//! `DeltaAggregatedResources` (delta), as istiod or go-control-plane do.
//!
//! - Subscriptions follow the xDS spec: named resources, or the wildcard
//!   (a first request with no names, or the name `*`) for every resource
//!   of a type, as Envoy asks for listeners and clusters. Once a state of
//!   the world client has named resources, an empty list unsubscribes
//!   everything.
//! - State of the world: a type's response goes out when the subscribed
//!   resources (names and versions) differ from what the stream was last
//!   sent; its `version_info` is a digest of what it carries and its nonce
//!   is unique. A request carrying the last nonce sent ACKs or NACKs it; a
//!   request carrying an older nonce is ignored.
//! - Delta: the server tracks the version of every resource the client
//!   has (starting from the `initial_resource_versions` of a new stream),
//!   sends only what changed and names what disappeared in
//!   `removed_resources`.
//! - A NACK is logged (`tracing::warn!`) and kept in [`AdsServer::clients`]
//!   beside each stream's node, age and last ACKed versions.
//! - Each stream runs in its own task and hands responses to tonic over a
//!   small bounded channel: a slow client waits alone, never holding up
//!   the cache or other streams.
//! - Only the types [`ResourceType`] names are served (the four a mesh
//!   client reads, and SDS secrets); a request for any other is ignored.
//! - What a stream is served comes from [`Snapshots`]: the [`Caller`]
//!   (the node of its first request, and the identity of the client's
//!   certificate when the server took mutual TLS and set
//!   [`ClientIdentity`](mesh_core::security::ClientIdentity) on the
//!   request) picks a [`ResourceCache`], and names it subscribes to may
//!   be made on request. A single `ResourceCache` serves every node the
//!   same; a `Snapshots` may refuse a caller ([`Refused`]).
//! - Clients cannot grow the server without bound ([`ServerLimits`]): a
//!   stream past `max_streams` is refused, and one that subscribes to more
//!   than `max_subscriptions` names is ended, both with
//!   `RESOURCE_EXHAUSTED` naming the limit.

mod cache;
mod clients;
mod delta;
mod limits;
mod snapshots;
mod sotw;
mod subscription;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use futures_util::Stream;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

pub use cache::{CacheSnapshot, CachedResource, ResourceCache, TypeResources};
pub use clients::{ClientStatus, Nack, TypeStatus};
pub use limits::{LimitReached, ServerLimits};
pub use snapshots::{Caller, Refused, Snapshots};

use crate::resource::{Protocol, ResourceType};
use clients::Clients;

/// The order a change is pushed in: clusters, endpoints, secrets,
/// listeners, routes, so that nothing arrives before what it names.
const PUSH_ORDER: [ResourceType; 5] = [
    ResourceType::Cluster,
    ResourceType::LoadAssignment,
    ResourceType::Secret,
    ResourceType::Listener,
    ResourceType::RouteConfig,
];

/// How many responses one stream may have waiting for its client.
const RESPONSE_BUFFER: usize = 16;

/// The responses of one stream, as tonic sends them.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The ADS service: serves each stream what its [`Snapshots`] give the
/// stream's node. Cloning it shares them and the record of clients.
///
/// ```no_run
/// # async fn serve() -> Result<(), tonic::transport::Error> {
/// use mesh_xds::server::{AdsServer, ResourceCache};
///
/// let cache = ResourceCache::new();
/// let server = AdsServer::new(cache.clone());
/// // Keepalives find peers that vanished without closing their streams,
/// // whose records and buffered responses would otherwise stay.
/// tonic::transport::Server::builder()
///     .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
///     .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
///     .add_service(server.clone().into_service())
///     .serve("127.0.0.1:15010".parse().unwrap())
///     .await
/// # }
/// ```
#[derive(Clone)]
pub struct AdsServer {
    snapshots: Arc<dyn Snapshots>,
    clients: Clients,
    next_stream: Arc<AtomicU64>,
    limits: ServerLimits,
}

impl std::fmt::Debug for AdsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdsServer")
            .field("clients", &self.clients)
            .finish_non_exhaustive()
    }
}

impl AdsServer {
    /// A server for what `snapshots` hold, now and later: a
    /// [`ResourceCache`] to serve every node the same.
    pub fn new(snapshots: impl Snapshots) -> Self {
        Self {
            snapshots: Arc::new(snapshots),
            clients: Clients::default(),
            next_stream: Arc::new(AtomicU64::new(1)),
            limits: ServerLimits::default(),
        }
    }

    /// Bounds on what clients may make the server hold, in place of
    /// [`ServerLimits::default`].
    pub fn with_limits(mut self, limits: ServerLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Every stream connected now, oldest first.
    pub fn clients(&self) -> Vec<ClientStatus> {
        self.clients.all()
    }

    /// The tonic service, to add to a `tonic::transport::Server`.
    pub fn into_service(self) -> AggregatedDiscoveryServiceServer<Self> {
        AggregatedDiscoveryServiceServer::new(self)
    }

    /// Records a new stream, unless `max_streams` are open.
    fn connect(&self, protocol: Protocol) -> Result<clients::ClientGuard, Status> {
        let stream = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let max = self.limits.max_streams;
        self.clients.connect(stream, protocol, max).ok_or_else(|| {
            tracing::warn!(max, "ADS stream refused: too many open");
            LimitReached::new("too many ADS streams are open", "max_streams", max).into()
        })
    }
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for AdsServer {
    type StreamAggregatedResourcesStream = ResponseStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let mut client = self.connect(Protocol::StateOfTheWorld)?;
        let identity = client.identity(&request);
        let (tx, rx) = mpsc::channel(RESPONSE_BUFFER);
        let (snapshots, max) = (self.snapshots.clone(), self.limits.max_subscriptions);
        tokio::spawn(serve(
            request.into_inner(),
            move |node: Node| match Served::new(snapshots, Caller { node, identity }, max) {
                Ok(served) => Ok(sotw::SotwStream::new(served, client, tx)),
                Err(refused) => Err(refuse(&tx, refused)),
            },
        ));
        Ok(Response::new(receiver_stream(rx)))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        let mut client = self.connect(Protocol::Delta)?;
        let identity = client.identity(&request);
        let (tx, rx) = mpsc::channel(RESPONSE_BUFFER);
        let (snapshots, max) = (self.snapshots.clone(), self.limits.max_subscriptions);
        tokio::spawn(serve(
            request.into_inner(),
            move |node: Node| match Served::new(snapshots, Caller { node, identity }, max) {
                Ok(served) => Ok(delta::DeltaStream::new(served, client, tx)),
                Err(refused) => Err(refuse(&tx, refused)),
            },
        ));
        Ok(Response::new(receiver_stream(rx)))
    }
}

fn receiver_stream<T: Send + 'static>(rx: mpsc::Receiver<Result<T, Status>>) -> ResponseStream<T> {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|r| (r, rx))
    }))
}

/// The client is gone, or was told why it is not served: its stream's
/// task ends.
struct Closed;

/// Refuses a stream before anything was sent on it, saying why.
fn refuse<T>(tx: &mpsc::Sender<Result<T, Status>>, refused: Refused) -> Closed {
    tracing::warn!(%refused, "ADS stream refused");
    // Nothing is queued yet: room is certain.
    let _ = tx.try_send(Err(refused.into()));
    Closed
}

/// Ends a stream that went past a limit, with `RESOURCE_EXHAUSTED` saying
/// which, after the responses already queued.
async fn end<T>(tx: &mpsc::Sender<Result<T, Status>>, refused: LimitReached) -> Closed {
    tracing::warn!(limit = refused.limit(), %refused, "ADS stream ended");
    // A client gone already needs no reason.
    let _ = tx.send(Err(refused.into())).await;
    Closed
}

/// What one stream is served: who it is, the cache that picked, and the
/// [`Snapshots`] to ask for names the cache lacks.
struct Served {
    snapshots: Arc<dyn Snapshots>,
    cache: ResourceCache,
    caller: Caller,
    /// The most names the stream may subscribe to.
    max_subscriptions: usize,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.snapshots.released(&self.caller);
    }
}

impl Served {
    /// What `caller` is served, unless its snapshots refuse it.
    fn new(
        snapshots: Arc<dyn Snapshots>,
        caller: Caller,
        max_subscriptions: usize,
    ) -> Result<Self, Refused> {
        let cache = snapshots.cache_for(&caller)?;
        Ok(Self {
            snapshots,
            cache,
            caller,
            max_subscriptions,
        })
    }

    /// Whether `subscribed` names, all types together, are within the
    /// limit.
    fn within_limit(&self, subscribed: usize) -> Result<(), LimitReached> {
        let max = self.max_subscriptions;
        if subscribed > max {
            let what = format!("the stream subscribes to {subscribed} names");
            return Err(LimitReached::new(what, "max_subscriptions", max));
        }
        Ok(())
    }

    /// Lets the snapshots make what the client just subscribed to.
    fn requested(&self, kind: ResourceType, names: &[String]) {
        let names: Vec<String> = names.iter().filter(|n| *n != "*").cloned().collect();
        if !names.is_empty() {
            self.snapshots.requested(&self.caller, kind, &names);
        }
    }
}

/// What differs between the two protocols' streams; [`serve`] runs either.
trait AdsStream: Send {
    type Request: prost::Message + Default + Send + 'static;

    /// The node a request names, if it does.
    fn node(request: &Self::Request) -> Option<&Node>;
    fn cache(&self) -> &ResourceCache;
    fn id(&self) -> u64;
    /// Handles one request from the client.
    fn request(
        &mut self,
        request: Self::Request,
    ) -> impl Future<Output = Result<(), Closed>> + Send;
    /// Whether the client has asked for `kind` on this stream.
    fn asked_for(&self, kind: ResourceType) -> bool;
    /// Sends what the client lacks of `kind`, if anything.
    fn respond(&mut self, kind: ResourceType) -> impl Future<Output = Result<(), Closed>> + Send;
}

/// Serves a stream until the client goes away: `start` makes it for the
/// node of the first request; then its requests as they come, and every
/// change of its cache to each type it asked for, clusters and endpoints
/// before the listeners and routes that name them (the order the xDS spec
/// gives for eventual consistency).
async fn serve<S: AdsStream>(
    mut incoming: Streaming<S::Request>,
    start: impl FnOnce(Node) -> Result<S, Closed> + Send,
) {
    let first = match incoming.message().await {
        Ok(Some(request)) => request,
        Ok(None) | Err(_) => return,
    };
    let Ok(mut stream) = start(S::node(&first).cloned().unwrap_or_default()) else {
        return;
    };
    let mut changed = stream.cache().changed();
    changed.mark_unchanged();
    if stream.request(first).await.is_err() {
        return;
    }
    loop {
        let outcome = tokio::select! {
            request = incoming.message() => match request {
                Ok(Some(request)) => stream.request(request).await,
                Ok(None) => return,
                Err(status) => {
                    tracing::debug!(stream = stream.id(), %status, "ADS stream ended");
                    return;
                }
            },
            changed = changed.changed() => match changed {
                Ok(()) => cache_changed(&mut stream).await,
                Err(_) => return,
            },
        };
        if outcome.is_err() {
            return;
        }
    }
}

async fn cache_changed<S: AdsStream>(stream: &mut S) -> Result<(), Closed> {
    for kind in PUSH_ORDER {
        if stream.asked_for(kind) {
            stream.respond(kind).await?;
        }
    }
    Ok(())
}
