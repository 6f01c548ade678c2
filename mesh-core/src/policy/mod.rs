//! Policy values for a cluster (the set of endpoints behind one target), with
//! the defaults Istio gives a service that has no DestinationRule or
//! VirtualService settings, and Envoy's where Istio sets none.
//!
//! Layers take these values as they are; nothing here does I/O.

mod balance;
mod circuit;
mod connection;
mod locality;
#[cfg(feature = "istio")]
pub(crate) use locality::TOPOLOGY_LABELS;
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
};
pub use outlier::OutlierDetection;
pub use rate_limit::{Limit, LocalRateLimit, Override, ZeroRateLimit};
pub use retry::{Backoff, InvalidRetryOn, RetryBudget, RetryOn, RetryPolicy};
pub use tls::{Pem, ServerTls, TlsFiles, TlsVersion, UpstreamTls};

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
    /// TLS towards the endpoints; `None`, the default, is plain text.
    /// `MeshClient` does not dial TLS yet: the control plane writes it for
    /// the xDS clients that do (proxyless gRPC, Envoy).
    pub tls: Option<UpstreamTls>,
}
