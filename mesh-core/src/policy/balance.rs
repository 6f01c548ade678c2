//! Load-balancing policy.

use std::time::Duration;

/// How the balancer picks an endpoint. Endpoint weights are honoured by all.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LoadBalancer {
    /// Power of two choices on peak-EWMA latency × outstanding requests
    /// (linkerd's default). The default, with [`PeakEwma::default`].
    PeakEwma(PeakEwma),
    /// Power of two choices on outstanding requests (Envoy's
    /// `LEAST_REQUEST` with `choice_count: 2`).
    LeastRequest,
    /// Weighted round robin (Envoy's `ROUND_ROBIN`).
    RoundRobin,
    /// Weighted random (Envoy's `RANDOM`).
    Random,
}

impl Default for LoadBalancer {
    fn default() -> Self {
        LoadBalancer::PeakEwma(PeakEwma::default())
    }
}

/// Peak-EWMA parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeakEwma {
    /// The latency assumed for an endpoint with no observations. Default
    /// 30 ms (linkerd).
    pub default_rtt: Duration,
    /// How fast old observations fade: the time constant of the moving
    /// average. Default 10 s (linkerd).
    pub decay: Duration,
}

impl Default for PeakEwma {
    fn default() -> Self {
        Self {
            default_rtt: Duration::from_millis(30),
            decay: Duration::from_secs(10),
        }
    }
}
