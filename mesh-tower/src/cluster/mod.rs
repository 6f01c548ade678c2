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
//! `ToCluster` is the leaf of a route's stack: it sends each request to
//! one cluster, with the route's timeout and retry policy where the route
//! sets them and else the cluster's (a route's replace its cluster's, as
//! Istio's VirtualService `timeout` and `retries` do), under the cluster's
//! retry budget and rate limit, and names the cluster on the response
//! ([`SelectedCluster`](crate::split::SelectedCluster)). Per-attempt
//! layers (tracing spans per retry) go around a cluster's core (circuit
//! breaker and below, `CoreService` in `entry.rs`), the service each
//! attempt calls; TLS plugs in at the endpoint connector.

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
use mesh_core::policy::{ClusterPolicy, RetryPolicy, UpstreamTls};
use mesh_core::route::ClusterName;
use mesh_core::{Authority, Cluster, Discovery, Endpoint, MeshConfig, Resolve};
use tower::Service;

pub(crate) use cache::{CacheLimits, ClusterCache};
use entry::{Build, Entry};

use crate::endpoint::TlsRefusals;
use crate::metadata_exchange::MetadataExchangeLayer;
use crate::retry::ReplayBody;
use crate::route::{RequestTarget, SharedConfig};
use crate::{BoxError, RequestBody, ResponseBody};

/// A request as it reaches an endpoint.
pub type EndpointRequest<B> = http::Request<ReplayBody<RequestBody<B>>>;

/// One endpoint's service, as the balancer holds it: shared, so each
/// attempt's clone costs a reference count, not an allocation.
pub struct EndpointService<B>(
    Arc<dyn Fn(EndpointRequest<B>) -> crate::endpoint::ResponseFuture + Send + Sync>,
);

impl<B> EndpointService<B> {
    /// The service that sends each request with `send`.
    pub fn new(
        send: impl Fn(EndpointRequest<B>) -> crate::endpoint::ResponseFuture + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(send))
    }
}

impl<B> Clone for EndpointService<B> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<B> fmt::Debug for EndpointService<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EndpointService")
    }
}

impl<B> Service<EndpointRequest<B>> for EndpointService<B> {
    type Response = http::Response<Incoming>;
    type Error = BoxError;
    type Future = crate::endpoint::ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: EndpointRequest<B>) -> Self::Future {
        (self.0)(req)
    }
}

/// Builds an endpoint's service from the endpoint, the cluster's policy
/// and the TLS the endpoint must be reached with, if any; when that TLS
/// cannot be dialled, why (the endpoint then refuses every request, never
/// sending it in plain text).
pub(crate) type NewEndpoint<B> = Arc<
    dyn Fn(&Endpoint, &ClusterPolicy, Option<&UpstreamTls>) -> Result<EndpointService<B>, Arc<str>>
        + Send
        + Sync,
>;

/// The response future of the cluster layer.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<ResponseBody>, BoxError>> + Send>>;

/// What a cluster stack is kept by: a request authority (unrouted), or a
/// configured cluster and the port of the service requests to it reach
/// (`None` for a named endpoint set, whose endpoints carry their ports).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ClusterKey {
    /// An authority, and whether requests to it are `https`.
    Target(Authority, bool),
    Named(ClusterName, Option<u16>),
}

impl fmt::Display for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterKey::Target(t, false) => t.fmt(f),
            ClusterKey::Target(t, true) => write!(f, "https://{t}"),
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
    /// The workload's metadata exchange with the servers of the clusters
    /// it is configured with, if it tells its metadata.
    pub(crate) exchange: Option<MetadataExchangeLayer>,
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

    /// What each cluster stack built now is doing, by name.
    pub(crate) fn status(&self) -> Vec<crate::client::ClusterStatus> {
        let mut clusters: Vec<_> = self
            .inner
            .stacks
            .entries()
            .into_iter()
            .map(|(key, entry)| entry.status(key.to_string()))
            .collect();
        clusters.sort_by(|a, b| a.name.cmp(&b.name));
        clusters
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
            ClusterKey::Named(name, _) => {
                match (old.shared_cluster(name), new.shared_cluster(name)) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                    (a, b) => a == b,
                }
            }
            ClusterKey::Target(..) => true,
        });
    }
}

impl<B> Clusters<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    /// The stack of the cluster `name`; `configured` when the mesh was
    /// configured with it (metadata is told to its servers, never to an
    /// unconfigured target's).
    fn build(
        &self,
        name: &str,
        resolution: mesh_core::Resolution,
        policy: &ClusterPolicy,
        configured: bool,
    ) -> Entry<B> {
        let parts = &self.inner.parts;
        let build = Build {
            name,
            new_endpoint: &parts.new_endpoint,
            tls_refusals: &self.inner.tls_refusals,
            ring_size_cap: parts.ring_size_cap,
            exchange: parts.exchange.as_ref().filter(|_| configured),
        };
        Entry::new(build, resolution, policy)
    }

    /// The stack of an unrouted request's authority; for an `https`
    /// request, ordinary TLS to it ([`UpstreamTls::web`]: the system's
    /// roots and its host name) unless its policy sets TLS of its own.
    pub(crate) fn target(&self, target: &Authority, https: bool) -> Arc<Entry<B>> {
        let key = ClusterKey::Target(target.clone(), https);
        self.inner.stacks.get_or_build(&key, || {
            let parts = &self.inner.parts;
            let own = parts.policies.get(target);
            let policy = own.unwrap_or(&parts.default_policy);
            let resolution = parts.resolve.resolve(target);
            let name = key.to_string();
            if https && policy.tls.is_none() && policy.tls_matches.is_empty() {
                let mut policy = policy.clone();
                policy.tls = Some(UpstreamTls::web(target.host()));
                return Arc::new(self.build(&name, resolution, &policy, own.is_some()));
            }
            Arc::new(self.build(&name, resolution, policy, own.is_some()))
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
            let policy = cluster.policy_for(request_port);
            Arc::new(self.build(name.as_str(), resolution, policy, true))
        }))
    }
}

/// Whether `uri` is an `https` one.
pub(crate) fn is_https(uri: &http::Uri) -> bool {
    uri.scheme() == Some(&http::uri::Scheme::HTTPS)
}

/// The port of `uri`: as written, else its scheme's.
fn uri_port(uri: &http::Uri) -> u16 {
    uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    })
}

/// Where a [`ToCluster`] sends its requests.
// One per branch of a route, behind the branch's `Arc`: its size costs
// nothing per request.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
enum Destination {
    /// A configured cluster, as the configuration its route came from
    /// defines it.
    Named(Arc<Cluster>),
    /// The cluster of each request's own authority (an authority no
    /// virtual host serves).
    Target,
}

/// Sends each request to one cluster's stack, built on first use. Clones
/// share it (one reference count).
pub(crate) struct ToCluster<B>(Arc<To<B>>);

struct To<B> {
    clusters: Clusters<B>,
    destination: Destination,
    timeout: Option<Option<Duration>>,
    retry: Option<Arc<RetryPolicy>>,
}

impl<B> Clone for ToCluster<B> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<B> fmt::Debug for ToCluster<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToCluster")
            .field("destination", &self.0.destination)
            .field("timeout", &self.0.timeout)
            .finish_non_exhaustive()
    }
}

impl<B> ToCluster<B> {
    /// To `cluster` (as a configuration defines it), with a route's
    /// `timeout` and `retry` in place of the cluster's where given.
    pub(crate) fn named(
        clusters: &Clusters<B>,
        cluster: Arc<Cluster>,
        timeout: Option<Option<Duration>>,
        retry: Option<Arc<RetryPolicy>>,
    ) -> Self {
        Self(Arc::new(To {
            clusters: clusters.clone(),
            destination: Destination::Named(cluster),
            timeout,
            retry,
        }))
    }

    /// To the cluster of each request's authority, with its policy.
    pub(crate) fn target(clusters: &Clusters<B>) -> Self {
        Self(Arc::new(To {
            clusters: clusters.clone(),
            destination: Destination::Target,
            timeout: None,
            retry: None,
        }))
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
        let to = &*self.0;
        let cluster = match &to.destination {
            Destination::Target => match Authority::from_uri(req.uri()) {
                Ok(target) => to.clusters.target(&target, is_https(req.uri())),
                Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
            },
            Destination::Named(cluster) => {
                // The port the request was sent to, before any rewrite.
                let port = match req.extensions().get::<RequestTarget>() {
                    Some(RequestTarget(t)) => t.port(),
                    None => uri_port(req.uri()),
                };
                match to.clusters.named(cluster, port) {
                    Ok(entry) => entry,
                    Err(e) => return Box::pin(std::future::ready(Err(e))),
                }
            }
        };
        let name = match &to.destination {
            Destination::Named(cluster) => Some(&cluster.name),
            Destination::Target => None,
        };
        cluster.call(req, to.timeout, to.retry.as_ref(), name)
    }
}
