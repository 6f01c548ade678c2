//! Failing closed where TLS is asked for and cannot be dialled: a request
//! that should travel encrypted fails with the reason rather than go out
//! in plain text (as gRPC's xDS client fails a cluster whose security it
//! cannot set up). The client dials the mesh's mutual TLS when it has a
//! workload identity ([`MeshTlsConnector`](crate::tls::MeshTlsConnector)),
//! and TLS with files of a cluster's own that check out, or the system's
//! roots ([`MeshTlsConnector::with_files`](crate::tls::MeshTlsConnector::with_files):
//! an `https://` target's cluster gets that unless its policy says other).
//!
//! - An endpoint its cluster says must be reached over TLS (a
//!   DestinationRule's `ISTIO_MUTUAL`, `SIMPLE` or `MUTUAL`; an xDS
//!   `UpstreamTlsContext`, whole or by `transport_socket_matches`) that the
//!   client cannot dial gets a [`TlsRequired`] service instead of
//!   connections: every request fails
//!   with [`TlsUnavailable::Cluster`], is counted per cluster in
//!   [`TlsRefusals`], and the first of each cluster is logged.
//! - An `https://` request to an endpoint reached in plain text (a
//!   configured cluster without TLS) is refused by
//!   [`HttpEndpoint`](super::HttpEndpoint) with [`TlsUnavailable::Target`]
//!   before any connection is made.

use std::collections::BTreeMap;
use std::future::{Ready, ready};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper::body::Incoming;
use tower::Service;

use crate::BoxError;

/// A request that needed TLS this client cannot give it; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsUnavailable {
    /// The cluster's policy asks for TLS to the endpoint that the client
    /// cannot dial.
    #[error("cluster {cluster}: TLS required, and {reason}; the request is not sent in plain text")]
    Cluster {
        /// The cluster.
        cluster: String,
        /// Why the client cannot dial it.
        reason: Arc<str>,
    },
    /// The request's scheme is `https`, and its cluster reaches the
    /// endpoint in plain text.
    #[error(
        "https://{authority}: the request's cluster reaches its endpoints in plain text \
         (give the cluster TLS); the request is not sent in plain text"
    )]
    Target {
        /// The request's authority.
        authority: String,
    },
}

/// How many requests each cluster refused for want of TLS: an entry for
/// each cluster that refused one. Clones share the counts.
#[derive(Clone, Debug, Default)]
pub struct TlsRefusals {
    counts: Arc<Mutex<BTreeMap<Arc<str>, u64>>>,
}

impl TlsRefusals {
    /// Counts one refusal of `cluster`; whether it was its first.
    fn count(&self, cluster: &Arc<str>) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(cluster.clone()).or_default();
        *n += 1;
        *n == 1
    }

    /// Refused requests by cluster.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.iter().map(|(c, n)| (c.to_string(), *n)).collect()
    }
}

/// The service of an endpoint that must be reached over TLS the client
/// cannot dial: refuses every request.
#[derive(Clone, Debug)]
pub struct TlsRequired {
    cluster: Arc<str>,
    reason: Arc<str>,
    refusals: TlsRefusals,
}

impl TlsRequired {
    /// Refuses the requests of `cluster` for `reason` (why the client
    /// cannot dial it), counted in `refusals`.
    pub fn new(cluster: &str, reason: &str, refusals: &TlsRefusals) -> Self {
        Self {
            cluster: cluster.into(),
            reason: reason.into(),
            refusals: refusals.clone(),
        }
    }
}

impl<B> Service<http::Request<B>> for TlsRequired {
    type Response = http::Response<Incoming>;
    type Error = BoxError;
    type Future = Ready<Result<http::Response<Incoming>, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<B>) -> Self::Future {
        let error = TlsUnavailable::Cluster {
            cluster: self.cluster.to_string(),
            reason: self.reason.clone(),
        };
        if self.refusals.count(&self.cluster) {
            tracing::warn!(cluster = %self.cluster, %error, "refusing requests that need TLS");
        }
        ready(Err(error.into()))
    }
}

#[cfg(test)]
mod tests {
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn every_request_is_refused_and_counted_by_cluster() {
        let refusals = TlsRefusals::default();
        let why = "this client has no workload identity to dial it with";
        let a = TlsRequired::new("outbound|9080||reviews", why, &refusals);
        // A second stack of the same cluster (rebuilt on a new config)
        // shares its count.
        let a_again = TlsRequired::new("outbound|9080||reviews", why, &refusals);
        for service in [a.clone(), a, a_again] {
            let err = service.oneshot(http::Request::new(())).await.unwrap_err();
            assert_eq!(
                err.to_string(),
                "cluster outbound|9080||reviews: TLS required, and this client has no \
                 workload identity to dial it with; the request is not sent in plain text"
            );
        }
        let _unused = TlsRequired::new("ratings", why, &refusals);
        assert_eq!(
            refusals.counts(),
            [("outbound|9080||reviews".to_owned(), 3)].into()
        );
    }
}
