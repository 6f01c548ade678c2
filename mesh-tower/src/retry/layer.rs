use std::sync::Arc;

use mesh_core::policy::RetryPolicy;
use tower::Layer;

use super::{Budget, Retry};

/// Applies [`Retry`]; every service it wraps shares one retry budget.
#[derive(Clone, Debug)]
pub struct RetryLayer {
    policy: Arc<RetryPolicy>,
    budget: Arc<Budget>,
}

impl RetryLayer {
    /// A layer applying `policy`, with a budget of its own.
    pub fn new(policy: RetryPolicy) -> Self {
        let budget = Arc::new(Budget::new(policy.budget));
        Self {
            policy: Arc::new(policy),
            budget,
        }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry {
            inner,
            policy: self.policy.clone(),
            budget: self.budget.clone(),
        }
    }
}
