//! Per-endpoint load: requests in flight and the peak-EWMA latency estimate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use tokio::time::Instant;

/// Peak-EWMA parameters in nanoseconds, as the balancer uses them.
#[derive(Debug, Clone, Copy)]
pub(super) struct EwmaParams {
    pub(super) default_rtt_ns: f64,
    pub(super) decay_ns: f64,
}

/// Load of one endpoint, updated without locks. Racing updates of the
/// estimate may lose one observation, which a moving average tolerates.
#[derive(Debug)]
pub(super) struct Load {
    pending: AtomicU32,
    /// Requests sent to the endpoint, ever.
    total: AtomicU64,
    /// The latency estimate in nanoseconds, as `f64` bits.
    rtt_ns: AtomicU64,
    /// When the estimate was last updated, in nanoseconds since `epoch`.
    stamp_ns: AtomicU64,
    epoch: Instant,
}

impl Load {
    pub(super) fn new(epoch: Instant, params: EwmaParams) -> Self {
        Self {
            pending: AtomicU32::new(0),
            total: AtomicU64::new(0),
            rtt_ns: AtomicU64::new(params.default_rtt_ns.to_bits()),
            stamp_ns: AtomicU64::new(since(epoch, Instant::now())),
            epoch,
        }
    }

    pub(super) fn pending(&self) -> u32 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Requests sent to the endpoint since it joined the balancer.
    pub(super) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The peak-EWMA cost: the latency estimate, decayed towards zero for the
    /// time since it was last updated (so an idle endpoint is tried again),
    /// times requests in flight plus one.
    pub(super) fn peak_ewma_cost(&self, now: Instant, params: EwmaParams) -> f64 {
        let rtt = f64::from_bits(self.rtt_ns.load(Ordering::Relaxed));
        let elapsed = since(self.epoch, now).saturating_sub(self.stamp_ns.load(Ordering::Relaxed));
        let decayed = rtt * (-(elapsed as f64) / params.decay_ns).exp();
        decayed * f64::from(self.pending() + 1)
    }

    /// Records one observed latency: a higher one replaces the estimate at
    /// once (the "peak"), a lower one is blended in by the time since the
    /// last update.
    pub(super) fn observe(&self, rtt: std::time::Duration, now: Instant, params: EwmaParams) {
        let rtt = rtt.as_nanos() as f64;
        let now_ns = since(self.epoch, now);
        let estimate = f64::from_bits(self.rtt_ns.load(Ordering::Relaxed));
        let next = if rtt > estimate {
            rtt
        } else {
            let elapsed = now_ns.saturating_sub(self.stamp_ns.load(Ordering::Relaxed));
            let decay = (-(elapsed as f64) / params.decay_ns).exp();
            estimate * decay + rtt * (1.0 - decay)
        };
        self.rtt_ns.store(next.to_bits(), Ordering::Relaxed);
        self.stamp_ns.store(now_ns, Ordering::Relaxed);
    }

    /// Counts a request in flight until the returned guard is dropped.
    pub(super) fn start(self: &Arc<Self>) -> InFlight {
        self.pending.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        InFlight {
            load: self.clone(),
            start: Instant::now(),
        }
    }
}

fn since(epoch: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

/// A request in flight to one endpoint.
#[derive(Debug)]
pub(super) struct InFlight {
    load: Arc<Load>,
    start: Instant,
}

/// How much slower than the default latency a failed request counts, as
/// Finagle's and linkerd's peak-EWMA balancers penalize failures.
const FAILURE_PENALTY: f64 = 10.0;

impl InFlight {
    /// Records the request's latency (when the response head arrived).
    pub(super) fn observe(&self, params: EwmaParams) {
        let now = Instant::now();
        self.load.observe(now - self.start, now, params);
    }

    /// Records a failed request (no connection, a reset): as a latency of
    /// [`FAILURE_PENALTY`] times the default, or what it took if longer,
    /// so that the endpoint's cost rises at once and decays back as for
    /// any peak.
    pub(super) fn penalize(&self, params: EwmaParams) {
        let now = Instant::now();
        let penalty =
            std::time::Duration::from_nanos((params.default_rtt_ns * FAILURE_PENALTY) as u64);
        self.load
            .observe((now - self.start).max(penalty), now, params);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.load.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const P: EwmaParams = EwmaParams {
        default_rtt_ns: 30e6,
        decay_ns: 10e9,
    };

    #[tokio::test(start_paused = true)]
    async fn peaks_then_decays() {
        let load = Arc::new(Load::new(Instant::now(), P));
        let now = Instant::now();
        assert_eq!(load.peak_ewma_cost(now, P), 30e6);
        load.observe(Duration::from_millis(100), now, P);
        assert_eq!(
            load.peak_ewma_cost(now, P),
            100e6,
            "a peak replaces the estimate"
        );
        let guard = load.start();
        assert_eq!(
            load.peak_ewma_cost(now, P),
            200e6,
            "cost grows with requests in flight"
        );
        drop(guard);
        tokio::time::advance(Duration::from_secs(10)).await;
        let later = load.peak_ewma_cost(Instant::now(), P);
        assert!((later - 100e6 / std::f64::consts::E).abs() < 1e3, "{later}");
        load.observe(Duration::from_millis(1), Instant::now(), P);
        let blended = load.peak_ewma_cost(Instant::now(), P);
        assert!(blended < 100e6 && blended > 1e6, "{blended}");
    }
}
