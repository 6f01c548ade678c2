use std::collections::BTreeMap;

use mesh_core::telemetry::WorkloadMetadata;
use prometheus_client::encoding::text::encode;

use super::*;

fn workload(name: &str, namespace: &str, version: &str) -> WorkloadMetadata {
    let labels: BTreeMap<String, String> = [("app", name), ("version", version)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    WorkloadMetadata {
        cluster_id: Some("Kubernetes".into()),
        ..WorkloadMetadata::from_labels(
            &format!("{name}-{version}-0"),
            namespace,
            &format!("{name}-{version}"),
            &labels,
        )
    }
}

fn text(metrics: &IstioMetrics) -> String {
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let mut out = String::new();
    encode(&mut out, &registry).unwrap();
    out
}

#[test]
fn a_request_is_counted_under_istios_names_and_labels() {
    let metrics = IstioMetrics::default();
    let (reviews, ratings) = (
        workload("reviews", "default", "v2"),
        workload("ratings", "default", "v1"),
    );
    let labels = RequestLabels {
        response_code: 503,
        response_flags: "URX",
        connection_security_policy: "mutual_tls",
        ..RequestLabels::edge(
            Reporter::Destination,
            Peer {
                metadata: Some(&reviews),
                principal: Some(&"spiffe://cluster.local/ns/default/sa/bookinfo-reviews".into()),
            },
            Peer {
                metadata: Some(&ratings),
                principal: Some(&"spiffe://cluster.local/ns/default/sa/bookinfo-ratings".into()),
            },
        )
        .service("ratings.default.svc.cluster.local")
    };
    let recorded = Recorded {
        duration: Duration::from_millis(7),
        request_bytes: 120,
        response_bytes: 2000,
        request_messages: None,
        response_messages: None,
    };
    metrics.record(&labels, recorded);
    metrics.record(&labels, recorded);
    let out = text(&metrics);
    let series = "reporter=\"destination\",source_workload=\"reviews-v2\",\
        source_canonical_service=\"reviews\",source_canonical_revision=\"v2\",\
        source_workload_namespace=\"default\",\
        source_principal=\"spiffe://cluster.local/ns/default/sa/bookinfo-reviews\",\
        source_app=\"reviews\",source_version=\"v2\",source_cluster=\"Kubernetes\",\
        destination_workload=\"ratings-v1\",destination_workload_namespace=\"default\",\
        destination_principal=\"spiffe://cluster.local/ns/default/sa/bookinfo-ratings\",\
        destination_app=\"ratings\",destination_version=\"v1\",\
        destination_service=\"ratings.default.svc.cluster.local\",\
        destination_service_name=\"ratings\",destination_service_namespace=\"default\",\
        destination_canonical_service=\"ratings\",destination_canonical_revision=\"v1\",\
        destination_cluster=\"Kubernetes\",request_protocol=\"http\",response_code=\"503\",\
        grpc_response_status=\"\",response_flags=\"URX\",connection_security_policy=\"mutual_tls\"";
    assert!(
        out.contains(&format!("istio_requests_total{{{series}}} 2\n")),
        "{out}"
    );
    // 7 ms: in the 10 ms bucket, not the 5 ms one.
    assert!(
        out.contains(&format!(
            "istio_request_duration_milliseconds_bucket{{le=\"5.0\",{series}}} 0\n"
        )) && out.contains(&format!(
            "istio_request_duration_milliseconds_bucket{{le=\"10.0\",{series}}} 2\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("istio_response_bytes_sum{{{series}}} 4000.0\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!("istio_request_bytes_count{{{series}}} 2\n")),
        "{out}"
    );
}

#[test]
fn a_peer_that_said_nothing_is_unknown() {
    let labels = RequestLabels::edge(Reporter::Source, Peer::default(), Peer::default());
    assert_eq!(&*labels.source_workload, UNKNOWN);
    assert_eq!(&*labels.destination_app, UNKNOWN);
    assert_eq!(&*labels.destination_canonical_revision, "latest");
    assert_eq!(labels.connection_security_policy, UNKNOWN);
    // The certificate's namespace over the one claimed.
    let claims = workload("reviews", "default", "v1");
    let labels = RequestLabels::edge(
        Reporter::Destination,
        Peer {
            metadata: Some(&claims),
            principal: Some(&"spiffe://cluster.local/ns/shop/sa/reviews".into()),
        },
        Peer::default(),
    );
    assert_eq!(&*labels.source_workload_namespace, "shop");
    let outside = labels.service("api.example.com");
    assert_eq!(&*outside.destination_service_name, "api");
    assert_eq!(&*outside.destination_service_namespace, UNKNOWN);
}

#[test]
fn label_sets_past_the_bound_are_counted_not_recorded() {
    let metrics = IstioMetrics::with_max_label_sets(2);
    for code in [200, 404, 503, 503, 200] {
        let labels = RequestLabels {
            response_code: code,
            ..RequestLabels::edge(Reporter::Source, Peer::default(), Peer::default())
        };
        metrics.record(&labels, Recorded::default());
    }
    let out = text(&metrics);
    assert!(
        out.contains("mesh_metrics_label_sets_overflow_total 2\n"),
        "{out}"
    );
    assert!(!out.contains("response_code=\"503\""), "{out}");
    assert_eq!(out.matches("istio_requests_total{").count(), 2, "{out}");
}

#[test]
fn grpc_codes_past_16_read_as_unknown() {
    let status = |value: &'static str| {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-status", http::HeaderValue::from_static(value));
        layer::grpc_status(&headers)
    };
    assert_eq!(status("0"), Some(0));
    assert_eq!(status("16"), Some(16));
    assert_eq!(status("17"), Some(2));
    assert_eq!(status("65535"), Some(2));
    assert_eq!(status("x"), None);
}
