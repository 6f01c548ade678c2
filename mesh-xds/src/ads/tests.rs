use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use envoy_types::pb::google::protobuf::{Any, Duration as PbDuration};
use prost::Name;

use super::*;

mod build;
mod delta;
use build::*;
fn node() -> Node {
    Node {
        id: "sidecar~10.0.0.1~productpage-v1.default~default.svc.cluster.local".into(),
        ..Node::default()
    }
}

/// A client subscribed to the reviews listener on a stream that is up.
fn started(now: Instant) -> AdsState {
    let mut ads = AdsState::new(&node());
    ads.subscribe_listener(LISTENER, now);
    ads.on_stream_start(now);
    ads
}

fn names(request: &DiscoveryRequest) -> Vec<&str> {
    request.resource_names.iter().map(String::as_str).collect()
}

fn subscribed(ads: &AdsState, kind: ResourceType) -> Vec<&str> {
    ads.subscribed(kind).collect()
}

/// Drives `ads` through LDS, RDS, CDS and EDS for the three reviews
/// versions, all accepted as version "1".
fn full_chain(ads: &mut AdsState, now: Instant) {
    let lds = response(
        ResourceType::Listener,
        "1",
        "l1",
        vec![listener(LISTENER, ROUTES)],
    );
    ads.handle_response(&lds, now);
    let rds = response(
        ResourceType::RouteConfig,
        "1",
        "r1",
        vec![route_config(ROUTES, &[V1, V2, V3])],
    );
    ads.handle_response(&rds, now);
    let clusters = vec![good_cluster(V1), good_cluster(V2), good_cluster(V3)];
    ads.handle_response(&response(ResourceType::Cluster, "1", "c1", clusters), now);
    let cla = vec![
        load_assignment(V1, "10.0.0.1"),
        load_assignment(V2, "10.0.0.2"),
    ];
    ads.handle_response(&response(ResourceType::LoadAssignment, "1", "e1", cla), now);
}

#[test]
fn subscriptions_grow_down_the_chain() {
    let now = Instant::now();
    let mut ads = AdsState::new(&node());
    assert!(
        ads.subscribe_listener(LISTENER, now).requests.is_empty(),
        "no stream yet"
    );
    let first = ads.on_stream_start(now);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].type_url, ResourceType::Listener.type_url());
    assert_eq!(names(&first[0]), [LISTENER]);
    assert_eq!(first[0].node.as_ref().unwrap().id, node().id);
    assert_eq!(first[0].version_info, "");

    let lds = response(
        ResourceType::Listener,
        "1",
        "l1",
        vec![listener(LISTENER, ROUTES)],
    );
    let out = ads.handle_response(&lds, now);
    assert!(out.rejected.is_empty());
    assert_eq!(
        out.changes,
        [Changed::new(
            ResourceType::Listener,
            LISTENER.into(),
            Change::Updated
        )]
    );
    let [ack, rds_sub] = &out.requests[..] else {
        panic!("{:?}", out.requests)
    };
    assert_eq!(
        (
            ack.type_url.as_str(),
            ack.version_info.as_str(),
            ack.response_nonce.as_str()
        ),
        (ResourceType::Listener.type_url(), "1", "l1")
    );
    assert!(ack.error_detail.is_none() && ack.node.is_none());
    assert_eq!(rds_sub.type_url, ResourceType::RouteConfig.type_url());
    assert_eq!(names(rds_sub), [ROUTES]);
    assert_eq!(rds_sub.response_nonce, "");

    let rds = response(
        ResourceType::RouteConfig,
        "1",
        "r1",
        vec![route_config(ROUTES, &[V1, V2, V3])],
    );
    let out = ads.handle_response(&rds, now);
    let [_, cds_sub] = &out.requests[..] else {
        panic!("{:?}", out.requests)
    };
    assert_eq!(cds_sub.type_url, ResourceType::Cluster.type_url());
    assert_eq!(names(cds_sub), [V1, V2, V3]);

    let clusters = vec![good_cluster(V1), good_cluster(V2), good_cluster(V3)];
    let out = ads.handle_response(&response(ResourceType::Cluster, "1", "c1", clusters), now);
    let [_, eds_sub] = &out.requests[..] else {
        panic!("{:?}", out.requests)
    };
    assert_eq!(eds_sub.type_url, ResourceType::LoadAssignment.type_url());
    assert_eq!(names(eds_sub), [V1, V2, V3]);

    let cla = vec![
        load_assignment(V1, "10.0.0.1"),
        load_assignment(V2, "10.0.0.2"),
    ];
    let out = ads.handle_response(&response(ResourceType::LoadAssignment, "1", "e1", cla), now);
    assert_eq!(out.requests.len(), 1, "only the ACK");
    assert_eq!(ads.load_assignment(V1).unwrap().endpoints.len(), 1);
    assert!(ads.route_config(ROUTES).is_some() && ads.cluster(V3).is_some());
    // v3's endpoints never came: still waiting, since the CDS response.
    let waiting: Vec<_> = ads.waiting().collect();
    assert_eq!(waiting, [(ResourceType::LoadAssignment, V3, now)]);
}

#[test]
fn a_mixed_response_applies_the_good_and_nacks_the_bad() {
    let t0 = Instant::now();
    let mut ads = started(t0);
    full_chain(&mut ads, t0);
    let v1_before = ads.cluster(V1).unwrap().clone();

    let t1 = t0 + Duration::from_secs(5);
    let mut v2 = eds_cluster(V2);
    v2.connect_timeout = Some(PbDuration {
        seconds: 2,
        nanos: 0,
    });
    let clusters = vec![bad_cluster(V1), any(&v2), good_cluster(V3)];
    let out = ads.handle_response(&response(ResourceType::Cluster, "2", "c2", clusters), t1);

    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].resource, V1);
    let [nack] = &out.requests[..] else {
        panic!("{:?}", out.requests)
    };
    assert_eq!(nack.type_url, ResourceType::Cluster.type_url());
    assert_eq!(nack.version_info, "1", "the last ACKed version");
    assert_eq!(nack.response_nonce, "c2");
    assert_eq!(names(nack), [V1, V2, V3]);
    let status = nack.error_detail.as_ref().unwrap();
    assert_eq!(status.code, 3);
    assert_eq!(status.message, out.rejected[0].to_string());
    assert!(
        status.message.contains(V1) && status.message.contains("connect_timeout"),
        "{}",
        status.message
    );

    // The good ones are applied, the bad one keeps its last good copy.
    let connect = |name| ads.cluster(name).unwrap().policy.connection.connect_timeout;
    assert_eq!(connect(V2), Duration::from_secs(2));
    assert_eq!(ads.cluster(V1).unwrap(), &v1_before);
    assert!(out.changes.iter().all(|c| c.name != V1));

    let dump = ads.snapshot();
    let cds = dump.get(ResourceType::Cluster).unwrap();
    assert_eq!(cds.version, "1");
    assert_eq!(cds.updated_at, Some(t1));
    assert_eq!(cds.accepted, [V1, V2, V3]);
    assert_eq!(cds.nacked, [(V1.to_owned(), out.rejected[0].to_string())]);

    // Fixed in the next version: ACKed, and the NACK state is gone.
    let clusters = vec![good_cluster(V1), good_cluster(V2), good_cluster(V3)];
    let out = ads.handle_response(&response(ResourceType::Cluster, "3", "c3", clusters), t1);
    assert!(out.requests[0].error_detail.is_none());
    assert_eq!(out.requests[0].version_info, "3");
    let dump = ads.snapshot();
    let cds = dump.get(ResourceType::Cluster).unwrap();
    assert!(cds.nacked.is_empty() && cds.error.is_none());
}

#[test]
fn a_bad_route_config_keeps_the_old_one_and_its_clusters() {
    let now = Instant::now();
    let mut ads = started(now);
    full_chain(&mut ads, now);
    let rds = response(
        ResourceType::RouteConfig,
        "2",
        "r2",
        vec![route_config(ROUTES, &[V1, ""])],
    );
    let out = ads.handle_response(&rds, now);
    let [nack] = &out.requests[..] else {
        panic!("{:?}", out.requests)
    };
    assert_eq!(
        (nack.version_info.as_str(), nack.response_nonce.as_str()),
        ("1", "r2")
    );
    assert!(
        nack.error_detail
            .as_ref()
            .unwrap()
            .message
            .starts_with("RouteConfiguration")
    );
    assert_eq!(
        ads.route_config(ROUTES).unwrap().table.clusters().count(),
        3
    );
    assert_eq!(subscribed(&ads, ResourceType::Cluster), [V1, V2, V3]);
}

#[test]
fn undecodable_and_unnamed_resources_are_nacked_by_index() {
    let now = Instant::now();
    let mut ads = started(now);
    let garbage = Any {
        type_url: Listener::type_url(),
        value: vec![0xff, 0xff, 0xff],
    };
    let unnamed = listener("", ROUTES);
    let wrong_type = good_cluster(V1);
    let lds = response(
        ResourceType::Listener,
        "1",
        "l1",
        vec![garbage, listener(LISTENER, ROUTES), unnamed, wrong_type],
    );
    let out = ads.handle_response(&lds, now);
    let named: Vec<_> = out.rejected.iter().map(|e| e.resource.as_str()).collect();
    assert_eq!(named, ["resources[0]", "resources[2]", "resources[3]"]);
    assert!(ads.listener(LISTENER).is_some());
    let message = &out.requests[0].error_detail.as_ref().unwrap().message;
    assert_eq!(message.matches("resources[").count(), 3, "{message}");
    assert_eq!(out.requests[0].version_info, "");
}

#[test]
fn listeners_and_clusters_left_out_are_deleted() {
    let now = Instant::now();
    let mut ads = started(now);
    full_chain(&mut ads, now);

    // CDS without v3: deleted (still subscribed, the route refers to it).
    let clusters = vec![good_cluster(V1), good_cluster(V2)];
    let out = ads.handle_response(&response(ResourceType::Cluster, "2", "c2", clusters), now);
    assert!(out.changes.contains(&Changed::new(
        ResourceType::Cluster,
        V3.into(),
        Change::DoesNotExist
    )));
    assert!(ads.cluster(V3).is_none());
    assert_eq!(subscribed(&ads, ResourceType::LoadAssignment), [V1, V2]);

    // An empty LDS response deletes the listener; RDS follows.
    let out = ads.handle_response(&response(ResourceType::Listener, "2", "l2", vec![]), now);
    assert!(ads.listener(LISTENER).is_none());
    assert_eq!(subscribed(&ads, ResourceType::Listener), [LISTENER]);
    assert!(subscribed(&ads, ResourceType::RouteConfig).is_empty());
    let lds_snapshot = ads.snapshot();
    assert_eq!(
        lds_snapshot
            .get(ResourceType::Listener)
            .unwrap()
            .does_not_exist,
        [LISTENER]
    );
    let kinds: Vec<_> = out.requests.iter().map(|r| r.type_url.as_str()).collect();
    assert_eq!(
        kinds,
        ResourceType::ALL[..4]
            .iter()
            .map(|k| k.type_url())
            .collect::<Vec<_>>()
    );
    assert!(
        out.requests[1..]
            .iter()
            .all(|r| r.resource_names.is_empty())
    );

    // RDS and EDS: absence means nothing.
    let mut ads = started(now);
    full_chain(&mut ads, now);
    ads.handle_response(
        &response(ResourceType::LoadAssignment, "2", "e2", vec![]),
        now,
    );
    assert!(ads.load_assignment(V1).is_some());
}

#[test]
fn deletion_can_be_ignored() {
    let now = Instant::now();
    let mut ads = AdsState::new(&node()).with_ignore_resource_deletion(true);
    ads.subscribe_listener(LISTENER, now);
    ads.on_stream_start(now);
    full_chain(&mut ads, now);
    ads.handle_response(&response(ResourceType::Listener, "2", "l2", vec![]), now);
    assert!(ads.listener(LISTENER).is_some());
    assert_eq!(subscribed(&ads, ResourceType::Cluster), [V1, V2, V3]);
}

#[test]
fn a_new_stream_subscribes_again_with_the_last_versions() {
    let t0 = Instant::now();
    let mut ads = started(t0);
    full_chain(&mut ads, t0);
    ads.handle_response(
        &response(
            ResourceType::Cluster,
            "2",
            "c2",
            vec![bad_cluster(V1), good_cluster(V2), good_cluster(V3)],
        ),
        t0,
    );
    ads.on_stream_end();
    assert_eq!(ads.waiting().count(), 0, "no timers without a stream");
    assert!(
        ads.subscribe_listener("ratings.default.svc.cluster.local:9080", t0)
            .requests
            .is_empty()
    );

    let t1 = t0 + Duration::from_secs(30);
    let requests = ads.on_stream_start(t1);
    let kinds: Vec<_> = requests.iter().map(|r| r.type_url.as_str()).collect();
    assert_eq!(
        kinds,
        ResourceType::ALL[..4]
            .iter()
            .map(|k| k.type_url())
            .collect::<Vec<_>>()
    );
    assert!(requests[0].node.is_some());
    assert!(requests[1..].iter().all(|r| r.node.is_none()));
    assert!(
        requests
            .iter()
            .all(|r| r.response_nonce.is_empty() && r.error_detail.is_none())
    );
    let versions: Vec<_> = requests.iter().map(|r| r.version_info.as_str()).collect();
    assert_eq!(versions, ["1", "1", "1", "1"]);
    assert_eq!(
        names(&requests[0]),
        ["ratings.default.svc.cluster.local:9080", LISTENER]
    );
    assert_eq!(names(&requests[2]), [V1, V2, V3]);
    let mut waiting: Vec<_> = ads.waiting().collect();
    waiting.sort();
    assert_eq!(
        waiting,
        [
            (
                ResourceType::Listener,
                "ratings.default.svc.cluster.local:9080",
                t1
            ),
            (ResourceType::LoadAssignment, V3, t1),
        ]
    );
}

#[test]
fn missing_resources_are_marked_when_the_timer_fires() {
    let now = Instant::now();
    let mut ads = started(now);
    assert_eq!(
        ads.waiting().collect::<Vec<_>>(),
        [(ResourceType::Listener, LISTENER, now)]
    );
    let later = now + DOES_NOT_EXIST_TIMEOUT;
    let out = ads.mark_missing(ResourceType::Listener, LISTENER);
    assert_eq!(
        out.changes,
        [Changed::new(
            ResourceType::Listener,
            LISTENER.into(),
            Change::DoesNotExist
        )]
    );
    assert_eq!(ads.waiting().count(), 0);
    assert!(
        ads.mark_missing(ResourceType::Listener, LISTENER)
            .changes
            .is_empty()
    );
    // It may still come later.
    let lds = response(
        ResourceType::Listener,
        "1",
        "l1",
        vec![listener(LISTENER, ROUTES)],
    );
    ads.handle_response(&lds, later);
    assert!(ads.listener(LISTENER).is_some());
    assert!(
        ads.snapshot()
            .get(ResourceType::Listener)
            .unwrap()
            .does_not_exist
            .is_empty()
    );
}

#[test]
fn unsubscribing_a_listener_unsubscribes_what_only_it_used() {
    let now = Instant::now();
    let mut ads = started(now);
    const RATINGS: &str = "ratings.default.svc.cluster.local:9080";
    const RATINGS_V1: &str = "outbound|9080|v1|ratings.default.svc.cluster.local";
    ads.subscribe_listener(RATINGS, now);
    let lds = response(
        ResourceType::Listener,
        "1",
        "l1",
        vec![listener(LISTENER, ROUTES), listener(RATINGS, RATINGS)],
    );
    ads.handle_response(&lds, now);
    let rds = response(
        ResourceType::RouteConfig,
        "1",
        "r1",
        vec![
            route_config(ROUTES, &[V1, V2]),
            route_config(RATINGS, &[RATINGS_V1, V1]),
        ],
    );
    ads.handle_response(&rds, now);
    let clusters = vec![good_cluster(V1), good_cluster(V2), good_cluster(RATINGS_V1)];
    ads.handle_response(&response(ResourceType::Cluster, "1", "c1", clusters), now);
    assert_eq!(
        subscribed(&ads, ResourceType::LoadAssignment),
        [RATINGS_V1, V1, V2],
        "names are sorted"
    );

    let out = ads.unsubscribe_listener(LISTENER, now);
    let kinds: Vec<_> = out.requests.iter().map(|r| r.type_url.as_str()).collect();
    assert_eq!(
        kinds,
        ResourceType::ALL[..4]
            .iter()
            .map(|k| k.type_url())
            .collect::<Vec<_>>()
    );
    assert_eq!(names(&out.requests[0]), [RATINGS]);
    assert_eq!(names(&out.requests[1]), [RATINGS]);
    assert_eq!(
        names(&out.requests[2]),
        [RATINGS_V1, V1],
        "v1 is still used by ratings"
    );
    assert_eq!(names(&out.requests[3]), [RATINGS_V1, V1]);
    assert_eq!(out.requests[2].version_info, "1");
    assert!(ads.listener(LISTENER).is_none() && ads.route_config(ROUTES).is_none());
    assert!(ads.cluster(V2).is_none() && ads.cluster(V1).is_some());
    let unsubscribed: Vec<_> = out
        .changes
        .iter()
        .filter(|c| c.change == Change::Unsubscribed)
        .map(|c| (c.kind, c.name.as_str()))
        .collect();
    assert_eq!(
        unsubscribed,
        [
            (ResourceType::Listener, LISTENER),
            (ResourceType::RouteConfig, ROUTES),
            (ResourceType::Cluster, V2),
            (ResourceType::LoadAssignment, V2),
        ]
    );
}

#[test]
fn unasked_resources_and_unknown_types_are_ignored() {
    let now = Instant::now();
    let mut ads = started(now);
    let lds = response(
        ResourceType::Listener,
        "1",
        "l1",
        vec![listener(LISTENER, ROUTES), listener("other:80", "")],
    );
    let out = ads.handle_response(&lds, now);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert!(ads.listener("other:80").is_none());
    let mut odd = response(ResourceType::Listener, "1", "x", vec![]);
    odd.type_url = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig".into();
    let out = ads.handle_response(&odd, now);
    assert!(out.requests.is_empty() && out.changes.is_empty());
}

#[test]
fn a_resource_sent_again_unchanged_stays_the_same_value() {
    let now = Instant::now();
    let mut ads = started(now);
    full_chain(&mut ads, now);
    let before = AdsView::new(&ads, true);
    // State of the world sends every cluster again when one changes.
    let clusters = vec![good_cluster(V1), bad_cluster(V2), good_cluster(V3)];
    let outcome = ads.handle_response(&response(ResourceType::Cluster, "2", "c2", clusters), now);
    let after = AdsView::new(&ads, true);
    assert!(std::sync::Arc::ptr_eq(
        &before.clusters[V1],
        &after.clusters[V1]
    ));
    assert!(outcome.changes.is_empty(), "{:?}", outcome.changes);
    assert_eq!(outcome.rejected.len(), 1);
    // The copy accepted before, sent again, clears the NACK without a change.
    let clusters = vec![good_cluster(V1), good_cluster(V2), good_cluster(V3)];
    let outcome = ads.handle_response(&response(ResourceType::Cluster, "3", "c3", clusters), now);
    assert!(outcome.changes.is_empty() && outcome.rejected.is_empty());
    assert!(
        AdsView::new(&ads, true)
            .rejected(ResourceType::Cluster, V2)
            .is_none()
    );
}

#[test]
fn the_dumps_hold_each_resource_as_it_came_with_its_version_and_nack() {
    use envoy_types::pb::envoy::admin::v3::{ClientResourceStatus, ClustersConfigDump};
    use prost::Message;
    use std::time::SystemTime;

    let t0 = Instant::now();
    let mut ads = started(t0);
    full_chain(&mut ads, t0);
    let t1 = t0 + Duration::from_secs(5);
    let clusters = vec![bad_cluster(V1), good_cluster(V2), good_cluster(V3)];
    ads.handle_response(&response(ResourceType::Cluster, "2", "c2", clusters), t1);

    let view = AdsView::new(&ads, true);
    let statuses: Vec<(ResourceType, &str, ClientResourceStatus)> = view
        .resources()
        .iter()
        .map(|r| (r.kind, r.name, r.status))
        .collect();
    use ClientResourceStatus::{Acked, Nacked, Requested};
    assert_eq!(
        statuses,
        [
            (ResourceType::Listener, LISTENER, Acked),
            (ResourceType::RouteConfig, ROUTES, Acked),
            (ResourceType::Cluster, V1, Nacked),
            (ResourceType::Cluster, V2, Acked),
            (ResourceType::Cluster, V3, Acked),
            (ResourceType::LoadAssignment, V1, Acked),
            (ResourceType::LoadAssignment, V2, Acked),
            (ResourceType::LoadAssignment, V3, Requested),
        ]
    );

    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let clock = Clock { instant: t1, wall };
    let dump = view.config_dump(clock);
    let types: Vec<&str> = dump.configs.iter().map(|c| c.type_url.as_str()).collect();
    assert_eq!(
        types,
        [
            "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
            "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
            "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
            "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
        ]
    );
    let cds = ClustersConfigDump::decode(dump.configs[2].value.as_slice()).unwrap();
    assert_eq!(cds.version_info, "1", "the last version accepted whole");
    let v1 = &cds.dynamic_active_clusters[0];
    assert_eq!(v1.client_status, Nacked as i32);
    assert_eq!(v1.version_info, "1");
    assert_eq!(
        v1.cluster.as_ref(),
        Some(&good_cluster(V1)),
        "the copy in use"
    );
    assert_eq!(v1.last_updated.as_ref().unwrap().seconds, 1_000_000 - 5);
    let error = v1.error_state.as_ref().unwrap();
    assert!(
        error.details.contains("connect_timeout"),
        "{}",
        error.details
    );
    assert_eq!(
        error.last_update_attempt.as_ref().unwrap().seconds,
        1_000_000
    );
    // Sent again unchanged: the version it last changed in, as Envoy
    // keeps an unchanged cluster's.
    let v2 = &cds.dynamic_active_clusters[1];
    assert_eq!(
        (v2.client_status, v2.version_info.as_str()),
        (Acked as i32, "1")
    );

    let csds = view.client_config(&node(), clock);
    assert_eq!(csds.node.as_ref().unwrap().id, node().id);
    assert_eq!(csds.generic_xds_configs.len(), 8);
    let eds_v3 = &csds.generic_xds_configs[7];
    assert_eq!(eds_v3.type_url, ResourceType::LoadAssignment.type_url());
    assert_eq!(eds_v3.name, V3);
    assert_eq!(eds_v3.client_status, Requested as i32);
    assert!(eds_v3.xds_config.is_none());
    let listener = &csds.generic_xds_configs[0];
    assert_eq!(
        listener.xds_config.as_ref().map(|a| a.type_url.as_str()),
        Some(Listener::type_url().as_str())
    );
}

#[test]
fn a_nack_keeps_the_time_its_copy_came_when_later_responses_leave_it_out() {
    use std::time::SystemTime;

    let t0 = Instant::now();
    let mut ads = started(t0);
    full_chain(&mut ads, t0);
    let t1 = t0 + Duration::from_secs(5);
    let bad = vec![load_assignment(V1, "not-an-address")];
    ads.handle_response(&response(ResourceType::LoadAssignment, "2", "e2", bad), t1);
    let t2 = t1 + Duration::from_secs(60);
    let other = vec![load_assignment(V2, "10.0.0.22")];
    ads.handle_response(
        &response(ResourceType::LoadAssignment, "3", "e3", other),
        t2,
    );

    let view = AdsView::new(&ads, true);
    let v1 = view
        .resources()
        .into_iter()
        .find(|r| r.kind == ResourceType::LoadAssignment && r.name == V1)
        .unwrap();
    assert!(v1.error.is_some(), "still NACKed");
    assert_eq!(v1.last_attempt, Some(t1), "when the rejected copy came");
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let clock = Clock { instant: t2, wall };
    let csds = view.client_config(&node(), clock);
    let eds_v1 = csds
        .generic_xds_configs
        .iter()
        .find(|c| c.type_url == ResourceType::LoadAssignment.type_url() && c.name == V1)
        .unwrap();
    let failed = eds_v1.error_state.as_ref().unwrap();
    assert_eq!(
        failed.last_update_attempt.as_ref().unwrap().seconds,
        1_000_000 - 60
    );
}

#[cfg(feature = "translate")]
#[test]
fn a_gateway_listener_subscribes_to_its_secrets_and_dumps_them_redacted() {
    use envoy_types::pb::envoy::admin::v3::SecretsConfigDump;
    use mesh_core::policy::{Pem, ServerTls};
    use prost::Message;

    let now = Instant::now();
    let mut ads = AdsState::new(&node());
    let name = "xds.istio.io/grpc/lds/inbound/0.0.0.0:8443";
    ads.subscribe_listener(name, now);
    ads.on_stream_start(now);
    let tls = ServerTls {
        credential: Some("edge".into()),
        certificate_chain: Pem::Inline("CHAIN".into()),
        private_key: Pem::Inline("PRIVATE".into()),
        ..ServerTls::default()
    };
    let server_names = vec!["edge.example.com".to_owned()];
    let chain = crate::translate::EnvoyChain {
        routes: "https.8443.edge.gw.istio-system",
        server_names: &server_names,
        tls: Some(&tls),
    };
    let l = crate::translate::envoy_listener_chains(
        name,
        "0.0.0.0:8443".parse().unwrap(),
        "gateway",
        &[chain],
    );
    let out = ads.handle_response(
        &response(ResourceType::Listener, "1", "l1", vec![any(&l)]),
        now,
    );
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let kinds: Vec<_> = out.requests.iter().map(|r| r.type_url.as_str()).collect();
    assert!(
        kinds.contains(&ResourceType::Secret.type_url()),
        "{kinds:?}"
    );
    assert_eq!(
        subscribed(&ads, ResourceType::Secret),
        ["kubernetes://edge"]
    );
    assert_eq!(
        subscribed(&ads, ResourceType::RouteConfig),
        ["https.8443.edge.gw.istio-system"]
    );
    assert!(
        ads.waiting()
            .any(|(k, n, _)| k == ResourceType::Secret && n == "kubernetes://edge")
    );

    let secrets: Vec<Any> = crate::translate::server_tls_secrets(&tls)
        .iter()
        .map(any)
        .collect();
    let out = ads.handle_response(&response(ResourceType::Secret, "1", "s1", secrets), now);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(out.requests[0].response_nonce, "s1");
    assert!(matches!(
        ads.secret("kubernetes://edge"),
        Some(XdsSecret::Certificate { private_key: Pem::Inline(k), .. }) if k == "PRIVATE"
    ));

    let view = AdsView::new(&ads, true);
    let dump = view.config_dump(Clock {
        instant: now,
        wall: std::time::SystemTime::now(),
    });
    let secrets = dump.configs.last().unwrap();
    assert!(secrets.type_url.ends_with("SecretsConfigDump"));
    let secrets = SecretsConfigDump::decode(secrets.value.as_slice()).unwrap();
    let kept = &secrets.dynamic_active_secrets[0]
        .secret
        .as_ref()
        .unwrap()
        .value;
    let text = String::from_utf8_lossy(kept);
    assert!(text.contains("CHAIN") && text.contains("[redacted]"));
    assert!(!text.contains("PRIVATE"));
    let csds = view.client_config(
        &node(),
        Clock {
            instant: now,
            wall: std::time::SystemTime::now(),
        },
    );
    assert!(csds.generic_xds_configs.iter().all(|c| {
        let bytes = c
            .xds_config
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        !String::from_utf8_lossy(&bytes).contains("PRIVATE")
    }));

    // The listener gone, nothing refers to the secret any more.
    let out = ads.unsubscribe_listener(name, now);
    assert!(out.changes.iter().any(|c| c.kind == ResourceType::Secret));
    assert!(subscribed(&ads, ResourceType::Secret).is_empty());
}
