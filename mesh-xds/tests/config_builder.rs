//! `ConfigBuilder` reuses what did not change and builds the same
//! configuration as a build from scratch: after any sequence of LDS, RDS
//! and CDS responses (resources coming, changing and going), with the
//! targets changing too, each build equals a fresh one, and what a change
//! did not touch is the same table and the same cluster as before.

use std::time::Instant;

use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
use envoy_types::pb::google::protobuf::Any;
use mesh_core::policy::RetryPolicy;
use mesh_core::route::{ClusterName, Forward, Route, VirtualHost};
use mesh_core::{Cluster, MeshConfig, RouteTable};
use mesh_xds::ConfigBuilder;
use mesh_xds::ads::{AdsState, AdsView, ResourceType};
use mesh_xds::bootstrap::Node;
use mesh_xds::translate;
use proptest::prelude::*;

const TARGETS: usize = 5;
const CLUSTERS: usize = 4;

fn target(i: usize) -> String {
    format!("svc-{i}.mesh.local:80")
}

fn cluster_name(k: usize) -> String {
    format!("outbound|80||c{k}.mesh.local")
}

fn routes_name(i: usize) -> String {
    format!("routes-{i}")
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

/// One response the control plane sends.
#[derive(Clone, Debug)]
enum Step {
    /// The listeners of these targets, each routed by the route
    /// configuration of the target it names.
    Listeners(Vec<(usize, usize)>),
    /// These route configurations, each sending to the cluster named.
    Routes(Vec<(usize, usize)>),
    /// These clusters, each with the connect timeout in seconds given.
    Clusters(Vec<(usize, u64)>),
    /// The client routes these targets now, in this order.
    Targets(Vec<usize>),
}

fn step() -> impl Strategy<Value = Step> {
    let some = |n: usize, v: usize| proptest::collection::vec((0..n, 0..v), 0..=n);
    prop_oneof![
        some(TARGETS, TARGETS).prop_map(Step::Listeners),
        some(TARGETS, CLUSTERS).prop_map(Step::Routes),
        proptest::collection::vec((0..CLUSTERS, 1..3u64), 0..=CLUSTERS).prop_map(Step::Clusters),
        proptest::collection::vec(0..TARGETS, 0..=TARGETS).prop_map(Step::Targets),
    ]
}

/// Each name once, the first of it kept.
fn unique<T: Copy>(items: &[(usize, T)]) -> Vec<(usize, T)> {
    let mut seen = Vec::new();
    items
        .iter()
        .filter(|(i, _)| {
            let new = !seen.contains(i);
            seen.push(*i);
            new
        })
        .copied()
        .collect()
}

fn apply(state: &mut AdsState, version: u64, step: &Step) {
    let now = Instant::now();
    let r = match step {
        Step::Listeners(ls) => {
            let all = unique(ls)
                .into_iter()
                .map(|(i, r)| {
                    let l = translate::api_listener(&target(i), &routes_name(r));
                    translate::entry(&target(i), &l).1
                })
                .collect();
            response(ResourceType::Listener, version, all)
        }
        Step::Routes(rs) => {
            let all = unique(rs)
                .into_iter()
                .map(|(i, k)| {
                    let vh = VirtualHost::new(
                        "svc",
                        ["*"],
                        vec![Route::forward(Forward::to(cluster_name(k).as_str()))],
                    );
                    let rc = translate::route_configuration(&routes_name(i), &[vh]).unwrap();
                    translate::entry(&routes_name(i), &rc).1
                })
                .collect();
            response(ResourceType::RouteConfig, version, all)
        }
        Step::Clusters(cs) => {
            let all = unique(cs)
                .into_iter()
                .map(|(k, secs)| {
                    let mut c = Cluster::named(&cluster_name(k));
                    c.policy.retry = RetryPolicy::disabled();
                    c.policy.connection.connect_timeout = std::time::Duration::from_secs(secs);
                    translate::entry(&cluster_name(k), &translate::cluster(&c).unwrap()).1
                })
                .collect();
            response(ResourceType::Cluster, version, all)
        }
        Step::Targets(_) => return,
    };
    state.handle_response(&r, now);
}

/// The tables of every listener and every cluster of `c`, by name.
fn contents(c: &MeshConfig) -> (Vec<(String, RouteTable)>, Vec<Cluster>) {
    let mut tables: Vec<_> = c
        .listener_names()
        .map(|n| (n.to_owned(), c.listener(n).unwrap().clone()))
        .collect();
    tables.sort_by(|a, b| a.0.cmp(&b.0));
    let mut clusters: Vec<Cluster> = c.clusters().cloned().collect();
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    (tables, clusters)
}

fn node() -> Node {
    Node {
        id: "sidecar~10.0.0.1~test.default~default.svc.cluster.local".into(),
        ..Node::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_build_equals_a_build_from_scratch(steps in proptest::collection::vec(step(), 1..24)) {
        let mut state = AdsState::new(&node());
        let now = Instant::now();
        for i in 0..TARGETS {
            state.subscribe_listener(&target(i), now);
        }
        state.on_stream_start(now);
        let mut targets: Vec<usize> = (0..TARGETS).collect();
        let mut builder = ConfigBuilder::default();
        let mut previous = MeshConfig::default();
        for (version, step) in steps.iter().enumerate() {
            apply(&mut state, version as u64 + 1, step);
            if let Step::Targets(t) = step {
                targets = t.clone();
                targets.dedup();
            }
            let view = AdsView::new(&state, true);
            let names: Vec<(String, String)> =
                targets.iter().map(|i| (target(*i), target(*i))).collect();
            let pairs = || names.iter().map(|(a, l)| (a.as_str(), l.as_str()));
            let reused = builder.build(&view, pairs()).unwrap();
            let fresh = view.mesh_config(pairs(), &previous).unwrap();
            prop_assert_eq!(contents(&reused), contents(&fresh), "after {:?}", step);
            previous = fresh;
        }
    }
}

/// A client's state holding every target, each routed to its own cluster.
fn routed() -> AdsState {
    let mut state = AdsState::new(&node());
    let now = Instant::now();
    for i in 0..TARGETS {
        state.subscribe_listener(&target(i), now);
    }
    state.on_stream_start(now);
    let all: Vec<(usize, usize)> = (0..TARGETS).map(|i| (i, i)).collect();
    apply(&mut state, 1, &Step::Listeners(all.clone()));
    apply(
        &mut state,
        2,
        &Step::Routes(all.iter().map(|&(i, _)| (i, i % CLUSTERS)).collect()),
    );
    let clusters = (0..CLUSTERS).map(|k| (k, 1)).collect();
    apply(&mut state, 3, &Step::Clusters(clusters));
    state
}

#[test]
fn what_a_change_did_not_touch_is_shared_with_the_last_configuration() {
    let mut state = routed();
    let names: Vec<(String, String)> = (0..TARGETS).map(|i| (target(i), target(i))).collect();
    let pairs = || names.iter().map(|(a, l)| (a.as_str(), l.as_str()));
    let mut builder = ConfigBuilder::default();
    let before = builder.build(&AdsView::new(&state, true), pairs()).unwrap();
    // Target 0 now sends to cluster 1.
    let mut routes: Vec<(usize, usize)> = (0..TARGETS).map(|i| (i, i % CLUSTERS)).collect();
    routes[0].1 = 1;
    apply(&mut state, 4, &Step::Routes(routes));
    let after = builder.build(&AdsView::new(&state, true), pairs()).unwrap();
    let cluster_of = |c: &MeshConfig, i: usize| {
        c.listener(&target(i))
            .unwrap()
            .clusters()
            .next()
            .unwrap()
            .clone()
    };
    assert_eq!(
        cluster_of(&after, 0),
        ClusterName::from(cluster_name(1).as_str())
    );
    for i in 1..TARGETS {
        let (a, b) = (
            before.listener(&target(i)).unwrap(),
            after.listener(&target(i)).unwrap(),
        );
        assert!(RouteTable::ptr_eq(a, b), "target {i} keeps its table");
    }
    assert!(!RouteTable::ptr_eq(
        before.listener(&target(0)).unwrap(),
        after.listener(&target(0)).unwrap()
    ));
    for k in 1..CLUSTERS {
        let name = ClusterName::from(cluster_name(k).as_str());
        let (a, b) = (
            before.shared_cluster(&name).unwrap(),
            after.shared_cluster(&name).unwrap(),
        );
        assert!(std::sync::Arc::ptr_eq(a, b), "cluster {k} is the same");
    }
    // Nothing changed: everything is shared.
    let again = builder.build(&AdsView::new(&state, true), pairs()).unwrap();
    for i in 0..TARGETS {
        let (a, b) = (
            after.listener(&target(i)).unwrap(),
            again.listener(&target(i)).unwrap(),
        );
        assert!(RouteTable::ptr_eq(a, b));
    }
}
