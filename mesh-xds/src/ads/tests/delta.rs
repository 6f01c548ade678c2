//! [`DeltaAdsState`]: delta requests and responses over the same chain.

use std::time::Instant;

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};
use envoy_types::pb::google::protobuf::{Any, Duration as PbDuration};

use super::build::*;
use super::node;
use crate::ads::{Change, DeltaAdsState, ResourceType};

const LDS: ResourceType = ResourceType::Listener;
const RDS: ResourceType = ResourceType::RouteConfig;
const CDS: ResourceType = ResourceType::Cluster;
const EDS: ResourceType = ResourceType::LoadAssignment;

fn started(now: Instant) -> DeltaAdsState {
    let mut ads = DeltaAdsState::new(&node());
    ads.subscribe_listener(LISTENER, now);
    ads.on_stream_start(now);
    ads
}

/// A delta response carrying `resources` as (name, version, resource)
/// and removing `removed`.
fn delta(
    kind: ResourceType,
    nonce: &str,
    resources: Vec<(&str, &str, Any)>,
    removed: &[&str],
) -> DeltaDiscoveryResponse {
    DeltaDiscoveryResponse {
        type_url: kind.type_url().into(),
        nonce: nonce.into(),
        resources: resources
            .into_iter()
            .map(|(name, version, any)| Resource {
                name: name.into(),
                version: version.into(),
                resource: Some(any),
                ..Resource::default()
            })
            .collect(),
        removed_resources: removed.iter().map(|n| n.to_string()).collect(),
        ..DeltaDiscoveryResponse::default()
    }
}

/// Drives `ads` through LDS, RDS (to v1 and v2), CDS and EDS.
fn full_chain(ads: &mut DeltaAdsState, now: Instant) {
    let lds = vec![(LISTENER, "l1", listener(LISTENER, ROUTES))];
    ads.handle_response(&delta(LDS, "n1", lds, &[]), now);
    let rds = vec![(ROUTES, "r1", route_config(ROUTES, &[V1, V2]))];
    ads.handle_response(&delta(RDS, "n2", rds, &[]), now);
    let cds = vec![(V1, "c1", good_cluster(V1)), (V2, "c1", good_cluster(V2))];
    ads.handle_response(&delta(CDS, "n3", cds, &[]), now);
    let eds = vec![
        (V1, "e1", load_assignment(V1, "10.0.0.1")),
        (V2, "e1", load_assignment(V2, "10.0.0.2")),
    ];
    ads.handle_response(&delta(EDS, "n4", eds, &[]), now);
}

fn for_type(requests: &[DeltaDiscoveryRequest], kind: ResourceType) -> &DeltaDiscoveryRequest {
    requests
        .iter()
        .find(|r| r.type_url == kind.type_url())
        .unwrap_or_else(|| panic!("no {kind} request in {requests:#?}"))
}

#[test]
fn nothing_goes_out_before_a_stream_and_the_first_request_carries_the_node() {
    let now = Instant::now();
    let mut ads = DeltaAdsState::new(&node());
    assert!(ads.subscribe_listener(LISTENER, now).requests.is_empty());
    let requests = ads.on_stream_start(now);
    assert_eq!(requests.len(), 1);
    assert!(requests[0].node.is_some());
    assert!(requests[0].initial_resource_versions.is_empty());

    let lds = vec![(LISTENER, "l1", listener(LISTENER, ROUTES))];
    let outcome = ads.handle_response(&delta(LDS, "n1", lds, &[]), now);
    // The ACK, then the route configuration the listener refers to.
    assert_eq!(outcome.requests.len(), 2);
    let ack = &outcome.requests[0];
    assert_eq!(ack.type_url, LDS.type_url());
    assert_eq!(ack.response_nonce, "n1");
    assert!(ack.error_detail.is_none() && ack.resource_names_subscribe.is_empty());
    assert!(ack.node.is_none());
    assert_eq!(outcome.requests[1].resource_names_subscribe, [ROUTES]);
}

#[test]
fn the_chain_resolves_as_in_state_of_the_world() {
    let now = Instant::now();
    let mut ads = started(now);
    full_chain(&mut ads, now);
    let state = ads.state();
    assert!(state.listener(LISTENER).is_some());
    assert!(state.route_config(ROUTES).is_some());
    assert!(state.cluster(V1).is_some() && state.cluster(V2).is_some());
    assert!(state.load_assignment(V1).is_some() && state.load_assignment(V2).is_some());
    assert_eq!(ads.waiting().count(), 0);
}

#[test]
fn a_nack_names_the_bad_resource_and_takes_the_good_ones() {
    let now = Instant::now();
    let mut ads = started(now);
    full_chain(&mut ads, now);
    // A changed V2: one sent again unchanged would be no change.
    let v2 = any(&envoy_types::pb::envoy::config::cluster::v3::Cluster {
        connect_timeout: Some(PbDuration {
            seconds: 2,
            nanos: 0,
        }),
        ..eds_cluster(V2)
    });
    let cds = vec![(V1, "c2", bad_cluster(V1)), (V2, "c2", v2)];
    let outcome = ads.handle_response(&delta(CDS, "n5", cds, &[]), now);
    assert_eq!(outcome.rejected.len(), 1);
    let nack = for_type(&outcome.requests, CDS);
    assert_eq!(nack.response_nonce, "n5");
    let status = nack.error_detail.as_ref().expect("a NACK");
    assert_eq!(status.code, 3);
    assert!(status.message.contains(V1), "{}", status.message);
    assert!(!status.message.contains(V2), "{}", status.message);
    assert!(
        outcome
            .changes
            .iter()
            .any(|c| c.name == V2 && c.change == Change::Updated)
    );

    // The bad copy is not held: a new stream announces the old version.
    let requests = ads.on_stream_start(now);
    let cds = for_type(&requests, CDS);
    assert_eq!(cds.initial_resource_versions[V1], "c1");
    assert_eq!(cds.initial_resource_versions[V2], "c2");
}

#[test]
fn removed_resources_are_deleted_for_every_type() {
    let now = Instant::now();
    let mut ads = started(now);
    full_chain(&mut ads, now);
    let outcome = ads.handle_response(&delta(EDS, "n5", vec![], &[V2]), now);
    assert!(ads.state().load_assignment(V2).is_none());
    assert!(
        outcome
            .changes
            .iter()
            .any(|c| c.name == V2 && c.change == Change::DoesNotExist)
    );
    let eds = ads.state().snapshot();
    assert_eq!(eds.get(EDS).unwrap().does_not_exist, [V2]);
    assert_eq!(for_type(&outcome.requests, EDS).response_nonce, "n5");

    ads.handle_response(&delta(RDS, "n6", vec![], &[ROUTES]), now);
    assert!(ads.state().route_config(ROUTES).is_none());
    // Nothing routes to the clusters any more.
    assert_eq!(ads.state().subscribed(CDS).count(), 0);
}

#[test]
fn ignore_resource_deletion_keeps_listeners_and_clusters() {
    let now = Instant::now();
    let mut ads = DeltaAdsState::new(&node()).with_ignore_resource_deletion(true);
    ads.subscribe_listener(LISTENER, now);
    ads.on_stream_start(now);
    full_chain(&mut ads, now);
    ads.handle_response(&delta(LDS, "n5", vec![], &[LISTENER]), now);
    ads.handle_response(&delta(CDS, "n6", vec![], &[V1]), now);
    assert!(ads.state().listener(LISTENER).is_some());
    assert!(ads.state().cluster(V1).is_some());
}

#[test]
fn removing_a_name_never_received_marks_it_missing() {
    let now = Instant::now();
    let mut ads = started(now);
    let outcome = ads.handle_response(&delta(LDS, "n1", vec![], &[LISTENER]), now);
    assert_eq!(outcome.changes.len(), 1);
    assert_eq!(outcome.changes[0].change, Change::DoesNotExist);
    assert_eq!(ads.waiting().count(), 0);
}

#[test]
fn subscription_changes_send_only_the_difference() {
    let now = Instant::now();
    let mut ads = started(now);
    full_chain(&mut ads, now);
    let rds = vec![(ROUTES, "r2", route_config(ROUTES, &[V2, V3]))];
    let outcome = ads.handle_response(&delta(RDS, "n5", rds, &[]), now);
    let cds = for_type(&outcome.requests, CDS);
    assert_eq!(cds.resource_names_subscribe, [V3]);
    assert_eq!(cds.resource_names_unsubscribe, [V1]);
    assert!(cds.response_nonce.is_empty());
    let eds = for_type(&outcome.requests, EDS);
    assert!(eds.resource_names_subscribe.is_empty());
    assert_eq!(eds.resource_names_unsubscribe, [V1]);

    let outcome = ads.unsubscribe_listener(LISTENER, now);
    let lds = for_type(&outcome.requests, LDS);
    assert_eq!(lds.resource_names_unsubscribe, [LISTENER]);
    assert_eq!(ads.state().subscribed(RDS).count(), 0);
}

#[test]
fn a_new_stream_subscribes_again_with_the_versions_held() {
    let now = Instant::now();
    let mut ads = started(now);
    full_chain(&mut ads, now);
    ads.on_stream_end();
    let requests = ads.on_stream_start(now);
    let kinds: Vec<&str> = requests.iter().map(|r| r.type_url.as_str()).collect();
    assert_eq!(
        kinds,
        ResourceType::ALL[..4]
            .iter()
            .map(|k| k.type_url())
            .collect::<Vec<_>>()
    );
    assert!(requests[0].node.is_some());
    assert!(requests[1..].iter().all(|r| r.node.is_none()));
    for r in &requests {
        assert!(r.response_nonce.is_empty());
        let mut held: Vec<&String> = r.initial_resource_versions.keys().collect();
        held.sort();
        let mut subscribed: Vec<&String> = r.resource_names_subscribe.iter().collect();
        subscribed.sort();
        assert_eq!(held, subscribed);
    }
    assert_eq!(for_type(&requests, EDS).initial_resource_versions[V1], "e1");
}
