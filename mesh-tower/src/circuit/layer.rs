use std::sync::Arc;

use tower::Layer;

use super::{CircuitBreaker, Limits};

/// Applies [`CircuitBreaker`]; every service it wraps shares one [`Limits`].
#[derive(Clone, Debug)]
pub struct CircuitBreakerLayer {
    limits: Arc<Limits>,
}

impl CircuitBreakerLayer {
    /// A layer counting against `limits`.
    pub fn new(limits: Arc<Limits>) -> Self {
        Self { limits }
    }
}

impl<S> Layer<S> for CircuitBreakerLayer {
    type Service = CircuitBreaker<S>;

    fn layer(&self, inner: S) -> CircuitBreaker<S> {
        CircuitBreaker::new(inner, self.limits.clone())
    }
}
