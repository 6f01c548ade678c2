//! [`Snapshots`]: which resources each node is served, as istiod decides
//! per proxy: the [`Caller`] (its node, and the identity its certificate
//! proves) picks a [`ResourceCache`], and names it asks for may be made
//! on request; or the caller is [`Refused`].

use envoy_types::pb::envoy::config::core::v3::Node;
use mesh_core::security::ClientIdentity;

use super::cache::ResourceCache;
use super::limits::LimitReached;
use crate::resource::ResourceType;

/// Who a stream is: the node its first request names (a request without
/// one is a default `Node`), and the identity its client proved with a
/// certificate, when the server takes mutual TLS and has put it in the
/// request's extensions (as `MeshServer` does). What a node says of
/// itself is a claim; the identity is not.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Caller {
    /// The node, as the client describes itself.
    pub node: Node,
    /// The SPIFFE id of the client's certificate; `None` over plain text.
    pub identity: Option<ClientIdentity>,
}

impl From<Node> for Caller {
    /// `node`, which proved no identity.
    fn from(node: Node) -> Self {
        Self {
            node,
            identity: None,
        }
    }
}

/// Why a stream is not served; the client is told, and the stream ends.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A limit of the server's (`RESOURCE_EXHAUSTED`).
    #[error(transparent)]
    Limit(#[from] LimitReached),
    /// The caller may not have what it asks for, for the reason given
    /// (`PERMISSION_DENIED`), e.g. a node claiming a namespace its
    /// certificate is not of.
    #[error("{0}")]
    PermissionDenied(String),
}

impl From<Refused> for tonic::Status {
    fn from(e: Refused) -> Self {
        match e {
            Refused::Limit(limit) => limit.into(),
            Refused::PermissionDenied(why) => tonic::Status::permission_denied(why),
        }
    }
}

/// The source of what an [`AdsServer`](super::AdsServer) serves each
/// stream.
///
/// A [`ResourceCache`] is the simplest: every node is served the same
/// resources. A control plane that shapes resources by node (proxyless
/// gRPC clients get API listeners, Envoy sidecars get listeners with
/// filter chains) keeps a cache per kind of node and returns it from
/// [`cache_for`](Self::cache_for); one that makes resources on request
/// (istiod's listeners named as the client asked, `reviews:9080`) adds
/// them to that cache in [`requested`](Self::requested).
pub trait Snapshots: Send + Sync + 'static {
    /// The cache `caller` is served from, chosen once per stream, at its
    /// first request; or why it is not served, which ends the stream
    /// with that status (and [`released`](Self::released) is not called
    /// for it).
    fn cache_for(&self, caller: &Caller) -> Result<ResourceCache, Refused>;

    /// `caller` has just subscribed to `names` of `kind`, which its cache
    /// may lack. Called on the stream's task before it answers: a
    /// resource set into the caller's cache here goes out in that answer.
    /// A name that stays absent is answered as the protocol says (left
    /// out, or removed in delta). By default nothing is made.
    fn requested(&self, caller: &Caller, kind: ResourceType, names: &[String]) {
        let _ = (caller, kind, names);
    }

    /// A stream of `caller` that [`cache_for`](Self::cache_for) was asked
    /// about has ended: with no other stream of its kind left, what was
    /// kept for it may go. By default nothing happens.
    fn released(&self, caller: &Caller) {
        let _ = caller;
    }
}

impl Snapshots for ResourceCache {
    fn cache_for(&self, _: &Caller) -> Result<ResourceCache, Refused> {
        Ok(self.clone())
    }
}
