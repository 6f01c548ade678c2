//! [`ClientStatus`]: what a [`MeshClient`](super::MeshClient) holds now,
//! cluster by cluster and endpoint by endpoint, with the counters of its
//! retries, circuit breakers, rate limits and ejections: what the admin's
//! `/clusters` prints and the mesh's own metrics report.

use std::collections::BTreeMap;

use mesh_core::policy::CircuitBreakers;

use crate::balance::EndpointStatus;

/// A client's clusters and routes, now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientStatus {
    /// The cluster stacks built now, by name.
    pub clusters: Vec<ClusterStatus>,
    /// Requests each route's local rate limit refused, by route
    /// (`LISTENER/VIRTUAL_HOST/ROUTE`, the last two as indices; `-` for
    /// the configuration's own table), for routes with one.
    pub route_rate_limited: BTreeMap<String, u64>,
    /// Requests refused because the TLS their cluster asks for could not
    /// be dialled, by cluster.
    pub tls_refusals: BTreeMap<String, u64>,
}

/// One cluster stack, now. Its counters start at 0 when it is built (again,
/// after its definition changed).
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterStatus {
    /// Its name: a configured cluster's (with the port of the service it
    /// was built for), or the authority of unrouted requests.
    pub name: String,
    /// Its endpoints.
    pub endpoints: Vec<EndpointStatus>,
    /// Why discovery failed, while it has.
    pub resolve_error: Option<String>,
    /// Its circuit breaker's thresholds.
    pub circuit_breakers: CircuitBreakers,
    /// Requests refused because its circuit breaker was full.
    pub circuit_breaker_overflows: u64,
    /// Requests its own local rate limit refused.
    pub rate_limited: u64,
    /// Retries taken.
    pub retries: u64,
    /// Retries its retry budget refused.
    pub retry_budget_exhausted: u64,
    /// Ejections outlier detection made.
    pub ejections: u64,
}

/// A client read from without knowing its body type: what the admin
/// and the mesh's metrics hold of each client.
#[derive(Clone)]
pub(crate) struct ClientReader {
    status: std::sync::Arc<dyn Fn() -> ClientStatus + Send + Sync>,
    config: std::sync::Arc<dyn Fn() -> std::sync::Arc<mesh_core::MeshConfig> + Send + Sync>,
}

impl ClientReader {
    pub(crate) fn new<B: 'static>(client: &super::MeshClient<B>) -> Self {
        let (a, b) = (client.clone(), client.clone());
        Self {
            status: std::sync::Arc::new(move || a.status()),
            config: std::sync::Arc::new(move || b.config()),
        }
    }

    /// The client's [`status`](super::MeshClient::status).
    pub(crate) fn status(&self) -> ClientStatus {
        (self.status)()
    }

    /// The configuration the client routes by.
    pub(crate) fn config(&self) -> std::sync::Arc<mesh_core::MeshConfig> {
        (self.config)()
    }
}
