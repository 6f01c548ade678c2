//! A mesh of many EDS clusters as an ADS server would send it, for the
//! benchmarks, and clients that hold it.

#![allow(dead_code)]

#[path = "../../tests/support/mod.rs"]
#[allow(unreachable_pub, missing_docs)]
pub(crate) mod support;

use std::net::SocketAddr;
use std::time::Instant;

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryResponse, DiscoveryResponse, Resource as DeltaResource,
};
use mesh_xds::ads::{AdsState, DeltaAdsState, ResourceType};
use mesh_xds::bootstrap::Node;
pub(crate) use support::Resource;
use support::resources::{eds_cluster, listener, load_assignment_at, route_config_per_cluster};

pub(crate) const LISTENER: &str = "outbound";

/// The responses of a mesh of `clusters` EDS clusters with `per_cluster`
/// endpoints each, in chain order.
pub(crate) struct Mesh {
    pub(crate) names: Vec<String>,
    pub(crate) per_cluster: usize,
    pub(crate) responses: Vec<(ResourceType, Vec<Resource>)>,
}

impl Mesh {
    pub(crate) fn new(clusters: usize, per_cluster: usize) -> Self {
        let names: Vec<String> = (0..clusters)
            .map(|i| format!("outbound|80||svc-{i}.mesh.local"))
            .collect();
        let responses = vec![
            (ResourceType::Listener, vec![listener(LISTENER, "routes")]),
            (
                ResourceType::RouteConfig,
                vec![route_config_per_cluster("routes", &names)],
            ),
            (
                ResourceType::Cluster,
                names.iter().map(|n| eds_cluster(n)).collect(),
            ),
            (
                ResourceType::LoadAssignment,
                (0..clusters)
                    .map(|i| load_assignment_at(&names[i], &endpoints(i, 0, per_cluster)))
                    .collect(),
            ),
        ];
        Self {
            names,
            per_cluster,
            responses,
        }
    }

    /// The state-of-the-world responses for the whole mesh, in chain order.
    pub(crate) fn sotw_responses(&self) -> Vec<DiscoveryResponse> {
        let responses = self.responses.iter();
        responses.map(|(kind, r)| sotw(*kind, 1, r)).collect()
    }

    /// The load assignment of cluster `i` at `version`: its endpoints
    /// moved by `version` ports.
    pub(crate) fn update(&self, i: usize, version: u16) -> Resource {
        load_assignment_at(&self.names[i], &endpoints(i, version, self.per_cluster))
    }
}

fn endpoints(cluster: usize, version: u16, n: usize) -> Vec<SocketAddr> {
    let [_, a, b, c] = (cluster as u32).to_be_bytes();
    (0..n)
        .map(|e| SocketAddr::from(([10, a, b, c], 1000 + version + e as u16)))
        .collect()
}

pub(crate) fn sotw(kind: ResourceType, version: u64, resources: &[Resource]) -> DiscoveryResponse {
    DiscoveryResponse {
        version_info: version.to_string(),
        resources: resources.iter().map(|r| r.any.clone()).collect(),
        type_url: kind.type_url().into(),
        nonce: format!("n{version}"),
        ..Default::default()
    }
}

pub(crate) fn delta(
    kind: ResourceType,
    version: u64,
    resources: &[Resource],
) -> DeltaDiscoveryResponse {
    DeltaDiscoveryResponse {
        resources: resources
            .iter()
            .map(|r| DeltaResource {
                name: r.name.clone(),
                version: version.to_string(),
                resource: Some(r.any.clone()),
                ..Default::default()
            })
            .collect(),
        type_url: kind.type_url().into(),
        nonce: format!("n{version}"),
        ..Default::default()
    }
}

pub(crate) fn node() -> Node {
    Node {
        id: "sidecar~10.0.0.1~bench.default~default.svc.cluster.local".into(),
        ..Node::default()
    }
}

/// A state-of-the-world client holding `mesh`.
pub(crate) fn sotw_client(mesh: &Mesh) -> AdsState {
    sotw_client_of(&mesh.sotw_responses())
}

/// A state-of-the-world client that applied `responses`.
pub(crate) fn sotw_client_of(responses: &[DiscoveryResponse]) -> AdsState {
    let mut state = AdsState::new(&node());
    let now = Instant::now();
    state.subscribe_listener(LISTENER, now);
    state.on_stream_start(now);
    for response in responses {
        let outcome = state.handle_response(response, now);
        assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    }
    state
}

/// A delta client holding `mesh`.
pub(crate) fn delta_client(mesh: &Mesh) -> DeltaAdsState {
    let mut state = DeltaAdsState::new(&node());
    let now = Instant::now();
    state.subscribe_listener(LISTENER, now);
    state.on_stream_start(now);
    for (kind, resources) in &mesh.responses {
        state.handle_response(&delta(*kind, 1, resources), now);
    }
    state
}
