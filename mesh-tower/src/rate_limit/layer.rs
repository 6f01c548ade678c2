use std::sync::Arc;

use mesh_core::policy::LocalRateLimit;
use tower::Layer;

use super::{RateLimit, RateLimiter};

/// Applies [`RateLimit`]: every service it makes takes its tokens from one
/// [`RateLimiter`].
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    limiter: Arc<RateLimiter>,
}

impl RateLimitLayer {
    /// Fresh buckets for `policy`.
    pub fn new(policy: LocalRateLimit) -> Self {
        Self::with_limiter(Arc::new(RateLimiter::new(policy)))
    }

    /// The buckets of `limiter`, shared: a route's limit keeps its tokens
    /// when its stack is rebuilt for a configuration that keeps its policy.
    pub fn with_limiter(limiter: Arc<RateLimiter>) -> Self {
        Self { limiter }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            limiter: self.limiter.clone(),
        }
    }
}
