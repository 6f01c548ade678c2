//! The pieces of an embedded control plane together: Istio's bookinfo YAML
//! read by `mesh_istio`, turned into istiod-shaped proxyless
//! resources by `mesh_xds::translate`, served by `mesh_xds::server`, and
//! followed by a `MeshClient` over `xds:///` — routing as the YAML says,
//! and following an edit of it.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use mesh_core::cluster::istio_cluster_name;
use mesh_core::{Endpoint, EndpointSet, MeshConfig, StaticResolve};
use mesh_tower::MeshClient;
use mesh_xds::Bootstrap;
use mesh_xds::ads::{AdsClient, AdsHandle, ResourceType};
use mesh_xds::server::ResourceCache;
use mesh_xds::translate;
use support::Server;
use tower::ServiceExt;

const HOST: &str = "reviews.default.svc.cluster.local";
const TARGET: &str = "reviews.default.svc.cluster.local:9080";
const WAIT: Duration = Duration::from_secs(10);

/// The bookinfo DestinationRules and the VirtualService `file`.
fn config(file: &str) -> MeshConfig {
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../mesh-istio/tests/data/bookinfo"
    );
    let mut all = mesh_istio::Resources::default();
    for f in ["destination-rule-all.yaml", file] {
        let text = std::fs::read_to_string(format!("{data}/{f}")).unwrap();
        let (resources, _) = mesh_istio::parse(f, &text).unwrap();
        all.extend(resources);
    }
    all.to_mesh_config().unwrap()
}

/// Puts what a client asking for `TARGET` is served under `config` into
/// `cache`, with each subset's endpoints the server of that version.
fn serve(cache: &ResourceCache, config: &MeshConfig, servers: &HashMap<&str, Server>) {
    let served = translate::service_port(config, TARGET, HOST, 9080).unwrap();
    let assignments = ["v1", "v2", "v3"].map(|v| {
        let name = istio_cluster_name(HOST, Some(9080), Some(v));
        let set = EndpointSet::new([Endpoint::new(servers[v].addr)
            .with_locality_weight(1)
            .with_label("version", v)]);
        let cla = translate::load_assignment(name.as_str(), &set).unwrap();
        translate::entry(name.as_str(), &cla)
    });
    // All at once: no stream sees routes before the clusters they name.
    let eds = (ResourceType::LoadAssignment, assignments.into());
    cache.set_all(served.entries().into_iter().chain([eds]));
}

async fn get(client: &MeshClient<Full<Bytes>>, user: Option<&str>) -> String {
    let mut req = http::Request::get(format!("http://{TARGET}/reviews/0"));
    if let Some(user) = user {
        req = req.header("end-user", user);
    }
    let res = client
        .clone()
        .oneshot(req.body(Full::default()).unwrap())
        .await
        .expect("a response");
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    body.split(':').next().unwrap_or_default().to_owned()
}

/// reviews v1, v2 and v3, and an ADS server serving the bookinfo
/// DestinationRules and reviews-test-v2; an ADS client of it, productpage's.
async fn bookinfo() -> (HashMap<&'static str, Server>, ResourceCache, AdsHandle) {
    let mut servers = HashMap::new();
    for v in ["v1", "v2", "v3"] {
        servers.insert(v, Server::start(v, Duration::ZERO).await);
    }
    let cache = ResourceCache::new();
    serve(
        &cache,
        &config("virtual-service-reviews-test-v2.yaml"),
        &servers,
    );
    let addr = support::serve_ads(&cache).await;
    let bootstrap = Bootstrap::insecure(
        &addr.to_string(),
        "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local",
    )
    .unwrap();
    (servers, cache, AdsClient::start(&bootstrap).unwrap())
}

#[tokio::test]
async fn bookinfo_yaml_served_over_xds_routes_a_mesh_client_and_an_edit_applies() {
    let (servers, cache, ads) = bookinfo().await;
    let client: MeshClient<Full<Bytes>> = MeshClient::builder(StaticResolve::default())
        .xds(ads)
        .build();

    // reviews-test-v2: jason to v2, everyone else to v1.
    assert_eq!(get(&client, Some("jason")).await, "v2");
    for _ in 0..20 {
        assert_eq!(get(&client, None).await, "v1");
    }

    // The edit: reviews-50-v3, half to v1, half to v3.
    serve(
        &cache,
        &config("virtual-service-reviews-50-v3.yaml"),
        &servers,
    );
    tokio::time::timeout(WAIT, async {
        while get(&client, None).await != "v3" {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the edit reaches the client");
    let mut counts = HashMap::<String, usize>::new();
    for _ in 0..1000 {
        *counts.entry(get(&client, None).await).or_default() += 1;
    }
    assert_eq!(counts.len(), 2, "{counts:?}");
    let v3 = counts["v3"] as f64 / 1000.0;
    assert!((0.45..=0.55).contains(&v3), "{counts:?}");
}

/// Clients made one after another on one ADS client, each dropped before
/// the next asks for the same target (its listener unsubscribed and
/// subscribed again at once): each is configured at once, the server
/// sending the listener again, not after the does-not-exist timer.
#[tokio::test]
async fn a_target_asked_for_again_right_after_its_last_client_went_routes() {
    let (_servers, _cache, ads) = bookinfo().await;
    for i in 0..20 {
        let client: MeshClient<Full<Bytes>> = MeshClient::builder(StaticResolve::default())
            .xds(ads.clone())
            .build();
        let answered = tokio::time::timeout(Duration::from_secs(5), get(&client, Some("jason")))
            .await
            .unwrap_or_else(|_| panic!("client {i} was not configured in time"));
        assert_eq!(answered, "v2");
    }
}
