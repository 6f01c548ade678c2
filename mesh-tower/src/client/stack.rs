//! The stack of one route, built when a configuration is applied:
//!
//! ```text
//! rate_limit ─▶ fault ─▶ mirror ─▶ split ─▶ cluster (timeout ─▶ retry ─▶ circuit ─▶ balance ─▶ …)
//!  (route's)   (route's) (copies)  (weights)
//! ```
//!
//! The rate limit and the fault are there only when the route has them,
//! and the split only when the route splits (over weighted clusters);
//! the mirror copies to the route's mirrors, if any. Each takes the
//! route's values as it is built: nothing is read from the request but
//! the request.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use mesh_core::MeshConfig;
use mesh_core::policy::RetryPolicy;
use mesh_core::route::{ClusterName, Destination, Forward, Route as RouteEntry};
use tower::ServiceBuilder;
use tower::util::{BoxCloneSyncService, Either};

use crate::cluster::{Clusters, ToCluster};
use crate::fault::FaultLayer;
use crate::mirror::{DEFAULT_TIMEOUT, MirrorLayer};
use crate::rate_limit::{RateLimitLayer, RateLimiter};
use crate::route::{RouteKey, Routes};
use crate::split::SplitLayer;
use crate::{BoxError, ResponseBody};

/// One route's whole stack.
pub(super) type RouteService<B> =
    BoxCloneSyncService<http::Request<B>, http::Response<ResponseBody>, BoxError>;

/// What route stacks are built from, shared by every route of a client:
/// its clusters, and the draws and bounds of its faults, splits and
/// mirrors.
pub(super) struct Stacks<B> {
    pub(super) clusters: Clusters<B>,
    pub(super) fault: FaultLayer,
    pub(super) split: SplitLayer,
    pub(super) mirror: MirrorLayer<()>,
}

impl<B> Stacks<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    /// The stacks of every route of `config`, after those of `previous`
    /// if any (whose unchanged listeners keep theirs, see
    /// [`Routes::rebuild`]). A
    /// route's rate limit keeps the buckets it had in `limiters` (the last
    /// configuration's, by route) when its policy is the same; the
    /// limiters now are returned.
    pub(super) fn routes(
        &self,
        config: Arc<MeshConfig>,
        previous: Option<&Routes<RouteService<B>>>,
        limiters: &HashMap<RouteKey, Arc<RateLimiter>>,
    ) -> (Routes<RouteService<B>>, HashMap<RouteKey, Arc<RateLimiter>>) {
        let kept = RefCell::new(HashMap::new());
        let defined = config.clone();
        let make = |key: &RouteKey, route: &RouteEntry, forward: &Forward| {
            let limiter = route.rate_limit.as_ref().map(|policy| {
                let limiter = limiters
                    .get(key)
                    .filter(|l| l.policy() == policy)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(RateLimiter::new(policy.clone())));
                kept.borrow_mut().insert(key.clone(), limiter.clone());
                limiter
            });
            self.route(&defined, route, forward, limiter)
        };
        // A route kept whole keeps its limiter.
        let keep = |key: &RouteKey, _: &RouteEntry| {
            if let Some(limiter) = limiters.get(key) {
                kept.borrow_mut().insert(key.clone(), limiter.clone());
            }
        };
        let routes = match previous {
            Some(previous) => Routes::rebuild(config, previous, make, keep),
            None => Routes::build(config, make),
        };
        (routes, kept.into_inner())
    }

    /// The stack of `route`, which forwards as `forward` says.
    fn route(
        &self,
        config: &MeshConfig,
        route: &RouteEntry,
        forward: &Forward,
        limiter: Option<Arc<RateLimiter>>,
    ) -> RouteService<B> {
        let to = |name: &ClusterName, timeout, retry| {
            // The table was checked against the clusters when the
            // configuration was made: every cluster it names is defined.
            let cluster = config
                .shared_cluster(name)
                .expect("a route's cluster is defined");
            ToCluster::named(&self.clusters, cluster.clone(), timeout, retry)
        };
        let branch = |name: &ClusterName| to(name, forward.timeout, forward.retry.clone());
        let clusters = match &forward.destination {
            Destination::Cluster(name) => Either::Left(branch(name)),
            Destination::Weighted(split) => Either::Right(
                self.split
                    .split(split.iter().map(|w| (w.weight, branch(&w.name)))),
            ),
        };
        // Copies go once, within the route's timeout or Envoy's default.
        let copy_timeout = forward.timeout.flatten().unwrap_or(DEFAULT_TIMEOUT);
        let copies = forward.mirrors.iter().map(|m| {
            let copy = to(&m.cluster, Some(Some(copy_timeout)), Some(one_attempt()));
            (m.percent, copy)
        });
        let stack = ServiceBuilder::new()
            .option_layer(limiter.map(RateLimitLayer::with_limiter))
            .option_layer(route.fault.clone().map(|f| self.fault.policy(f)))
            .layer(self.mirror.mirrors(copies, copy_timeout))
            .service(clusters);
        BoxCloneSyncService::new(stack)
    }
}

/// The retry policy of a mirrored copy: one attempt.
fn one_attempt() -> Arc<RetryPolicy> {
    static ONCE: std::sync::OnceLock<Arc<RetryPolicy>> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        Arc::new(RetryPolicy {
            num_retries: 0,
            ..RetryPolicy::default()
        })
    })
    .clone()
}
