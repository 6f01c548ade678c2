//! One lookup of a target: the [`Lookup`] seam between the refresh loop and
//! the DNS client, and what a lookup yields.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use mesh_core::{Authority, Endpoint};

/// Looks a target up once. The refresh loop calls it again when the
/// answer's TTL runs out or after a failure.
pub(crate) trait Lookup: Send + Sync + 'static {
    /// The target's endpoints now, or why there are none.
    fn lookup(&self, target: &Authority) -> impl Future<Output = Result<Answer, Failure>> + Send;
}

/// A successful lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The endpoints found; a lookup that finds none is a [`Failure`].
    pub(crate) endpoints: Vec<Endpoint>,
    /// The smallest TTL among the records the endpoints came from.
    pub(crate) ttl: Duration,
}

/// Why a lookup found no endpoints, in words for a [`mesh_core::ResolveError`]
/// and for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure(String);

impl Failure {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
