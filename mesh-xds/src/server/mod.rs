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
//! - Only the four types [`ResourceType`] names are served; a request for
//!   any other is ignored.
//!
//! The cache is one global set of resources, the same for every node;
//! per-node snapshots are not supported yet.

mod cache;
mod clients;
mod delta;
mod sotw;
mod subscription;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

use crate::ads::{Protocol, ResourceType};
use clients::Clients;

/// The order a change is pushed in: clusters, endpoints, listeners,
/// routes, so that nothing arrives before what it names.
const PUSH_ORDER: [ResourceType; 4] = [
    ResourceType::Cluster,
    ResourceType::LoadAssignment,
    ResourceType::Listener,
    ResourceType::RouteConfig,
];

/// How many responses one stream may have waiting for its client.
const RESPONSE_BUFFER: usize = 16;

/// The responses of one stream, as tonic sends them.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The ADS service: serves its [`ResourceCache`] to every stream. Cloning
/// it shares the cache and the record of clients.
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
#[derive(Clone, Debug)]
pub struct AdsServer {
    cache: ResourceCache,
    clients: Clients,
    next_stream: Arc<AtomicU64>,
}

impl AdsServer {
    /// A server for what `cache` holds, now and later.
    pub fn new(cache: ResourceCache) -> Self {
        Self {
            cache,
            clients: Clients::default(),
            next_stream: Arc::new(AtomicU64::new(1)),
        }
    }

    /// The cache it serves.
    pub fn cache(&self) -> &ResourceCache {
        &self.cache
    }

    /// Every stream connected now, oldest first.
    pub fn clients(&self) -> Vec<ClientStatus> {
        self.clients.all()
    }

    /// The tonic service, to add to a `tonic::transport::Server`.
    pub fn into_service(self) -> AggregatedDiscoveryServiceServer<Self> {
        AggregatedDiscoveryServiceServer::new(self)
    }

    fn next_stream(&self) -> u64 {
        self.next_stream.fetch_add(1, Ordering::Relaxed)
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
        let (tx, rx) = mpsc::channel(RESPONSE_BUFFER);
        let client = self
            .clients
            .connect(self.next_stream(), Protocol::StateOfTheWorld);
        let stream = sotw::SotwStream::new(self.cache.clone(), client, tx);
        tokio::spawn(serve(stream, request.into_inner()));
        Ok(Response::new(receiver_stream(rx)))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        let (tx, rx) = mpsc::channel(RESPONSE_BUFFER);
        let client = self.clients.connect(self.next_stream(), Protocol::Delta);
        let stream = delta::DeltaStream::new(self.cache.clone(), client, tx);
        tokio::spawn(serve(stream, request.into_inner()));
        Ok(Response::new(receiver_stream(rx)))
    }
}

fn receiver_stream<T: Send + 'static>(rx: mpsc::Receiver<Result<T, Status>>) -> ResponseStream<T> {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|r| (r, rx))
    }))
}

/// The client is gone: its stream's task ends.
struct Closed;

/// What differs between the two protocols' streams; [`serve`] runs either.
trait AdsStream: Send {
    type Request: prost::Message + Default + Send + 'static;

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

/// Serves `stream` until the client goes away: its requests as they come,
/// and every change of the cache to each type it asked for, clusters and
/// endpoints before the listeners and routes that name them (the order the
/// xDS spec gives for eventual consistency).
async fn serve<S: AdsStream>(mut stream: S, mut incoming: Streaming<S::Request>) {
    let mut changed = stream.cache().changed();
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

fn log_nack(node_id: &str, kind: ResourceType, nack: &Nack) {
    tracing::warn!(
        node = node_id,
        %kind,
        nonce = %nack.nonce,
        version = %nack.version,
        message = %nack.message,
        "xDS client rejected a response"
    );
}
