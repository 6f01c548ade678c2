//! [`EndpointStatus`]: what each endpoint of a balancer is doing now, for
//! the admin's `/clusters` and the mesh's own metrics.

use mesh_core::{Endpoint, Health};

/// Whether an endpoint takes requests, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointState {
    /// It takes requests.
    Healthy,
    /// Outlier detection ejected it; it comes back when the ejection ends.
    Ejected,
    /// Discovery reports it unhealthy.
    Unhealthy,
    /// Discovery reports it draining.
    Draining,
}

impl EndpointState {
    /// Every state, in order.
    pub const ALL: [EndpointState; 4] = [
        EndpointState::Healthy,
        EndpointState::Ejected,
        EndpointState::Unhealthy,
        EndpointState::Draining,
    ];

    /// Its name as a metric label: `healthy`, `ejected`, `unhealthy`,
    /// `draining`.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointState::Healthy => "healthy",
            EndpointState::Ejected => "ejected",
            EndpointState::Unhealthy => "unhealthy",
            EndpointState::Draining => "draining",
        }
    }

    /// Envoy's `health_flags` for it, as its admin `/clusters` prints them.
    pub fn envoy_health_flags(self) -> &'static str {
        match self {
            EndpointState::Healthy => "healthy",
            EndpointState::Ejected => "/failed_outlier_check",
            EndpointState::Unhealthy => "/failed_eds_health",
            EndpointState::Draining => "/eds_status_draining",
        }
    }

    /// The state of an endpoint discovery reports with `health`, which
    /// is ejected or not.
    pub(super) fn of(health: Health, ejected: bool) -> Self {
        match health {
            Health::Unhealthy => EndpointState::Unhealthy,
            Health::Draining => EndpointState::Draining,
            Health::Unknown | Health::Healthy if ejected => EndpointState::Ejected,
            Health::Unknown | Health::Healthy => EndpointState::Healthy,
        }
    }
}

/// One endpoint of a balancer, now.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointStatus {
    /// The endpoint as discovery gave it: address, weight, priority,
    /// locality, labels.
    pub endpoint: Endpoint,
    /// Whether it takes requests.
    pub state: EndpointState,
    /// Requests in flight to it (Envoy's `rq_active`).
    pub active: u32,
    /// Requests sent to it since it joined (`rq_total`).
    pub requests: u64,
    /// Of those, the ones that did not succeed (`rq_error`): a 5xx, a
    /// connection failure, a timeout.
    pub errors: u64,
    /// How many times outlier detection ejected it.
    pub times_ejected: u32,
}
