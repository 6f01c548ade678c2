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
    /// The endpoints found; a lookup that finds none is a negative
    /// [`Failure`].
    pub(crate) endpoints: Vec<Endpoint>,
    /// The smallest TTL among the records the endpoints came from.
    pub(crate) ttl: Duration,
}

/// Why a lookup found no endpoints, in words for a [`mesh_core::ResolveError`]
/// and for the log, and whether DNS said so or could not be asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    reason: String,
    negative: bool,
}

impl Failure {
    /// No answer was had: a timeout, a server failure, a refusal, no
    /// server reachable. What was known before still holds.
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            negative: false,
        }
    }

    /// DNS answered that there is nothing: no such name (NXDOMAIN), or no
    /// records of the type asked (NOERROR with an empty answer). What was
    /// known before no longer holds.
    pub(crate) fn negative(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            negative: true,
        }
    }

    /// Whether DNS answered that the name has no records.
    pub(crate) fn is_negative(&self) -> bool {
        self.negative
    }

    /// The same kind of failure, with `reason` in words.
    pub(crate) fn with_reason(self, reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            ..self
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}
