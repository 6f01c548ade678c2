//! Outlier-detection (passive health checking) policy.

use std::time::Duration;

/// When an endpoint is ejected from the balancer, and for how long
/// (Envoy's `outlier_detection`, Istio's `outlierDetection`).
///
/// An endpoint is ejected at once when it reaches a consecutive-error
/// threshold, for `base_ejection_time × times ejected` (capped at
/// `max_ejection_time`), and comes back by itself when that time is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutlierDetection {
    /// Consecutive 5xx responses or upstream failures (connect failure,
    /// reset, timeout) that eject. Default `Some(5)`; `None` disables.
    pub consecutive_5xx: Option<u32>,
    /// Consecutive 502/503/504 responses or upstream failures that eject.
    /// Default `None` (Istio leaves it off).
    pub consecutive_gateway_errors: Option<u32>,
    /// Base ejection time. Default 30 s.
    pub base_ejection_time: Duration,
    /// Longest ejection. Default 300 s.
    pub max_ejection_time: Duration,
    /// Most endpoints ejected at once, as a percentage of the cluster; at
    /// least one endpoint may always be ejected (as Envoy). Default 10.
    pub max_ejection_percent: u32,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        Self {
            consecutive_5xx: Some(5),
            consecutive_gateway_errors: None,
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
        }
    }
}

impl OutlierDetection {
    /// A policy that never ejects.
    pub fn disabled() -> Self {
        Self {
            consecutive_5xx: None,
            consecutive_gateway_errors: None,
            ..Self::default()
        }
    }

    /// How long the `times`-th ejection (1-based) lasts.
    pub fn ejection_time(&self, times: u32) -> Duration {
        self.base_ejection_time
            .saturating_mul(times.max(1))
            .min(self.max_ejection_time.max(self.base_ejection_time))
    }
}
