//! The project's own control plane as a real proxyless gRPC client sees
//! it: Istio YAML read by `mesh_istio`, turned into istiod-shaped
//! resources by `mesh_xds::translate` and served by `mesh_xds::server` to
//! grpcio (gRPC's C core under Python), which must ACK every resource
//! (LDS, RDS, CDS and EDS, no NACK) and split requests as the YAML says.
//!
//! The YAML is a DestinationRule with subsets v1 and v2 of `ratings` and a
//! VirtualService sending it 20/80 to them; v1's health server answers
//! `SERVING` for `ratings` and v2's `NOT_SERVING`, so each answer says
//! which subset took the check. What the server records is read from
//! `AdsServer::clients` while grpcio's stream is open.
//!
//! `xds_grpcio.rs` runs the same measurement against a hand-built server
//! and resources; what both share is `tests/grpcio/mod.rs`'s, including
//! when the test skips.

#[path = "grpcio/mod.rs"]
mod grpcio;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use mesh_core::cluster::istio_cluster_name;
use mesh_core::{Endpoint, EndpointSet, Locality, MeshConfig};
use mesh_xds::ads::ResourceType;
use mesh_xds::server::{AdsServer, ClientStatus, Nack, ResourceCache};
use mesh_xds::translate;

use grpcio::{
    CLIENT_WAIT, Grpcio, NODE_ID, RATINGS, TempDir, assert_split, bootstrap_json, health_server,
};

const HOST: &str = "ratings.default.svc.cluster.local";
const PORT: u16 = 9080;
/// How often the server's record of streams is read.
const POLL: Duration = Duration::from_millis(10);

/// What an operator would apply for a 20/80 canary of ratings v2.
const ISTIO_YAML: &str = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ratings
  namespace: default
spec:
  host: ratings.default.svc.cluster.local
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
  namespace: default
spec:
  hosts:
  - ratings.default.svc.cluster.local
  http:
  - route:
    - destination:
        host: ratings.default.svc.cluster.local
        subset: v1
      weight: 20
    - destination:
        host: ratings.default.svc.cluster.local
        subset: v2
      weight: 80
";

const TYPES: [ResourceType; 4] = [
    ResourceType::Listener,
    ResourceType::RouteConfig,
    ResourceType::Cluster,
    ResourceType::LoadAssignment,
];

#[tokio::test]
async fn grpcio_accepts_what_the_control_plane_serves_from_istio_yaml_and_splits_as_it_says() {
    let Some(grpcio) = Grpcio::find().await else {
        return;
    };
    let v1 = health_server(tonic_health::ServingStatus::Serving).await;
    let v2 = health_server(tonic_health::ServingStatus::NotServing).await;

    let cache = ResourceCache::new();
    serve(&cache, &config(), [("v1", v1), ("v2", v2)]);
    let server = AdsServer::new(cache);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority = listener.local_addr().unwrap().to_string();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(server.clone().into_service())
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let dir = TempDir::new();
    let bootstrap = dir.write("grpcio.json", &bootstrap_json(&authority));
    let run = grpcio.run(&bootstrap);
    tokio::pin!(run);
    // grpcio's stream closes when the script exits, and the server forgets
    // it: its record is read while the checks run.
    let mut seen = Seen::default();
    let deadline = tokio::time::Instant::now() + CLIENT_WAIT;
    let mut tally = None;
    while !seen.all_acked() && tokio::time::Instant::now() < deadline {
        seen.note(&server.clients());
        tokio::select! {
            result = &mut run => {
                tally = Some(result);
                break;
            }
            _ = tokio::time::sleep(POLL) => {}
        }
    }
    seen.note(&server.clients());
    let tally = match tally {
        Some(tally) => tally,
        None => run.await,
    };

    let version = &grpcio.version;
    assert!(
        seen.nacks.is_empty(),
        "grpcio {version} rejected resources: {:#?}",
        seen.nacks
    );
    for kind in TYPES {
        assert!(
            seen.acked.contains_key(&kind),
            "grpcio {version} ACKed no {kind:?}; it ACKed {:?}",
            seen.acked
        );
    }
    let tally = tally.unwrap_or_else(|e| panic!("grpcio {version}: {e}"));
    eprintln!("grpcio {version}: {tally:?}; ACKed {:?}", seen.acked);
    assert_split("grpcio", &tally);
}

/// The YAML as the client configuration it describes, refusing warnings:
/// everything in it is meant to be read.
fn config() -> MeshConfig {
    let (resources, warnings) = mesh_istio::parse("ratings.yaml", ISTIO_YAML).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    resources.to_mesh_config().unwrap()
}

/// Puts what a client asking for [`RATINGS`] is served under `config` into
/// `cache`, each subset's one endpoint being its version's backend.
fn serve(cache: &ResourceCache, config: &MeshConfig, backends: [(&str, SocketAddr); 2]) {
    let served = translate::service_port(config, RATINGS, HOST, PORT).unwrap();
    // gRPC's weighted_target balances over localities: each needs one.
    let locality = Locality {
        region: "us-east1".into(),
        zone: "us-east1-b".into(),
        ..Default::default()
    };
    let assignments = backends.map(|(version, addr)| {
        let name = istio_cluster_name(HOST, Some(PORT), Some(version)).to_string();
        let set = EndpointSet::new([Endpoint::new(addr)
            .with_locality(locality.clone())
            .with_locality_weight(1)
            .with_label("version", version)]);
        translate::entry(&name, &translate::load_assignment(&name, &set).unwrap())
    });
    // All at once: no stream sees routes before the clusters they name.
    let eds = (ResourceType::LoadAssignment, assignments.into());
    cache.set_all(served.entries().into_iter().chain([eds]));
}

/// What the server recorded of grpcio's streams (those of [`NODE_ID`])
/// over every reading: per type the last version ACKed, and every NACK.
#[derive(Default)]
struct Seen {
    acked: BTreeMap<ResourceType, String>,
    nacks: Vec<(ResourceType, Nack)>,
}

impl Seen {
    fn note(&mut self, clients: &[ClientStatus]) {
        for client in clients.iter().filter(|c| c.node_id == NODE_ID) {
            for (kind, status) in &client.types {
                if let Some(version) = &status.acked_version {
                    self.acked.insert(*kind, version.clone());
                }
                if let Some(nack) = &status.last_nack {
                    let entry = (*kind, nack.clone());
                    if !self.nacks.contains(&entry) {
                        self.nacks.push(entry);
                    }
                }
            }
        }
    }

    fn all_acked(&self) -> bool {
        TYPES.iter().all(|kind| self.acked.contains_key(kind))
    }
}
