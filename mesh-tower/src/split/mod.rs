//! Weighted cluster choice (Envoy's `weighted_clusters`, Istio's
//! `route[].weight`, canary releases): each request goes to one of a
//! route's branches, one per cluster, with probability proportional to
//! the cluster's weight. The branches are built with the route's stack;
//! the one that sends to a cluster names it on the response
//! ([`SelectedCluster`]).
//!
//! Draws come from a seeded sequence ([`SplitLayer::with_seed`]), so a test
//! sending N requests sees the same split every run.

mod layer;

use std::sync::Arc;
use std::task::{Context, Poll};

use mesh_core::route::ClusterName;
use tower::util::Oneshot;
use tower::{Service, ServiceExt};

pub use layer::SplitLayer;

use crate::draw::Draws;

/// The cluster that served a request; a response extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectedCluster(pub ClusterName);

/// Sends each request to one branch, by weight.
#[derive(Debug)]
pub struct Split<S> {
    branches: Arc<[(u32, S)]>,
    total: u64,
    draws: Draws,
}

impl<S> Clone for Split<S> {
    fn clone(&self) -> Self {
        Self {
            branches: self.branches.clone(),
            total: self.total,
            draws: self.draws.clone(),
        }
    }
}

impl<S> Split<S> {
    /// `branches` with their weights, drawing at random. A branch of
    /// weight 0 gets nothing; if every weight is 0, the last gets all.
    pub fn new(branches: impl IntoIterator<Item = (u32, S)>) -> Self {
        SplitLayer::new().split(branches)
    }

    /// The branch for a request whose draw is `draw`, as
    /// [`Destination::pick`](mesh_core::route::Destination::pick) picks.
    fn pick(&self, draw: u64) -> &S {
        let mut at = draw % self.total.max(1);
        for (weight, branch) in self.branches.iter() {
            if at < u64::from(*weight) {
                return branch;
            }
            at -= u64::from(*weight);
        }
        &self.branches[self.branches.len() - 1].1
    }
}

impl<S, Req> Service<Req> for Split<S>
where
    S: Service<Req> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Oneshot<S, Req>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // Each request readies the branch it goes to.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        self.pick(self.draws.draw()).clone().oneshot(req)
    }
}

#[cfg(test)]
mod tests {
    use mesh_core::route::{Destination, WeightedCluster};

    use super::*;

    #[tokio::test]
    async fn picks_as_the_destination_does_and_by_weight() {
        let weights = [("a", 80), ("none", 0), ("b", 20)];
        let split = SplitLayer::with_seed(3).split(weights.map(|(name, w)| {
            (
                w,
                tower::service_fn(move |_: ()| async move { Ok::<_, ()>(name) }),
            )
        }));
        let destination = Destination::Weighted(
            weights
                .iter()
                .map(|(name, weight)| WeightedCluster {
                    name: (*name).into(),
                    weight: *weight,
                })
                .collect(),
        );
        let draws = Draws::new(Some(3));
        let mut counts = std::collections::HashMap::new();
        for _ in 0..1000 {
            let got = split.clone().oneshot(()).await.unwrap();
            assert_eq!(got, destination.pick(draws.draw()).as_str());
            *counts.entry(got).or_insert(0) += 1;
        }
        assert!(!counts.contains_key("none"));
        assert!((750..850).contains(&counts["a"]), "{counts:?}");
    }
}
