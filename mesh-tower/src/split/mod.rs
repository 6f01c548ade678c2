//! Weighted cluster choice (Envoy's `weighted_clusters`, Istio's
//! `route[].weight`, canary releases): each request carrying a
//! [`RouteDecision`] is given a [`SelectedCluster`], picked from its route's
//! destination with probability proportional to each cluster's weight.
//!
//! Draws come from a seeded sequence ([`SplitLayer::with_seed`]), so a test
//! sending N requests sees the same split every run.

use std::task::{Context, Poll};

use mesh_core::route::{ClusterName, Destination};
use tower::{Layer, Service};

use crate::draw::Draws;
use crate::route::RouteDecision;

/// The cluster a request goes to; a request extension read by the client's
/// dispatch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectedCluster(pub ClusterName);

/// Picks each routed request's cluster.
#[derive(Clone, Debug)]
pub struct Split<S> {
    inner: S,
    draws: Draws,
}

impl<S> Split<S> {
    /// Wraps `inner`, drawing at random.
    pub fn new(inner: S) -> Self {
        SplitLayer::new().layer(inner)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<http::Request<B>> for Split<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> S::Future {
        let picked = req
            .extensions()
            .get::<RouteDecision>()
            .and_then(|d| d.route().forwarding())
            .map(|f| match &f.destination {
                Destination::Cluster(c) => c.clone(),
                split => split.pick(self.draws.draw()).clone(),
            });
        if let Some(cluster) = picked {
            req.extensions_mut().insert(SelectedCluster(cluster));
        }
        self.inner.call(req)
    }
}

/// Applies [`Split`]; services it makes share one draw sequence.
#[derive(Clone, Debug)]
pub struct SplitLayer {
    draws: Draws,
}

impl SplitLayer {
    /// Draws at random.
    pub fn new() -> Self {
        Self::seeded(None)
    }

    /// Draws from a sequence fixed by `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self::seeded(Some(seed))
    }

    /// Draws from `seed`'s sequence, or at random without one.
    pub(crate) fn seeded(seed: Option<u64>) -> Self {
        Self {
            draws: Draws::new(seed),
        }
    }
}

impl Default for SplitLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for SplitLayer {
    type Service = Split<S>;

    fn layer(&self, inner: S) -> Split<S> {
        Split {
            inner,
            draws: self.draws.clone(),
        }
    }
}
