//! The per-cluster outlier detector and per-endpoint health counters.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mesh_core::Outcome;
use mesh_core::policy::OutlierDetection;
use tokio::time::Instant;

/// One endpoint's consecutive-error counters and ejection state.
#[derive(Debug)]
pub struct EndpointHealth {
    addr: SocketAddr,
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    times_ejected: AtomicU32,
    /// Requests that did not succeed, ever.
    errors: AtomicU64,
    /// Nanoseconds since the detector's epoch until which the endpoint is
    /// ejected; 0 when it never was.
    ejected_until: AtomicU64,
}

impl EndpointHealth {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            consecutive_5xx: AtomicU32::new(0),
            consecutive_gateway: AtomicU32::new(0),
            times_ejected: AtomicU32::new(0),
            errors: AtomicU64::new(0),
            ejected_until: AtomicU64::new(0),
        }
    }

    /// The endpoint's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many times the endpoint has been ejected.
    pub fn times_ejected(&self) -> u32 {
        self.times_ejected.load(Ordering::Relaxed)
    }

    /// How many requests to the endpoint did not succeed (a 5xx, a
    /// connection failure, a timeout), as Envoy's `rq_error` counts them.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Counts an attempt cut short (timed out, or its caller gone) as an
    /// error, without counting it towards an ejection.
    pub(super) fn cut_short(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Decides ejections for one cluster. Shared by the [`Outlier`](super::Outlier)
/// services of its endpoints and by the balancer.
#[derive(Debug)]
pub struct OutlierDetector {
    policy: OutlierDetection,
    epoch: Instant,
    endpoints: Mutex<HashMap<SocketAddr, Arc<EndpointHealth>>>,
    generation: AtomicU64,
    ejections: AtomicU64,
}

impl OutlierDetector {
    /// A detector applying `policy`.
    pub fn new(policy: OutlierDetection) -> Arc<Self> {
        Arc::new(Self {
            policy,
            epoch: Instant::now(),
            endpoints: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            ejections: AtomicU64::new(0),
        })
    }

    /// The policy applied.
    pub fn policy(&self) -> &OutlierDetection {
        &self.policy
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<EndpointHealth>>> {
        // The map holds no invariant a panic elsewhere could break.
        self.endpoints.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The health of the endpoint at `addr`, created on first use.
    pub fn endpoint(&self, addr: SocketAddr) -> Arc<EndpointHealth> {
        self.lock()
            .entry(addr)
            .or_insert_with(|| Arc::new(EndpointHealth::new(addr)))
            .clone()
    }

    /// Keeps only the endpoints in `addrs` (the cluster's current members);
    /// the ejection percentage is counted against them.
    pub fn retain(&self, addrs: &[SocketAddr]) {
        let keep: std::collections::HashSet<_> = addrs.iter().collect();
        self.lock().retain(|a, _| keep.contains(a));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Ejections the detector has made, of any endpoint.
    pub fn ejections(&self) -> u64 {
        self.ejections.load(Ordering::Relaxed)
    }

    /// A number that changes whenever an endpoint is ejected or the member
    /// set changes; the balancer rebuilds its view when it does.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Until when `health`'s endpoint is ejected, if it is ejected at `now`.
    pub fn ejected_until(&self, health: &EndpointHealth, now: Instant) -> Option<Instant> {
        let until = health.ejected_until.load(Ordering::Acquire);
        let until = self.epoch + std::time::Duration::from_nanos(until);
        (until > now).then_some(until)
    }

    /// Records how one request to `health`'s endpoint ended, ejecting it
    /// when it reaches a threshold.
    pub fn record(&self, health: &EndpointHealth, outcome: &Outcome) {
        if outcome.is_success() {
            // Avoid writing shared cache lines on the common path.
            if health.consecutive_5xx.load(Ordering::Relaxed) != 0 {
                health.consecutive_5xx.store(0, Ordering::Relaxed);
            }
            if health.consecutive_gateway.load(Ordering::Relaxed) != 0 {
                health.consecutive_gateway.store(0, Ordering::Relaxed);
            }
            return;
        }
        health.errors.fetch_add(1, Ordering::Relaxed);
        let mut trip = false;
        if outcome.is_5xx()
            && let Some(max) = self.policy.consecutive_5xx
        {
            trip |= health.consecutive_5xx.fetch_add(1, Ordering::AcqRel) + 1 >= max;
        }
        if outcome.is_gateway_error()
            && let Some(max) = self.policy.consecutive_gateway_errors
        {
            trip |= health.consecutive_gateway.fetch_add(1, Ordering::AcqRel) + 1 >= max;
        }
        if trip {
            self.try_eject(health);
        }
    }

    fn try_eject(&self, health: &EndpointHealth) {
        let now = Instant::now();
        let endpoints = self.lock();
        if self.ejected_until(health, now).is_some() {
            return;
        }
        let ejected = endpoints
            .values()
            .filter(|h| self.ejected_until(h, now).is_some())
            .count();
        let max = (endpoints.len() * self.policy.max_ejection_percent as usize / 100).max(1);
        if ejected >= max {
            tracing::debug!(endpoint = %health.addr, ejected, max, "not ejecting: max ejection percent reached");
            return;
        }
        let times = health.times_ejected.fetch_add(1, Ordering::AcqRel) + 1;
        self.ejections.fetch_add(1, Ordering::Relaxed);
        let duration = self.policy.ejection_time(times);
        // Counted from the epoch so that no configured time can overflow.
        let until = now
            .saturating_duration_since(self.epoch)
            .saturating_add(duration);
        health.ejected_until.store(
            u64::try_from(until.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Release,
        );
        health.consecutive_5xx.store(0, Ordering::Relaxed);
        health.consecutive_gateway.store(0, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::AcqRel);
        tracing::info!(endpoint = %health.addr, ?duration, times, "outlier ejected");
    }
}
