//! Circuit breaking: at most `max_requests` requests in flight per cluster
//! and at most `max_pending_requests` waiting for a slot; one more fails at
//! once with [`Overflow`] (HTTP 503 semantics, Envoy's `UO` flag) instead of
//! queueing without bound. Envoy's `circuit_breakers` thresholds, Istio's
//! `connectionPool.http.http2MaxRequests` and `http1MaxPendingRequests`.
//!
//! With both limits at their default (`u32::MAX`, as Istio sets them) the
//! layer costs nothing.

mod error;
mod future;
mod layer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};

use mesh_core::policy::CircuitBreakers;
use tokio::sync::Semaphore;
use tower::Service;

pub use error::Overflow;
pub use future::ResponseFuture;
pub use layer::CircuitBreakerLayer;

use crate::BoxError;

/// The shared state of one cluster's circuit breaker: clones of a
/// [`CircuitBreaker`] built from one `Limits` share its counts.
#[derive(Debug)]
pub struct Limits {
    slots: Option<Arc<Semaphore>>,
    pending: AtomicU32,
    overflows: AtomicU64,
    thresholds: CircuitBreakers,
}

impl Limits {
    /// Limits with the given thresholds.
    pub fn new(thresholds: CircuitBreakers) -> Arc<Self> {
        let slots = (thresholds.max_requests != u32::MAX)
            .then(|| Arc::new(Semaphore::new(thresholds.max_requests as usize)));
        Arc::new(Self {
            slots,
            pending: AtomicU32::new(0),
            overflows: AtomicU64::new(0),
            thresholds,
        })
    }

    /// Requests waiting for a slot now.
    pub fn pending(&self) -> u32 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Requests refused because the limits were full (Envoy's
    /// `upstream_rq_pending_overflow`).
    pub fn overflows(&self) -> u64 {
        self.overflows.load(Ordering::Relaxed)
    }

    /// The thresholds.
    pub fn thresholds(&self) -> &CircuitBreakers {
        &self.thresholds
    }
}

/// Enforces a cluster's [`Limits`].
#[derive(Clone, Debug)]
pub struct CircuitBreaker<S> {
    inner: S,
    limits: Arc<Limits>,
}

impl<S> CircuitBreaker<S> {
    /// Wraps `inner`, counting against `limits`.
    pub fn new(inner: S, limits: Arc<Limits>) -> Self {
        Self { inner, limits }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The limits counted against.
    pub fn limits(&self) -> &Limits {
        &self.limits
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

impl<S, Req> Service<Req> for CircuitBreaker<S>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let Some(slots) = &self.limits.slots else {
            return ResponseFuture::running(self.inner.call(req), None);
        };
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            return ResponseFuture::running(self.inner.call(req), Some(permit));
        }
        let limits = &self.limits;
        let max_pending = limits.thresholds.max_pending_requests;
        let admitted = limits
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max_pending).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            limits.overflows.fetch_add(1, Ordering::Relaxed);
            return ResponseFuture::overflow(Overflow {
                max_requests: limits.thresholds.max_requests,
                max_pending_requests: max_pending,
            });
        }
        // The inner service is always ready in the mesh stack; the clone
        // taken now is called once a slot is free.
        let inner = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, inner);
        ResponseFuture::waiting(slots.clone(), self.limits.clone(), inner, req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tower::ServiceExt;

    fn slow() -> impl Service<u32, Response = u32, Error = BoxError, Future: Send> + Clone {
        tower::service_fn(|n: u32| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, BoxError>(n)
        })
    }

    #[tokio::test(start_paused = true)]
    async fn overflow_fails_fast_and_pending_requests_wait() {
        let limits = Limits::new(CircuitBreakers {
            max_requests: 2,
            max_pending_requests: 1,
        });
        let svc = CircuitBreaker::new(slow(), limits.clone());
        let start = tokio::time::Instant::now();
        let running: Vec<_> = (0..3)
            .map(|n| tokio::spawn(svc.clone().oneshot(n)))
            .collect();
        tokio::task::yield_now().await;
        assert_eq!(limits.pending(), 1);
        let err = svc.clone().oneshot(9).await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::ZERO, "overflow must not wait");
        assert!(err.is::<Overflow>());
        assert_eq!(
            err.to_string(),
            "circuit breaker open: 2 requests in flight and 1 pending (max_requests 2, max_pending_requests 1)"
        );
        for (n, task) in running.into_iter().enumerate() {
            assert_eq!(task.await.unwrap().unwrap(), n as u32);
        }
        // The pending request ran after the first two.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        assert_eq!(limits.pending(), 0);
        assert_eq!(svc.oneshot(7).await.unwrap(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn default_limits_never_overflow() {
        let svc = CircuitBreaker::new(slow(), Limits::new(CircuitBreakers::default()));
        let tasks: Vec<_> = (0..100)
            .map(|n| tokio::spawn(svc.clone().oneshot(n)))
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    }
}
