//! What clients may make an ADS server hold: streams at once, and names
//! subscribed per stream. Past a limit the stream is refused (or ended)
//! with `RESOURCE_EXHAUSTED` naming the limit, rather than the server's
//! memory growing with whatever clients ask.

/// Bounds on the server's state, each a count clients choose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Streams open at once, both protocols together. Default 10,000.
    pub max_streams: usize,
    /// Names one stream may subscribe to, all types together (wildcards
    /// count for nothing). Default 50,000: a proxyless client asks for
    /// four or more per target it sends requests to.
    pub max_subscriptions: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_streams: 10_000,
            max_subscriptions: 50_000,
        }
    }
}

/// A limit a stream would go past; the client gets `RESOURCE_EXHAUSTED`
/// with this text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {limit} is {max}")]
pub struct LimitReached {
    what: String,
    limit: &'static str,
    max: usize,
}

impl LimitReached {
    /// `what` would go past the limit named `limit`, whose value is `max`.
    pub fn new(what: impl Into<String>, limit: &'static str, max: usize) -> Self {
        Self {
            what: what.into(),
            limit,
            max,
        }
    }

    /// The limit's name, e.g. `max_streams`.
    pub fn limit(&self) -> &'static str {
        self.limit
    }
}

impl From<LimitReached> for tonic::Status {
    fn from(e: LimitReached) -> Self {
        tonic::Status::resource_exhausted(e.to_string())
    }
}
