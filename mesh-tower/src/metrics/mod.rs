//! Istio's standard request metrics, with its names, labels and buckets:
//! `istio_requests_total`, `istio_request_duration_milliseconds`,
//! `istio_request_bytes`, `istio_response_bytes` and, for gRPC,
//! `istio_request_messages_total` and `istio_response_messages_total`,
//! each labelled with
//! the [`reporter`](Reporter), both ends of the edge ([`Peer`]), the
//! destination service, the protocol, the response code and gRPC status,
//! Envoy's response flags and the connection's security policy
//! ([`RequestLabels`]), so that Prometheus, Grafana's Istio dashboards and
//! Kiali read a proxyless workload as they read a sidecar.
//!
//! [`IstioMetricsLayer`] records each request of a server or client when
//! its response body ends; [`MeshState`] reports the mesh's own state
//! (certificates, connections, TLS refusals, xDS) when scraped.
//!
//! Cardinality is bounded: labels hold no path or header, and past
//! [`DEFAULT_MAX_LABEL_SETS`] distinct label sets (or the number given)
//! a request is not recorded but counted in
//! `mesh_metrics_label_sets_overflow_total`. Recording on a steady label
//! set ([`IstioMetrics::record`]) takes one read lock and a hash lookup
//! and allocates nothing. The layer looks a request's series up by labels
//! borrowed from what it holds (the peer's metadata, the principals, the
//! service's [`ServiceLabels`], made once per service), so a request
//! takes a few reference counts, not one per label.

mod body;
mod grpc;
mod histogram;
mod labels;
mod layer;
mod request;
mod state;

use hashbrown::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

pub use body::MeasuredBody;
pub use histogram::EnvoyHistogram;
use labels::LabelsRef;
pub use labels::{GrpcStatus, Peer, Reporter, RequestLabels, ServiceLabels, UNKNOWN};
pub use layer::{IstioMetricsLayer, IstioMetricsService, LocalWorkload, ResponseFuture};
pub use request::CountedBody;
pub use state::{MeshState, encode_family};

/// Envoy's default histogram buckets, which Istio's request duration and
/// size histograms use.
pub const ENVOY_BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// How many distinct label sets are recorded unless told otherwise.
pub const DEFAULT_MAX_LABEL_SETS: usize = 10_000;

type Histograms = Family<RequestLabels, EnvoyHistogram>;

/// One request, as it is recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Recorded {
    /// From its first byte to its response's last.
    pub duration: Duration,
    /// Its size: headers and body.
    pub request_bytes: u64,
    /// Its response's size: headers and body.
    pub response_bytes: u64,
    /// For a gRPC request: the messages it carried.
    pub request_messages: Option<u64>,
    /// For a gRPC request: the messages its response carried.
    pub response_messages: Option<u64>,
}

/// The metrics of one label set.
#[derive(Debug)]
struct Series {
    requests: Counter,
    duration: EnvoyHistogram,
    request_bytes: EnvoyHistogram,
    response_bytes: EnvoyHistogram,
    /// For a gRPC label set.
    request_messages: Option<Counter>,
    /// For a gRPC label set.
    response_messages: Option<Counter>,
}

#[derive(Debug)]
struct Inner {
    requests: Family<RequestLabels, Counter>,
    duration: Histograms,
    request_bytes: Histograms,
    response_bytes: Histograms,
    request_messages: Family<RequestLabels, Counter>,
    response_messages: Family<RequestLabels, Counter>,
    /// Keyed by seeded foldhash, not SipHash: a lookup per request hashes
    /// a dozen short strings.
    series: RwLock<HashMap<RequestLabels, Arc<Series>>>,
    max_label_sets: usize,
    overflow: Counter,
}

/// Istio's request metrics; clones share them.
#[derive(Clone, Debug)]
pub struct IstioMetrics {
    inner: Arc<Inner>,
}

impl Default for IstioMetrics {
    fn default() -> Self {
        Self::with_max_label_sets(DEFAULT_MAX_LABEL_SETS)
    }
}

impl IstioMetrics {
    /// Metrics that record up to `max` distinct label sets.
    pub fn with_max_label_sets(max: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                requests: Family::default(),
                duration: Histograms::default(),
                request_bytes: Histograms::default(),
                response_bytes: Histograms::default(),
                request_messages: Family::default(),
                response_messages: Family::default(),
                series: RwLock::default(),
                max_label_sets: max,
                overflow: Counter::default(),
            }),
        }
    }

    /// Adds the metrics to `registry`, under Istio's names.
    pub fn register(&self, registry: &mut Registry) {
        let inner = &self.inner;
        registry.register("istio_requests", "Requests", inner.requests.clone());
        registry.register(
            "istio_request_duration_milliseconds",
            "Request durations in milliseconds",
            inner.duration.clone(),
        );
        registry.register(
            "istio_request_bytes",
            "Request sizes in bytes, headers and body",
            inner.request_bytes.clone(),
        );
        registry.register(
            "istio_response_bytes",
            "Response sizes in bytes, headers and body",
            inner.response_bytes.clone(),
        );
        registry.register(
            "istio_request_messages",
            "Messages of gRPC requests",
            inner.request_messages.clone(),
        );
        registry.register(
            "istio_response_messages",
            "Messages of gRPC responses",
            inner.response_messages.clone(),
        );
        registry.register(
            "mesh_metrics_label_sets_overflow",
            "Requests not recorded: their label set would have been one too many",
            inner.overflow.clone(),
        );
    }

    /// Records one request of `labels`.
    pub fn record(&self, labels: &RequestLabels, recorded: Recorded) {
        self.record_ref(&labels.borrowed(), recorded);
    }

    /// Records one request of the borrowed `labels`.
    fn record_ref(&self, labels: &LabelsRef<'_>, recorded: Recorded) {
        let Some(series) = self.series(labels) else {
            self.inner.overflow.inc();
            return;
        };
        series.requests.inc();
        series
            .duration
            .observe(recorded.duration.as_secs_f64() * 1000.0);
        series.request_bytes.observe(recorded.request_bytes as f64);
        series
            .response_bytes
            .observe(recorded.response_bytes as f64);
        if let (Some(counter), Some(n)) = (&series.request_messages, recorded.request_messages) {
            counter.inc_by(n);
        }
        if let (Some(counter), Some(n)) = (&series.response_messages, recorded.response_messages) {
            counter.inc_by(n);
        }
    }

    /// The series of `labels`, made if there is room.
    fn series(&self, labels: &LabelsRef<'_>) -> Option<Arc<Series>> {
        let inner = &self.inner;
        let known = inner.series.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(series) = known.get(labels) {
            return Some(series.clone());
        }
        // Full: a new label set is refused without waiting on the lock
        // every request reads.
        if known.len() >= inner.max_label_sets {
            return None;
        }
        drop(known);
        let mut known = inner.series.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(series) = known.get(labels) {
            return Some(series.clone());
        }
        if known.len() >= inner.max_label_sets {
            return None;
        }
        let labels = labels.to_owned_labels();
        let series = Arc::new(Series {
            requests: inner.requests.get_or_create_owned(&labels),
            duration: inner.duration.get_or_create_owned(&labels),
            request_bytes: inner.request_bytes.get_or_create_owned(&labels),
            response_bytes: inner.response_bytes.get_or_create_owned(&labels),
            request_messages: (labels.request_protocol == "grpc")
                .then(|| inner.request_messages.get_or_create_owned(&labels)),
            response_messages: (labels.request_protocol == "grpc")
                .then(|| inner.response_messages.get_or_create_owned(&labels)),
        });
        known.insert(labels, series.clone());
        Some(series)
    }
}

#[cfg(test)]
mod tests;
