//! The metrics' exposition read by Prometheus' own Python client parser
//! (`prometheus_client`, pinned in `.ci/run`), so the format is proven
//! valid, not only similar: every family parses, with Istio's names, its
//! labels and the values recorded.

use std::time::Duration;

use mesh_core::telemetry::WorkloadMetadata;
use mesh_tower::metrics::{IstioMetrics, Peer, Recorded, Reporter, RequestLabels};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use support::python::{has, run};

mod support;

/// Prints each sample of the OpenMetrics text on stdin as a JSON line:
/// name, labels, value.
const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.argv[1]):
    for s in family.samples:
        print(json.dumps({"family": family.name, "type": family.type, "name": s.name,
                          "labels": s.labels, "value": s.value}, sort_keys=True))
"#;

#[test]
fn the_exposition_parses_with_prometheus_own_parser() {
    if !has("prometheus_client", "the metrics format test") {
        return;
    }
    let metrics = IstioMetrics::default();
    let ratings = WorkloadMetadata::from_labels(
        "ratings-v1-0",
        "default",
        "ratings-v1",
        &[("app".to_owned(), "ratings".to_owned())].into(),
    );
    let labels = RequestLabels {
        request_protocol: "grpc",
        grpc_response_status: mesh_tower::metrics::GrpcStatus(Some(14)),
        connection_security_policy: "none",
        ..RequestLabels::edge(
            Reporter::Destination,
            Peer::default(),
            Peer {
                metadata: Some(&ratings),
                principal: None,
            },
        )
        .service("ratings.default.svc.cluster.local")
    };
    for ms in [3, 300] {
        let recorded = Recorded {
            duration: Duration::from_millis(ms),
            request_bytes: 64,
            response_bytes: 128,
            request_messages: Some(1),
            response_messages: Some(3),
        };
        metrics.record(&labels, recorded);
    }
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    encode(&mut text, &registry).unwrap();

    let samples: Vec<serde_json::Value> = run(PARSE, &[&text])
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sample = |name: &str, le: Option<&str>| {
        samples
            .iter()
            .find(|s| s["name"] == name && le.is_none_or(|le| s["labels"]["le"] == le))
            .unwrap_or_else(|| panic!("no {name} in {samples:?}"))
            .clone()
    };
    let total = sample("istio_requests_total", None);
    assert_eq!(total["type"], "counter");
    assert_eq!(total["family"], "istio_requests");
    assert_eq!(total["value"], 2.0);
    let l = &total["labels"];
    assert_eq!(l["reporter"], "destination");
    assert_eq!(l["source_workload"], "unknown");
    assert_eq!(l["destination_workload"], "ratings-v1");
    assert_eq!(l["destination_service_name"], "ratings");
    assert_eq!(l["request_protocol"], "grpc");
    assert_eq!(l["grpc_response_status"], "14");
    assert_eq!(l["response_flags"], "-");
    let bucket =
        |le| sample("istio_request_duration_milliseconds_bucket", Some(le))["value"].clone();
    assert_eq!(bucket("5.0"), 1.0);
    assert_eq!(bucket("250.0"), 1.0);
    assert_eq!(bucket("500.0"), 2.0);
    assert_eq!(bucket("+Inf"), 2.0);
    assert_eq!(sample("istio_response_bytes_sum", None)["value"], 256.0);
    let messages = sample("istio_response_messages_total", None);
    assert_eq!(messages["type"], "counter");
    assert_eq!(messages["value"], 6.0);
    let messages = sample("istio_request_messages_total", None);
    assert_eq!(messages["type"], "counter");
    assert_eq!(messages["value"], 2.0);
    assert_eq!(
        sample("mesh_metrics_label_sets_overflow_total", None)["value"],
        0.0
    );
}
