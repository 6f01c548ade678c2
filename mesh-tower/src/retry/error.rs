use std::time::Duration;

use crate::BoxError;

/// One attempt ran out of its per-try timeout.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("attempt timed out after {0:?} (per-try timeout)")]
pub struct PerTryTimeout(pub Duration);

/// An attempt failed in a way the policy retries, but the request body was
/// too large to keep a copy of, so it was sent only once.
#[derive(Debug, thiserror::Error)]
#[error("not retried: the request body is larger than the {limit}-byte replay limit")]
pub struct BodyNotReplayable {
    pub(super) limit: usize,
    #[source]
    pub(super) source: BoxError,
}
