//! Policy values for a cluster (the set of endpoints behind one target), with
//! the defaults Istio gives a service that has no DestinationRule or
//! VirtualService settings, and Envoy's where Istio sets none.
//!
//! Layers take these values as they are; nothing here does I/O.

mod balance;
mod circuit;
mod connection;
mod locality;
mod outlier;
mod rate_limit;
mod retry;
mod tls;

use std::time::Duration;

pub use balance::{InvalidLoadBalancer, LoadBalancer, Maglev, PeakEwma, RingHash};
pub use circuit::CircuitBreakers;
pub use connection::{ConnectionPolicy, Protocol};
pub use locality::{
    Distribute, Failover, InvalidLocality, LocalityLb, LocalityPattern, PriorityLabel,
    TOPOLOGY_LABELS,
};
pub use outlier::OutlierDetection;
pub use rate_limit::{Limit, LocalRateLimit, Override, ZeroRateLimit};
pub use retry::{Backoff, InvalidRetryOn, RetryBudget, RetryOn, RetryPolicy};
pub use tls::{Pem, ServerTls, TlsFiles, TlsMatch, TlsVersion, UpstreamTls};

/// Every policy of one cluster.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ClusterPolicy {
    /// How endpoints are picked.
    pub load_balancer: LoadBalancer,
    /// How endpoints are weighed and prioritised by locality for a
    /// client; applied by the control plane that writes its endpoints.
    pub locality: LocalityLb,
    /// Retries (Istio's default retry policy).
    pub retry: RetryPolicy,
    /// Whole-request timeout, covering all attempts and backoff. Istio sets
    /// none by default (`None`); Envoy's route default is 15 s.
    pub timeout: Option<Duration>,
    /// Passive health checking.
    pub outlier: OutlierDetection,
    /// Circuit breakers.
    pub circuit_breakers: CircuitBreakers,
    /// Connections to endpoints.
    pub connection: ConnectionPolicy,
    /// Local rate limit on all requests to the cluster. Default none.
    pub rate_limit: Option<LocalRateLimit>,
    /// TLS towards the endpoints no entry of `tls_matches` matches;
    /// `None`, the default, is plain text. `MeshClient` dials the mesh's
    /// mutual TLS (no `files`) with its workload identity; its requests to
    /// an endpoint whose TLS it cannot dial fail, never going out in plain
    /// text. The control plane writes it for proxyless gRPC and Envoy.
    pub tls: Option<UpstreamTls>,
    /// TLS chosen by endpoint labels, the first match winning, before
    /// `tls` applies (Envoy's `transport_socket_matches`). Default none.
    pub tls_matches: Vec<TlsMatch>,
}

impl ClusterPolicy {
    /// The TLS an endpoint with `labels` must be reached with: the first
    /// of [`tls_matches`](Self::tls_matches) that matches, else
    /// [`tls`](Self::tls); `None` for plain text.
    ///
    /// ```
    /// use mesh_core::policy::{ClusterPolicy, TlsMatch, UpstreamTls};
    /// let policy = ClusterPolicy {
    ///     tls_matches: vec![
    ///         TlsMatch {
    ///             name: "tlsMode-istio".into(),
    ///             criteria: [("tlsMode".into(), "istio".into())].into(),
    ///             tls: Some(UpstreamTls::default()),
    ///         },
    ///         TlsMatch { name: "tlsMode-disabled".into(), ..TlsMatch::default() },
    ///     ],
    ///     ..ClusterPolicy::default()
    /// };
    /// assert!(policy.tls_for(&[("tlsMode".into(), "istio".into())].into()).is_some());
    /// assert!(policy.tls_for(&Default::default()).is_none());
    /// ```
    pub fn tls_for(
        &self,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Option<&UpstreamTls> {
        match self.tls_matches.iter().find(|m| m.matches(labels)) {
            Some(m) => m.tls.as_ref(),
            None => self.tls.as_ref(),
        }
    }
}
