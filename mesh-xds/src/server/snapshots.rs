//! [`Snapshots`]: which resources each node is served, as istiod decides
//! per proxy: the node picks a [`ResourceCache`], and names it asks for
//! may be made on request.

use envoy_types::pb::envoy::config::core::v3::Node;

use super::cache::ResourceCache;
use super::limits::LimitReached;
use crate::resource::ResourceType;

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
    /// The cache `node` is served from, chosen once per stream, at its
    /// first request (a request without a node is a default `Node`); or
    /// why the node is not served, which ends the stream with
    /// `RESOURCE_EXHAUSTED` (and [`released`](Self::released) is not
    /// called for it).
    fn cache_for(&self, node: &Node) -> Result<ResourceCache, LimitReached>;

    /// `node` has just subscribed to `names` of `kind`, which its cache
    /// may lack. Called on the stream's task before it answers: a
    /// resource set into the node's cache here goes out in that answer.
    /// A name that stays absent is answered as the protocol says (left
    /// out, or removed in delta). By default nothing is made.
    fn requested(&self, node: &Node, kind: ResourceType, names: &[String]) {
        let _ = (node, kind, names);
    }

    /// A stream of `node` that [`cache_for`](Self::cache_for) was asked
    /// about has ended: with no other stream of its kind left, what was
    /// kept for it may go. By default nothing happens.
    fn released(&self, node: &Node) {
        let _ = node;
    }
}

impl Snapshots for ResourceCache {
    fn cache_for(&self, _: &Node) -> Result<ResourceCache, LimitReached> {
        Ok(self.clone())
    }
}
