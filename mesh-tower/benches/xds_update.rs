//! One route change with 1,000 xDS targets subscribed: each target
//! (`svc-N.mesh.local:80`) a listener, a route configuration and a cluster
//! of its own, as istiod serves a proxyless client. A change of one
//! target's routes (to another cluster, already there) costs, in turn:
//!
//! - `handle_response`: the client's state taking the RDS response (state
//!   of the world: every route configuration, all but one as before);
//! - `mesh_config`: the view after it made into the configuration
//!   requests are routed by (a `ConfigBuilder` that made the one before);
//! - `set_config`: a `MeshClient` holding the configuration before
//!   applying the one after.
//!
//! Each iteration goes back and forth between the two, so that every one
//! is a change. `cargo bench -p mesh-tower --bench xds_update`

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
use envoy_types::pb::google::protobuf::Any;
use http_body_util::Empty;
use mesh_core::policy::RetryPolicy;
use mesh_core::route::{Forward, Route, VirtualHost};
use mesh_core::{Cluster, MeshConfig, StaticResolve};
use mesh_tower::MeshClient;
use mesh_xds::ConfigBuilder;
use mesh_xds::ads::{AdsState, AdsView, ResourceType};
use mesh_xds::bootstrap::Node;
use mesh_xds::translate;

const TARGETS: usize = 1_000;

fn target(i: usize) -> String {
    format!("svc-{i}.mesh.local:80")
}

fn cluster_name(i: usize) -> String {
    format!("outbound|80||svc-{i}.mesh.local")
}

fn routes_name(i: usize) -> String {
    format!("routes-{i}")
}

/// Target `i`'s route configuration, sending everything to cluster `to`.
fn route_config(i: usize, to: usize) -> Any {
    let vh = VirtualHost::new(
        "svc",
        [target(i)],
        vec![Route::forward(Forward::to(cluster_name(to).as_str()))],
    );
    let rc = translate::route_configuration(&routes_name(i), &[vh]).unwrap();
    translate::entry(&routes_name(i), &rc).1
}

fn response(kind: ResourceType, version: u64, resources: Vec<Any>) -> DiscoveryResponse {
    DiscoveryResponse {
        version_info: version.to_string(),
        resources,
        type_url: kind.type_url().into(),
        nonce: format!("{kind:?}-{version}"),
        ..Default::default()
    }
}

/// The RDS response with target 0 routed to cluster `to`.
fn routes(version: u64, to: usize) -> DiscoveryResponse {
    let all = (0..TARGETS)
        .map(|i| route_config(i, if i == 0 { to } else { i }))
        .collect();
    response(ResourceType::RouteConfig, version, all)
}

/// A client's state holding every target, routed as `routes` says.
fn state() -> AdsState {
    let node = Node {
        id: "sidecar~10.0.0.1~bench.default~default.svc.cluster.local".into(),
        ..Node::default()
    };
    let mut state = AdsState::new(&node);
    let now = Instant::now();
    for i in 0..TARGETS {
        state.subscribe_listener(&target(i), now);
    }
    state.on_stream_start(now);
    let listeners = (0..TARGETS)
        .map(|i| {
            translate::entry(
                &target(i),
                &translate::api_listener(&target(i), &routes_name(i)),
            )
            .1
        })
        .collect();
    let clusters = (0..TARGETS)
        .map(|i| {
            let mut c = Cluster::named(&cluster_name(i));
            c.policy.retry = RetryPolicy::disabled();
            translate::entry(&cluster_name(i), &translate::cluster(&c).unwrap()).1
        })
        .collect();
    let assignments = (0..TARGETS)
        .map(|i| {
            let addr = ([10, 0, (i / 256) as u8, (i % 256) as u8], 80).into();
            let set = mesh_core::EndpointSet::new([
                mesh_core::Endpoint::new(addr).with_locality_weight(1)
            ]);
            let cla = translate::load_assignment(&cluster_name(i), &set).unwrap();
            translate::entry(&cluster_name(i), &cla).1
        })
        .collect();
    for r in [
        response(ResourceType::Listener, 1, listeners),
        routes(1, 0),
        response(ResourceType::Cluster, 1, clusters),
        response(ResourceType::LoadAssignment, 1, assignments),
    ] {
        let outcome = state.handle_response(&r, now);
        assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    }
    state
}

/// Every target, as the client's authority and its listener's name.
fn targets() -> Vec<(String, String)> {
    (0..TARGETS).map(|i| (target(i), target(i))).collect()
}

fn config(builder: &mut ConfigBuilder, view: &AdsView, targets: &[(String, String)]) -> MeshConfig {
    let targets = targets.iter().map(|(a, l)| (a.as_str(), l.as_str()));
    builder.build(view, targets).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut state = state();
    let now = Instant::now();
    let changes = [routes(2, 1), routes(3, 0)];
    let before = AdsView::new(&state, true);
    state.handle_response(&changes[0], now);
    let after = AdsView::new(&state, true);
    let targets = targets();
    let mut builder = ConfigBuilder::default();
    let configs = [
        config(&mut builder, &before, &targets),
        config(&mut builder, &after, &targets),
    ];
    let routed = |c: &MeshConfig| {
        let table = c.listener(&target(0)).expect("target 0 routes");
        table.clusters().next().unwrap().to_string()
    };
    assert_eq!(
        [routed(&configs[0]), routed(&configs[1])],
        [cluster_name(0), cluster_name(1)]
    );

    let mut group = c.benchmark_group("one_route_change_1000_targets");
    let mut version = 3;
    let mut turn = 0;
    group.bench_function("handle_response", |b| {
        b.iter(|| {
            turn ^= 1;
            version += 1;
            let mut r = changes[turn].clone();
            r.version_info = version.to_string();
            state.handle_response(&r, now)
        })
    });
    let views = [Arc::new(before), Arc::new(after)];
    group.bench_function("mesh_config", |b| {
        b.iter(|| {
            turn ^= 1;
            config(&mut builder, &views[turn], &targets)
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let client: MeshClient<Empty<Bytes>> = MeshClient::builder(StaticResolve::default()).build();
    client.set_config(configs[0].clone());
    group.bench_function("set_config", |b| {
        b.iter(|| {
            turn ^= 1;
            client.set_config(configs[turn].clone())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
