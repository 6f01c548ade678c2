//! [`EnvoyHistogram`]: a histogram over Envoy's default buckets that
//! records with atomics alone. prometheus-client's own takes a write lock
//! per observation, and each request makes three on every series it
//! shares with the other worker threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

use super::ENVOY_BUCKETS;

/// Envoy's buckets and `+Inf`.
const BUCKETS: usize = ENVOY_BUCKETS.len() + 1;

/// A histogram over [`ENVOY_BUCKETS`]; clones share it.
#[derive(Clone, Debug, Default)]
pub struct EnvoyHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The sum, as `f64` bits.
    sum: AtomicU64,
    count: AtomicU64,
    /// Each bucket's own observations (not cumulative).
    buckets: [AtomicU64; BUCKETS],
}

impl EnvoyHistogram {
    /// Records `v`.
    pub fn observe(&self, v: f64) {
        let inner = &*self.inner;
        let bucket = ENVOY_BUCKETS.partition_point(|bound| *bound < v);
        inner.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        inner.count.fetch_add(1, Ordering::Relaxed);
        let _ = inner
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    /// The sum, the count and each bucket's upper bound (`f64::MAX` for
    /// `+Inf`) with its own observations. Read while others record, the
    /// three may be an observation apart.
    pub fn get(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let inner = &*self.inner;
        let buckets = ENVOY_BUCKETS
            .iter()
            .copied()
            .chain([f64::MAX])
            .zip(&inner.buckets)
            .map(|(bound, n)| (bound, n.load(Ordering::Relaxed)))
            .collect();
        let sum = f64::from_bits(inner.sum.load(Ordering::Relaxed));
        (sum, inner.count.load(Ordering::Relaxed), buckets)
    }
}

impl TypedMetric for EnvoyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for EnvoyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.get();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_are_written_as_prometheus_clients_own() {
        let ours = EnvoyHistogram::default();
        let theirs = prometheus_client::metrics::histogram::Histogram::new(ENVOY_BUCKETS);
        for v in [0.0, 0.5, 0.7, 1.0, 7.0, 3_600_000.0, 3_600_001.0, 1e12] {
            ours.observe(v);
            theirs.observe(v);
        }
        let text = |register: &dyn Fn(&mut prometheus_client::registry::Registry)| {
            let mut registry = prometheus_client::registry::Registry::default();
            register(&mut registry);
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
            out
        };
        let ours = text(&|r| r.register("d", "D", ours.clone()));
        let theirs = text(&|r| r.register("d", "D", theirs.clone()));
        assert_eq!(ours, theirs);
        assert!(ours.contains("d_bucket{le=\"+Inf\"} 8\n"), "{ours}");
        assert!(ours.contains("d_count 8\n"), "{ours}");
    }
}
