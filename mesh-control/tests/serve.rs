//! `mesh-control serve` end to end: a directory of Istio YAML (bookinfo's
//! reviews rules, a Kubernetes Service and WorkloadEntries for three real
//! upstreams) served over ADS to a `MeshClient` using `xds:///`, edited
//! while traffic flows, broken and fixed; and a client that NACKs.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::google::rpc::Status as RpcStatus;
use mesh_xds::ads::ResourceType;
use support::TempDir;
use support::control::{Control, WAIT, upstream};
use support::mesh::{TARGET, bookinfo, client, get, wait_for_version};
/// The reviews Service and a WorkloadEntry per version at `upstreams`.
fn registry(upstreams: &HashMap<&str, SocketAddr>) -> String {
    let mut yaml = String::from(
        "apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: default}\n\
         spec:\n  selector: {app: reviews}\n  ports: [{name: http, port: 9080}]\n",
    );
    for (version, addr) in upstreams {
        yaml.push_str(&format!(
            "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
             metadata: {{name: reviews-{version}, namespace: default}}\n\
             spec:\n  address: {}\n  ports: {{http: {}}}\n  labels: {{app: reviews, version: {version}}}\n",
            addr.ip(),
            addr.port()
        ));
    }
    yaml
}

/// A directory with bookinfo's DestinationRules, `virtual_service` and
/// the registry, and `mesh-control serve` on it.
async fn start(virtual_service: &str) -> (TempDir, Control) {
    start_with(virtual_service, &[]).await
}

/// As [`start`], with more arguments to `serve`.
async fn start_with(virtual_service: &str, args: &[&str]) -> (TempDir, Control) {
    let mut upstreams = HashMap::new();
    for v in ["v1", "v2", "v3"] {
        upstreams.insert(v, upstream(v).await);
    }
    let dir = TempDir::new("serve");
    std::fs::write(dir.join("registry.yaml"), registry(&upstreams)).unwrap();
    std::fs::write(
        dir.join("destination-rules.yaml"),
        bookinfo("destination-rule-all.yaml"),
    )
    .unwrap();
    std::fs::write(dir.join("reviews.yaml"), bookinfo(virtual_service)).unwrap();
    let control = Control::start_with(dir.path(), args);
    control
        .wait_for_dump("a configuration", |d| !d["config_version"].is_null())
        .await;
    (dir, control)
}

fn tally(results: &[String]) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for r in results {
        *counts.entry(r.as_str()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_follows_an_edit_of_a_virtual_service_with_no_failed_request() {
    let (dir, control) = start("virtual-service-reviews-test-v2.yaml").await;
    let client = client(control.xds);
    assert_eq!(get(&client, Some("jason")).await.unwrap(), "v2");
    for _ in 0..20 {
        assert_eq!(get(&client, None).await.unwrap(), "v1");
    }

    // Traffic flows through the edit.
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn({
        let (client, stop, failed) = (client.clone(), stop.clone(), failed.clone());
        async move {
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) && sent < 100_000 {
                if let Err(e) = get(&client, None).await {
                    eprintln!("failed: {e}");
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                sent += 1;
            }
            sent
        }
    });
    let edited = Instant::now();
    std::fs::write(
        dir.join("reviews.yaml"),
        bookinfo("virtual-service-reviews-50-v3.yaml"),
    )
    .unwrap();
    wait_for_version(&client, "v3").await;
    eprintln!("the edit reached the client in {:?}", edited.elapsed());
    stop.store(true, Ordering::Relaxed);
    let sent = load.await.unwrap();
    assert!(sent > 0);
    assert_eq!(failed.load(Ordering::Relaxed), 0, "of {sent} requests");

    let mut results = Vec::new();
    for _ in 0..400 {
        results.push(get(&client, None).await.unwrap());
    }
    let counts = tally(&results);
    assert_eq!(counts.len(), 2, "{counts:?}");
    let v3 = counts["v3"] as f64 / 400.0;
    assert!((0.4..=0.6).contains(&v3), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_is_reported_with_file_and_line_and_changes_nothing_until_fixed() {
    let (dir, control) = start("virtual-service-reviews-test-v2.yaml").await;
    let client = client(control.xds);
    assert_eq!(get(&client, None).await.unwrap(), "v1");
    let before = control.config_dump().await["config_version"].clone();

    // A typo: a weight that is not a number.
    let broken =
        bookinfo("virtual-service-reviews-50-v3.yaml").replace("weight: 50", "weight: fifty");
    std::fs::write(dir.join("reviews.yaml"), &broken).unwrap();
    let dump = control
        .wait_for_dump("a load error", |d| {
            d["load_errors"].as_array().is_some_and(|e| !e.is_empty())
        })
        .await;
    let error = dump["load_errors"][0].as_str().unwrap().to_owned();
    assert!(error.contains("reviews.yaml"), "{error}");
    assert!(error.contains("line "), "{error}");
    assert!(error.contains("weight"), "{error}");
    assert_eq!(
        dump["config_version"], before,
        "the last good one is served"
    );
    assert!(control.stderr().contains(&error), "{}", control.stderr());
    let (status, _) = control.get("/ready").await;
    assert_eq!(status, 200);
    for _ in 0..20 {
        assert_eq!(get(&client, None).await.unwrap(), "v1");
    }

    // Fixing the file applies it.
    std::fs::write(dir.join("reviews.yaml"), broken.replace("fifty", "50")).unwrap();
    wait_for_version(&client, "v3").await;
    let dump = control.config_dump().await;
    assert_eq!(dump["load_errors"], serde_json::json!([]));
    let (_, metrics) = control.get("/stats/prometheus").await;
    assert!(
        metrics.contains("mesh_control_config_loads_total{result=\"rejected\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_nacks_is_shown_and_others_are_unaffected() {
    let (_dir, control) = start("virtual-service-reviews-test-v2.yaml").await;
    let client = client(control.xds);
    assert_eq!(get(&client, None).await.unwrap(), "v1");

    let mut ads = AggregatedDiscoveryServiceClient::connect(format!("http://{}", control.xds))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let lds = ResourceType::Listener.type_url().to_owned();
    tx.send(DiscoveryRequest {
        node: Some(Node {
            id: "nacker".into(),
            ..Node::default()
        }),
        resource_names: vec![TARGET.into()],
        type_url: lds.clone(),
        ..DiscoveryRequest::default()
    })
    .await
    .unwrap();
    let stream = tokio_stream(rx);
    let mut responses = ads
        .stream_aggregated_resources(stream)
        .await
        .unwrap()
        .into_inner();
    let response = tokio::time::timeout(WAIT, responses.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(response.resources.len(), 1);
    tx.send(DiscoveryRequest {
        version_info: String::new(),
        resource_names: vec![TARGET.into()],
        type_url: lds,
        response_nonce: response.nonce.clone(),
        error_detail: Some(RpcStatus {
            code: 3,
            message: "listener refused for the test".into(),
            details: vec![],
        }),
        ..DiscoveryRequest::default()
    })
    .await
    .unwrap();

    let dump = control
        .wait_for_dump("the NACK", |d| {
            d["nacks"].as_array().is_some_and(|n| !n.is_empty())
        })
        .await;
    let nack = &dump["nacks"][0];
    assert_eq!(nack["node"], "nacker");
    assert_eq!(nack["type"], "LDS");
    assert_eq!(nack["message"], "listener refused for the test");
    assert_eq!(nack["version"], response.version_info.as_str());
    let (_, clients) = control.get("/clients").await;
    assert!(
        clients.contains("listener refused for the test"),
        "{clients}"
    );
    for _ in 0..20 {
        assert_eq!(get(&client, None).await.unwrap(), "v1");
    }
    assert_eq!(get(&client, Some("jason")).await.unwrap(), "v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinds_of_node_past_the_limit_are_refused_and_the_others_served() {
    let (_dir, control) = start_with(
        "virtual-service-reviews-test-v2.yaml",
        &["--max-node-classes", "1"],
    )
    .await;
    let client = client(control.xds);
    assert_eq!(get(&client, None).await.unwrap(), "v1");

    // A node of another namespace would be a second class.
    let mut ads = AggregatedDiscoveryServiceClient::connect(format!("http://{}", control.xds))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(DiscoveryRequest {
        node: Some(Node {
            id: "sidecar~10.0.0.9~web-1.shop~shop.svc.cluster.local".into(),
            ..Node::default()
        }),
        resource_names: vec![TARGET.into()],
        type_url: ResourceType::Listener.type_url().to_owned(),
        ..DiscoveryRequest::default()
    })
    .await
    .unwrap();
    let mut responses = ads
        .stream_aggregated_resources(tokio_stream(rx))
        .await
        .unwrap()
        .into_inner();
    let status = tokio::time::timeout(WAIT, responses.message())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .ends_with("would be one kind of node too many: max_node_classes is 1"),
        "{status:?}"
    );
    for _ in 0..10 {
        assert_eq!(get(&client, None).await.unwrap(), "v1");
    }
}

/// The requests of `rx` as the stream tonic sends.
fn tokio_stream(
    rx: tokio::sync::mpsc::Receiver<DiscoveryRequest>,
) -> impl futures_util::Stream<Item = DiscoveryRequest> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) })
}
