//! Peer metadata exchange, as Istio's sidecars do it over HTTP (the
//! `istio.metadata_exchange` filter): each side tells the other who it is
//! ([`WorkloadMetadata`]: instance, namespace, workload, app, version,
//! canonical service and revision, cluster), so that both label their
//! metrics with the full edge.
//!
//! - The client ([`Side::Client`]) adds `x-envoy-peer-metadata` (the
//!   [`codec`]) and `x-envoy-peer-metadata-id` to each request, and takes
//!   them off the response, the server's metadata then in a
//!   [`PeerMetadata`] response extension.
//! - The server ([`Side::Server`]) takes them off the request, the caller's
//!   metadata then in a [`PeerMetadata`] request extension, and answers
//!   with its own, each header only if the caller sent it (as Istio's
//!   proxies do, so a caller outside the mesh learns nothing).
//!
//! A header that is missing or cannot be read leaves no [`PeerMetadata`]
//! (the labels then read `unknown`) and is never an error; neither header
//! reaches the application. Decoded metadata is kept by its header's
//! exact value, [`CACHED`] of them, so a steady peer is decoded once.
//!
//! The metadata says who a peer claims to be; the peer's principal comes
//! from its certificate alone.

pub mod codec;
mod future;
mod layer;

use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};

use hashbrown::HashMap;
use http::{HeaderMap, HeaderName, HeaderValue};
use mesh_core::telemetry::WorkloadMetadata;
use tower::Service;

pub use future::ResponseFuture;
pub use layer::MetadataExchangeLayer;

/// The header carrying a peer's metadata.
pub const PEER_METADATA: HeaderName = HeaderName::from_static("x-envoy-peer-metadata");

/// The header carrying the id of a peer's metadata: its node id,
/// `sidecar~IP~POD.NAMESPACE~NAMESPACE.svc.DOMAIN` for Istio's proxies.
pub const PEER_METADATA_ID: HeaderName = HeaderName::from_static("x-envoy-peer-metadata-id");

/// How many distinct peers' decoded metadata are kept.
pub const CACHED: usize = 500;

/// The metadata the peer sent: a request extension on the server side, a
/// response extension on the client side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerMetadata(pub Arc<WorkloadMetadata>);

/// Which end of a request the exchange is at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The caller: sends its metadata, reads the server's.
    Client,
    /// The callee: reads the caller's metadata, answers with its own.
    Server,
}

/// The id a workload's metadata goes by when it has no xDS node id:
/// Istio's node id shape, `sidecar~0.0.0.0~POD.NAMESPACE~NAMESPACE.svc.cluster.local`
/// (a peer keeps decoded metadata by it).
pub fn node_id(metadata: &WorkloadMetadata) -> HeaderValue {
    let name = metadata.name.as_deref().unwrap_or("unknown");
    let ns = metadata.namespace.as_deref().unwrap_or("default");
    HeaderValue::try_from(format!(
        "sidecar~0.0.0.0~{name}.{ns}~{ns}.svc.cluster.local"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("sidecar~0.0.0.0~unknown"))
}

/// This workload's headers, and the peers' metadata read so far.
#[derive(Debug)]
struct Local {
    metadata: HeaderValue,
    id: HeaderValue,
    /// Read by every request, written once per new peer; keyed by seeded
    /// foldhash of the header (some hundreds of bytes). A header that did
    /// not decode is kept as `None`, so it is not decoded again.
    peers: RwLock<HashMap<HeaderValue, Option<Arc<WorkloadMetadata>>>>,
}

impl Local {
    fn new(metadata: &WorkloadMetadata, id: HeaderValue) -> Self {
        let metadata =
            HeaderValue::try_from(codec::encode(metadata)).expect("base64 is a valid header value");
        Self {
            metadata,
            id,
            peers: RwLock::default(),
        }
    }

    /// Adds this workload's headers to `headers`.
    fn tell(&self, headers: &mut HeaderMap) {
        headers.insert(PEER_METADATA, self.metadata.clone());
        headers.insert(PEER_METADATA_ID, self.id.clone());
    }

    /// Client side: takes the server's headers off `res`, its metadata
    /// then a [`PeerMetadata`] extension.
    fn hear_response<B>(&self, res: &mut http::Response<B>) {
        let (peer, _, _) = self.hear(res.headers_mut());
        if let Some(peer) = peer {
            res.extensions_mut().insert(peer);
        }
    }

    /// Takes the peer's headers off `headers`: its metadata if it sent
    /// any that reads, and which of the two headers it sent.
    fn hear(&self, headers: &mut HeaderMap) -> (Option<PeerMetadata>, bool, bool) {
        let peer_id = headers.remove(PEER_METADATA_ID);
        let id = peer_id.is_some();
        let Some(value) = headers.remove(PEER_METADATA) else {
            return (None, false, id);
        };
        let peers = self.peers.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = peers.get(&value) {
            return (known.clone().map(PeerMetadata), true, id);
        }
        let room = peers.len() < CACHED;
        drop(peers);
        let decoded = match codec::decode(value.as_bytes()) {
            Ok(decoded) => Some(Arc::new(decoded)),
            Err(error) => {
                tracing::debug!(%error, peer = ?peer_id, "peer metadata not read; its labels are unknown");
                None
            }
        };
        // Full: past peers are decoded on each request, without waiting
        // on the lock every request reads.
        if room {
            let mut peers = self.peers.write().unwrap_or_else(PoisonError::into_inner);
            if peers.len() < CACHED {
                peers.insert(value, decoded.clone());
            }
        }
        (decoded.map(PeerMetadata), true, id)
    }
}

/// Exchanges metadata with the peer of each request (see the
/// [module](self)).
#[derive(Clone, Debug)]
pub struct MetadataExchange<S> {
    inner: S,
    side: Side,
    local: Arc<Local>,
}

impl<S> MetadataExchange<S> {
    /// `inner`, at `side`, as the workload `local`; its metadata's id is
    /// `id` (its xDS node id, say).
    pub fn new(inner: S, side: Side, local: &WorkloadMetadata, id: HeaderValue) -> Self {
        MetadataExchangeLayer::new(side, local, id).wrap(inner)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, R> Service<http::Request<B>> for MetadataExchange<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        match self.side {
            Side::Client => {
                self.local.tell(req.headers_mut());
                ResponseFuture::hearing(self.inner.call(req), self.local.clone())
            }
            Side::Server => {
                let (peer, metadata, id) = self.local.hear(req.headers_mut());
                if let Some(peer) = peer {
                    req.extensions_mut().insert(peer);
                }
                let telling = (metadata || id).then(|| (self.local.clone(), metadata, id));
                ResponseFuture::telling(self.inner.call(req), telling)
            }
        }
    }
}

#[cfg(test)]
mod tests;
