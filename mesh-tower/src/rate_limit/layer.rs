use std::sync::Arc;

use mesh_core::policy::LocalRateLimit;
use tower::Layer;

use super::{RateLimit, RateLimiter, RouteLimiters, Source};

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

    /// The limit of each request's route ([`RouteDecision`]); requests
    /// without a route, or whose route has no limit, pass.
    ///
    /// [`RouteDecision`]: crate::route::RouteDecision
    pub fn per_route() -> Self {
        Self {
            source: Source::PerRoute(Arc::new(RouteLimiters::default())),
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
