//! Circuit-breaker thresholds.

/// Per-cluster limits beyond which requests fail fast instead of queueing
/// (Envoy's `circuit_breakers`, Istio's `connectionPool.http`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CircuitBreakers {
    /// Requests in flight at once (`http2MaxRequests`). Default
    /// `u32::MAX`, as Istio sets it.
    pub max_requests: u32,
    /// Requests allowed to wait for a free request slot
    /// (`http1MaxPendingRequests`); one more fails at once with an overflow.
    /// Default `u32::MAX`, as Istio sets it.
    pub max_pending_requests: u32,
}

impl Default for CircuitBreakers {
    fn default() -> Self {
        Self {
            max_requests: u32::MAX,
            max_pending_requests: u32::MAX,
        }
    }
}
