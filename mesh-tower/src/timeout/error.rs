use std::time::Duration;

/// The whole-request timeout elapsed before the response head arrived.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("request timed out after {0:?}")]
pub struct RequestTimeout(pub Duration);
