//! How long a route change takes to reach 1,000 ADS clients connected to
//! one server at once: the server (`mesh_xds::server`) on loopback, each
//! client a real `AdsClient` over its own stream, half state of the world
//! and half delta. Prints the time from the change to the last client
//! holding it.
//!
//! `cargo bench -p mesh-xds --bench fanout`

#![allow(clippy::print_stdout)]

mod mesh;

use std::time::{Duration, Instant};

use mesh::support::Resource;
use mesh::support::resources::{eds_cluster, listener, load_assignment, route_config};
use mesh_xds::Bootstrap;
use mesh_xds::ads::{AdsClient, AdsHandle, AdsView, Protocol, ResourceType};
use mesh_xds::server::{AdsServer, ResourceCache};

const CLIENTS: usize = 1_000;
const LISTENER: &str = "reviews.default.svc.cluster.local:9080";
const ROUTES: &str = "reviews-routes";
const V1: &str = "outbound|9080|v1|reviews.default.svc.cluster.local";
const V2: &str = "outbound|9080|v2|reviews.default.svc.cluster.local";
const WAIT: Duration = Duration::from_secs(120);

fn entries(resources: Vec<Resource>) -> Vec<(String, envoy_types::pb::google::protobuf::Any)> {
    resources.into_iter().map(|r| (r.name, r.any)).collect()
}

/// Whether `view` routes the listener to `cluster` and holds its endpoints.
fn routes_to(view: &AdsView, cluster: &str) -> bool {
    let routed = view
        .route_configs
        .get(ROUTES)
        .is_some_and(|rc| rc.table.clusters().any(|c| c.as_str() == cluster));
    routed && view.load_assignments.contains_key(cluster)
}

async fn all(clients: &[AdsHandle], cluster: &str) {
    for ads in clients {
        let mut updates = ads.updates();
        tokio::time::timeout(WAIT, updates.wait_for(|v| routes_to(v, cluster)))
            .await
            .expect("every client gets the configuration")
            .expect("the client runs");
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cache = ResourceCache::new();
        cache.set_all([
            (
                ResourceType::Cluster,
                entries(vec![eds_cluster(V1), eds_cluster(V2)]),
            ),
            (
                ResourceType::LoadAssignment,
                entries(vec![
                    load_assignment(V1, "10.0.0.1"),
                    load_assignment(V2, "10.0.0.2"),
                ]),
            ),
            (
                ResourceType::Listener,
                entries(vec![listener(LISTENER, ROUTES)]),
            ),
            (
                ResourceType::RouteConfig,
                entries(vec![route_config(ROUTES, V1)]),
            ),
        ]);
        let server = AdsServer::new(cache.clone());
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(server.clone().into_service())
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(socket)),
        );

        let started = Instant::now();
        let clients: Vec<AdsHandle> = (0..CLIENTS)
            .map(|i| {
                let bootstrap =
                    Bootstrap::insecure(&addr.to_string(), format!("node-{i}")).unwrap();
                let protocol = match i % 2 {
                    0 => Protocol::StateOfTheWorld,
                    _ => Protocol::Delta,
                };
                let ads = AdsClient::new(&bootstrap)
                    .with_protocol(protocol)
                    .spawn()
                    .unwrap();
                ads.subscribe_listener(LISTENER);
                ads
            })
            .collect();
        all(&clients, V1).await;
        let connected = started.elapsed();

        let changed = Instant::now();
        cache.set(
            ResourceType::RouteConfig,
            entries(vec![route_config(ROUTES, V2)]),
        );
        all(&clients, V2).await;
        let reached = changed.elapsed();
        println!(
            "{CLIENTS} ADS clients on one server: all configured {connected:?} after starting; \
             a route change reached the last of them in {reached:?} ({} streams)",
            server.clients().len()
        );
    });
}
