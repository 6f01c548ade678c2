//! The cluster-cache layer: the end of every request path, holding each
//! cluster's stack (circuit → balance → outlier → endpoint) by cluster.
//!
//! Each cluster's stack is built on its first request and kept in a map
//! requests read without locks; a stack unused for the idle
//! timeout is dropped when a new one is built, and at most `max_clusters`
//! are kept (least recently used go first), so requests to ever-new
//! authorities cannot grow a client without bound. A configured cluster is
//! kept by its name and the port of the service requests to it reach; an
//! unrouted request's cluster by its authority. A new configuration drops
//! the stacks of clusters whose definition changed.
//!
//! [`ToCluster`] is the leaf of a route's stack: it sends each request to
//! one cluster, with the route's timeout and retry policy where the route
//! sets them and else the cluster's (a route's replace its cluster's, as
//! Istio's VirtualService `timeout` and `retries` do), under the cluster's
//! retry budget and rate limit, and names the cluster on the response
//! ([`SelectedCluster`]). This is where per-attempt layers (tracing spans
//! per retry) go, around [`Retry`](crate::retry::Retry)'s inner service,
//! and where TLS plugs in: the endpoint connector.

mod cache;
mod entry;
mod subset;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use mesh_core::policy::{ClusterPolicy, RetryPolicy};
use mesh_core::route::ClusterName;
use mesh_core::{Authority, Cluster, Discovery, Endpoint, MeshConfig, Resolve};
use tower::Service;
use tower::util::BoxCloneSyncService;

pub(crate) use cache::{CacheLimits, ClusterCache};
use entry::{Build, Entry};

use crate::endpoint::TlsRefusals;
use crate::retry::ReplayBody;
use crate::route::{RequestTarget, SharedConfig};
use crate::split::SelectedCluster;
use crate::{BoxError, RequestBody, ResponseBody};

/// One endpoint's service, as the balancer holds it.
pub type EndpointService<B> = BoxCloneSyncService<
    http::Request<ReplayBody<RequestBody<B>>>,
    http::Response<Incoming>,
    BoxError,
>;

/// Builds an endpoint's service from the endpoint and the cluster's policy.
pub(crate) type NewEndpoint<B> =
    Arc<dyn Fn(&Endpoint, &ClusterPolicy) -> EndpointService<B> + Send + Sync>;

/// The response future of the cluster layer.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<ResponseBody>, BoxError>> + Send>>;

/// What a cluster stack is kept by: a request authority (unrouted), or a
/// configured cluster and the port of the service requests to it reach
/// (`None` for a named endpoint set, whose endpoints carry their ports).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ClusterKey {
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

/// A route named a cluster the configuration does not define (an xDS
/// cluster the control plane deleted or rejected); nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cluster {cluster} is not defined: {reason}; nothing was sent")]
pub struct UndefinedCluster {
    /// The cluster.
    pub cluster: String,
    /// Why.
    pub reason: String,
}

/// What clusters are built from: discovery, the endpoint services, the
/// policies of unrouted targets, and the configuration's definitions.
pub(crate) struct ClusterParts<B> {
    pub(crate) resolve: Arc<dyn Resolve>,
    pub(crate) new_endpoint: NewEndpoint<B>,
    pub(crate) default_policy: ClusterPolicy,
    pub(crate) policies: HashMap<Authority, ClusterPolicy>,
    pub(crate) config: SharedConfig,
    pub(crate) limits: CacheLimits,
    pub(crate) ring_size_cap: u64,
}

/// The clusters of a client, built on first use and kept by cluster.
/// Clones share them.
pub(crate) struct Clusters<B> {
    inner: Arc<Inner<B>>,
}

impl<B> Clone for Clusters<B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<B> {
    parts: ClusterParts<B>,
    stacks: ClusterCache<ClusterKey, Arc<Entry<B>>>,
    tls_refusals: TlsRefusals,
}

impl<B> Clusters<B> {
    pub(crate) fn new(parts: ClusterParts<B>) -> Self {
        let stacks = ClusterCache::new(parts.limits);
        Self {
            inner: Arc::new(Inner {
                parts,
                stacks,
                tls_refusals: TlsRefusals::default(),
            }),
        }
    }

    /// Requests refused for want of TLS, by cluster.
    pub(crate) fn tls_refusals(&self) -> &TlsRefusals {
        &self.inner.tls_refusals
    }

    /// The keys of the stacks built now.
    pub(crate) fn keys(&self) -> Vec<ClusterKey> {
        self.inner.stacks.targets()
    }

    /// After the configuration went from `old` to `new`: drops the stacks
    /// of configured clusters whose definition changed. Stacks are built
    /// from the definition current when they are built, so only those
    /// built before the change can be stale.
    pub(crate) fn configured(&self, old: &MeshConfig, new: &MeshConfig) {
        self.inner.stacks.retain(|key| match key {
            ClusterKey::Named(name, _) => old.cluster(name) == new.cluster(name),
            ClusterKey::Target(_) => true,
        });
    }
}

impl<B> Clusters<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    fn build(
        &self,
        name: &str,
        resolution: mesh_core::Resolution,
        policy: &ClusterPolicy,
    ) -> Entry<B> {
        let parts = &self.inner.parts;
        let build = Build {
            name,
            new_endpoint: &parts.new_endpoint,
            tls_refusals: &self.inner.tls_refusals,
            ring_size_cap: parts.ring_size_cap,
        };
        Entry::new(build, resolution, policy)
    }

    /// The stack of an unrouted request's authority.
    pub(crate) fn target(&self, target: &Authority) -> Arc<Entry<B>> {
        let key = ClusterKey::Target(target.clone());
        self.inner.stacks.get_or_build(&key, || {
            let parts = &self.inner.parts;
            let policy = parts.policies.get(target).unwrap_or(&parts.default_policy);
            let resolution = parts.resolve.resolve(target);
            Arc::new(self.build(&target.to_string(), resolution, policy))
        })
    }

    /// The stack of the configured cluster `cluster` (as the request's
    /// configuration defines it) for a request sent to `request_port`.
    fn named(&self, cluster: &Cluster, request_port: u16) -> Result<Arc<Entry<B>>, BoxError> {
        let name = &cluster.name;
        if let Discovery::Missing(reason) = &cluster.discovery {
            let cluster = name.to_string();
            let reason = reason.to_string();
            return Err(UndefinedCluster { cluster, reason }.into());
        }
        let key = ClusterKey::Named(name.clone(), cluster.port_for(request_port));
        // The common case: built already, with nothing to parse or allocate.
        if let Some(entry) = self.inner.stacks.get(&key) {
            return Ok(entry);
        }
        let target = cluster.target(request_port)?;
        Ok(self.inner.stacks.get_or_build(&key, || {
            // The definition current now, not the one the request was
            // routed by: a new configuration drops what was built before.
            let parts = &self.inner.parts;
            let current = parts.config.load();
            let cluster = current.cluster(name).unwrap_or(cluster);
            let resolution = subset::subset(parts.resolve.resolve_target(&target), cluster);
            Arc::new(self.build(name.as_str(), resolution, cluster.policy_for(request_port)))
        }))
    }
}

/// Where a [`ToCluster`] sends its requests.
#[derive(Clone, Debug)]
enum Destination {
    /// A configured cluster, as the configuration its route came from
    /// defines it.
    Named(Arc<Cluster>),
    /// The cluster of each request's own authority (an authority no
    /// virtual host serves).
    Target,
}

/// Sends each request to one cluster's stack, built on first use.
pub struct ToCluster<B> {
    clusters: Clusters<B>,
    destination: Destination,
    timeout: Option<Option<Duration>>,
    retry: Option<Arc<RetryPolicy>>,
}

impl<B> Clone for ToCluster<B> {
    fn clone(&self) -> Self {
        Self {
            clusters: self.clusters.clone(),
            destination: self.destination.clone(),
            timeout: self.timeout,
            retry: self.retry.clone(),
        }
    }
}

impl<B> fmt::Debug for ToCluster<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToCluster")
            .field("destination", &self.destination)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<B> ToCluster<B> {
    /// To `cluster` (as a configuration defines it), with a route's
    /// `timeout` and `retry` in place of the cluster's where given.
    pub(crate) fn named(
        clusters: &Clusters<B>,
        cluster: Cluster,
        timeout: Option<Option<Duration>>,
        retry: Option<Arc<RetryPolicy>>,
    ) -> Self {
        Self {
            clusters: clusters.clone(),
            destination: Destination::Named(Arc::new(cluster)),
            timeout,
            retry,
        }
    }

    /// To the cluster of each request's authority, with its policy.
    pub(crate) fn target(clusters: &Clusters<B>) -> Self {
        Self {
            clusters: clusters.clone(),
            destination: Destination::Target,
            timeout: None,
            retry: None,
        }
    }
}

impl<B> Service<http::Request<RequestBody<B>>> for ToCluster<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<ResponseBody>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<RequestBody<B>>) -> ResponseFuture {
        let cluster = match &self.destination {
            Destination::Target => match Authority::from_uri(req.uri()) {
                Ok(target) => self.clusters.target(&target),
                Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
            },
            Destination::Named(cluster) => {
                // The port the request was sent to, before any rewrite.
                let port = match req.extensions().get::<RequestTarget>() {
                    Some(RequestTarget(t)) => t.port(),
                    None => Authority::from_uri(req.uri()).map_or(80, |a| a.port()),
                };
                match self.clusters.named(cluster, port) {
                    Ok(entry) => entry,
                    Err(e) => return Box::pin(std::future::ready(Err(e))),
                }
            }
        };
        let sent = cluster.call(req, self.timeout, self.retry.as_ref());
        let Destination::Named(cluster) = &self.destination else {
            return sent;
        };
        let name = cluster.name.clone();
        Box::pin(async move {
            let mut res = sent.await?;
            res.extensions_mut().insert(SelectedCluster(name));
            Ok(res)
        })
    }
}
