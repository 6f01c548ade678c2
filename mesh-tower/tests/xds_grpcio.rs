//! The same xDS configuration through a real proxyless gRPC client —
//! grpcio, gRPC's C core under Python — and through `MeshClient`: both
//! must accept every resource (an ACK of each of LDS, RDS, CDS and EDS, no
//! NACK) and split requests the same way.
//!
//! The resources are istiod's for a 20/80 split of `ratings` over subsets
//! v1 and v2; v1's health server answers `SERVING` for `ratings` and v2's
//! `NOT_SERVING`, so each answer says which subset took the check. grpcio
//! runs `tests/grpcio/health_split.py` with `GRPC_XDS_BOOTSTRAP` naming a
//! bootstrap written here; `MeshClient` reads the same kind of file. Each
//! client has an ADS server of its own, serving identical resources, so
//! what each server records is one client's.
//!
//! Finding Python, the health backends, the bootstrap and the split held
//! to are `tests/grpcio/mod.rs`'s, shared with `xds_grpcio_control.rs`.

#[path = "../../mesh-xds/tests/support/mod.rs"]
mod ads;
#[path = "grpcio/mod.rs"]
mod grpcio;

use std::net::SocketAddr;
use std::path::Path;

use mesh_core::StaticResolve;
use mesh_tower::MeshClient;
use mesh_xds::Bootstrap;
use mesh_xds::ads::{AdsClient, ResourceType};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use ads::AdsServer;
use ads::resources::{eds_cluster, istio_route_config, listener, locality_load_assignment};
use grpcio::{
    CHECKS, CLIENT_WAIT, Grpcio, RATINGS, SERVICE, Tally, TempDir, assert_split, bootstrap_json,
    health_server,
};

const V1: &str = "outbound|9080|v1|ratings.default.svc.cluster.local";
const V2: &str = "outbound|9080|v2|ratings.default.svc.cluster.local";

#[tokio::test]
async fn grpcio_and_the_mesh_client_accept_the_same_xds_config_and_split_alike() {
    let Some(grpcio) = Grpcio::find().await else {
        return;
    };
    let v1 = health_server(tonic_health::ServingStatus::Serving).await;
    let v2 = health_server(tonic_health::ServingStatus::NotServing).await;
    let dir = TempDir::new();

    let server = AdsServer::start().await;
    serve(&server, v1, v2);
    let bootstrap = dir.write("grpcio.json", &bootstrap_json(&server.authority()));
    let tally = grpcio.run(&bootstrap).await;
    assert_all_acked(&server, "grpcio").await;
    let tally = tally.unwrap_or_else(|e| panic!("grpcio {}: {e}", grpcio.version));

    let server = AdsServer::start().await;
    serve(&server, v1, v2);
    let bootstrap = dir.write("mesh.json", &bootstrap_json(&server.authority()));
    let mesh = run_mesh(&bootstrap).await;
    assert_all_acked(&server, "MeshClient").await;

    eprintln!("grpcio {}: {tally:?}; MeshClient: {mesh:?}", grpcio.version);
    assert_split("grpcio", &tally);
    assert_split("MeshClient", &mesh);
}

/// What istiod's `grpc` generator sends for `ratings` with a
/// VirtualService weighting subsets v1 and v2 20/80.
fn serve(server: &AdsServer, v1: SocketAddr, v2: SocketAddr) {
    let domains = [
        "ratings.default.svc.cluster.local",
        RATINGS,
        "ratings",
        "ratings:9080",
        "ratings.default.svc",
        "ratings.default",
    ];
    let routes = istio_route_config(RATINGS, &domains, &[(V1, 20), (V2, 80)]);
    let locality = ("us-east1", "us-east1-b");
    server.set(
        ResourceType::Listener.type_url(),
        vec![listener(RATINGS, RATINGS)],
    );
    server.set(ResourceType::RouteConfig.type_url(), vec![routes]);
    server.set(
        ResourceType::Cluster.type_url(),
        vec![eds_cluster(V1), eds_cluster(V2)],
    );
    server.set(
        ResourceType::LoadAssignment.type_url(),
        vec![
            locality_load_assignment(V1, locality, &[v1]),
            locality_load_assignment(V2, locality, &[v2]),
        ],
    );
}

/// `MeshClient`'s tally, from the bootstrap at `path`.
async fn run_mesh(path: &Path) -> Tally {
    let bootstrap = Bootstrap::from_file(path).expect("the bootstrap grpcio reads");
    let client: MeshClient<tonic::body::Body> = MeshClient::builder(StaticResolve::default())
        .xds(AdsClient::start(&bootstrap).unwrap())
        // Seeded: its share is the same on every run.
        .seed(7)
        .build();
    let channel = client.channel_to(&format!("xds:///{RATINGS}")).unwrap();
    let mut health = HealthClient::new(channel);
    let checks = async {
        let mut tally = Tally::new();
        for i in 0..CHECKS {
            let request = HealthCheckRequest {
                service: SERVICE.into(),
            };
            let response = health
                .check(request)
                .await
                .unwrap_or_else(|e| panic!("MeshClient: check {i}: {e}"));
            let status = response.into_inner().status().as_str_name();
            *tally.entry(status.to_owned()).or_default() += 1;
        }
        tally
    };
    tokio::time::timeout(CLIENT_WAIT, checks)
        .await
        .unwrap_or_else(|_| panic!("MeshClient: not done within {CLIENT_WAIT:?}"))
}

/// No NACK, and an ACK of each type, from the one client of `server`.
async fn assert_all_acked(server: &AdsServer, client: &str) {
    let nacks: Vec<String> = server
        .requests()
        .into_iter()
        .filter_map(|r| Some(format!("{}: {}", r.type_url, r.error?)))
        .collect();
    assert!(nacks.is_empty(), "{client} rejected resources: {nacks:#?}");
    for kind in [
        ResourceType::Listener,
        ResourceType::RouteConfig,
        ResourceType::Cluster,
        ResourceType::LoadAssignment,
    ] {
        let url = kind.type_url();
        server
            .wait_for_request(|r| r.type_url == url && r.is_ack())
            .await;
    }
}
