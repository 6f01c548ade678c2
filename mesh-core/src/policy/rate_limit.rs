//! Local rate limits: token buckets kept by each client, per route or per
//! cluster, in the shape of linkerd's `HTTPLocalRateLimitPolicy` (a total
//! limit, a limit per client identity, and overrides for named identities)
//! and Envoy's `local_ratelimit` filter.

use std::sync::Arc;

/// Requests allowed per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Requests per second; also the burst (a full bucket).
    pub requests_per_second: u32,
}

/// A local rate-limit policy. Every limit that applies must admit a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalRateLimit {
    /// A limit on all requests together.
    pub total: Option<Limit>,
    /// A limit for each client identity on its own.
    pub identity: Option<Limit>,
    /// Limits for named identities, in place of `identity`.
    pub overrides: Vec<Override>,
}

/// A limit for some identities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    /// The limit.
    pub limit: Limit,
    /// The identities (SPIFFE IDs or names) it applies to.
    pub identities: Vec<Arc<str>>,
}

/// A limit of zero requests per second: nothing would ever pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a rate limit must allow at least 1 request per second")]
pub struct ZeroRateLimit;

impl LocalRateLimit {
    /// Checks that every limit allows at least one request per second.
    pub fn validate(&self) -> Result<(), ZeroRateLimit> {
        let limits = self
            .total
            .iter()
            .chain(&self.identity)
            .chain(self.overrides.iter().map(|o| &o.limit));
        match limits.into_iter().any(|l| l.requests_per_second == 0) {
            true => Err(ZeroRateLimit),
            false => Ok(()),
        }
    }

    /// The per-identity limit of `identity`.
    pub fn limit_for(&self, identity: &str) -> Option<Limit> {
        self.overrides
            .iter()
            .find(|o| o.identities.iter().any(|i| &**i == identity))
            .map(|o| o.limit)
            .or(self.identity)
    }
}
