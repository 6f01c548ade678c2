/// A circuit breaker refused a request: the cluster already has its maximum
/// of requests in flight and of requests waiting.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "circuit breaker open: {max_requests} requests in flight and {max_pending_requests} pending \
     (max_requests {max_requests}, max_pending_requests {max_pending_requests})"
)]
pub struct Overflow {
    pub(super) max_requests: u32,
    pub(super) max_pending_requests: u32,
}
