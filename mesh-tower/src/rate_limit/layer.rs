use std::sync::Arc;

use mesh_core::policy::LocalRateLimit;
use tower::Layer;

use super::{RateLimit, RateLimiter, RouteLimiters, Source};
use crate::route::SharedConfig;

/// Applies [`RateLimit`].
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    source: Source,
}

impl RateLimitLayer {
    /// One set of buckets for every request through the services it makes
    /// (a cluster's limit).
    pub fn new(policy: LocalRateLimit) -> Self {
        Self {
            source: Source::Fixed(Arc::new(RateLimiter::new(policy))),
        }
    }

    /// The limit of each request's route ([`RouteDecision`]), for routes
    /// of `config`; requests without a route, or whose route has no limit,
    /// pass. A route's buckets outlive configuration changes that keep its
    /// policy.
    ///
    /// [`RouteDecision`]: crate::route::RouteDecision
    pub fn per_route(config: SharedConfig) -> Self {
        Self {
            source: Source::PerRoute(Arc::new(RouteLimiters::new(config))),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            source: self.source.clone(),
        }
    }
}
