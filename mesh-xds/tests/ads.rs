//! The ADS client against a real ADS server over a real stream.

#[path = "support/pki.rs"]
mod pki;
mod support;

use std::sync::Arc;
use std::time::Duration;

use mesh_core::resolve::ResolveState;
use mesh_core::{Authority, Endpoint, EndpointSet, Resolve, StaticResolve};
use mesh_xds::ads::{AdsClient, AdsHandle, AdsView, Backoff, Protocol, ResourceType};
use mesh_xds::resource::RouteSource;
use mesh_xds::{Bootstrap, XdsResolve};
use pki::Pki;
use support::resources::{
    LISTENER, ROUTES, V1, V2, bad_route_config, eds_cluster, listener, load_assignment,
    logical_dns_cluster, route_config,
};
use support::{AdsServer, WAIT};
use tokio::sync::watch;

const LDS: ResourceType = ResourceType::Listener;
const RDS: ResourceType = ResourceType::RouteConfig;
const CDS: ResourceType = ResourceType::Cluster;
const EDS: ResourceType = ResourceType::LoadAssignment;

/// A server with the reviews chain LDS → RDS (to `cluster`) → CDS → EDS.
async fn reviews_server(cluster: &str) -> AdsServer {
    let server = AdsServer::start().await;
    serve_reviews(&server, cluster);
    server
}

fn serve_reviews(server: &AdsServer, cluster: &str) {
    server.set(LDS.type_url(), vec![listener(LISTENER, ROUTES)]);
    server.set(RDS.type_url(), vec![route_config(ROUTES, cluster)]);
    server.set(CDS.type_url(), vec![eds_cluster(V1), eds_cluster(V2)]);
    server.set(
        EDS.type_url(),
        vec![
            load_assignment(V1, "127.0.0.1"),
            load_assignment(V2, "127.0.0.2"),
        ],
    );
}

fn client(server: &AdsServer) -> AdsHandle {
    client_speaking(server, Protocol::StateOfTheWorld)
}

fn client_speaking(server: &AdsServer, protocol: Protocol) -> AdsHandle {
    let bootstrap = Bootstrap::insecure(
        &server.authority(),
        "sidecar~127.0.0.1~test.default~default.svc.cluster.local",
    )
    .unwrap();
    let backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
    };
    let ads = AdsClient::new(&bootstrap)
        .with_backoff(backoff)
        .with_protocol(protocol)
        .spawn()
        .unwrap();
    ads.subscribe_listener(LISTENER);
    ads
}

async fn wait_for_view(
    updates: &mut watch::Receiver<Arc<AdsView>>,
    what: &str,
    pred: impl Fn(&AdsView) -> bool,
) -> Arc<AdsView> {
    let found = tokio::time::timeout(WAIT, async {
        updates.wait_for(|v| pred(v)).await.map(|v| v.clone())
    })
    .await;
    match found {
        Ok(Ok(view)) => view,
        Ok(Err(_)) => panic!("the client stopped while waiting for {what}"),
        Err(_) => panic!(
            "no view with {what}; last: {:#?}",
            updates.borrow().snapshot()
        ),
    }
}

/// The clusters the reviews route configuration sends to.
fn routed_clusters(view: &AdsView) -> Vec<String> {
    view.route_configs
        .get(ROUTES)
        .map(|rc| rc.table.clusters().map(|c| c.as_str().to_owned()).collect())
        .unwrap_or_default()
}

fn resolved_to(view: &AdsView, cluster: &str) -> bool {
    routed_clusters(view) == [cluster]
        && view.clusters.contains_key(cluster)
        && view.load_assignments.contains_key(cluster)
}

#[tokio::test]
async fn the_chain_resolves_and_every_type_is_acked() {
    let server = reviews_server(V1).await;
    let ads = client(&server);
    let mut updates = ads.updates();

    let view = wait_for_view(&mut updates, "reviews resolved to v1", |v| {
        resolved_to(v, V1)
    })
    .await;
    assert!(view.connected);
    let l = &view.listeners[LISTENER];
    assert!(
        matches!(&l.routes, RouteSource::Rds { route_config_name } if route_config_name == ROUTES)
    );
    let endpoints = &view.load_assignments[V1].endpoints;
    assert_eq!(endpoints.len(), 1);
    assert_eq!(
        endpoints.as_slice()[0].addr,
        "127.0.0.1:9080".parse().unwrap()
    );
    // Only the cluster routed to is subscribed, so v2 is not there.
    assert!(!view.clusters.contains_key(V2));

    for kind in [LDS, RDS, CDS, EDS] {
        let ack = server
            .wait_for_request(|r| r.type_url == kind.type_url() && r.is_ack())
            .await;
        assert!(
            !ack.version.is_empty(),
            "{kind} ACK without a version: {ack:?}"
        );
    }
    let eds = server
        .wait_for_request(|r| r.type_url == EDS.type_url())
        .await;
    assert_eq!(eds.names, [V1]);
    assert!(server.requests().iter().all(|r| r.error.is_none()));
}

#[tokio::test]
async fn a_bad_route_config_is_nacked_and_the_good_one_kept() {
    let server = reviews_server(V1).await;
    let ads = client(&server);
    let mut updates = ads.updates();
    wait_for_view(&mut updates, "reviews resolved to v1", |v| {
        resolved_to(v, V1)
    })
    .await;
    let good = server
        .wait_for_request(|r| r.type_url == RDS.type_url() && r.is_ack())
        .await;

    server.set(RDS.type_url(), vec![bad_route_config(ROUTES, V2)]);
    let nack = server
        .wait_for_request(|r| r.type_url == RDS.type_url() && r.error.is_some())
        .await;
    let error = nack.error.as_deref().unwrap();
    assert!(
        error.contains(&format!("RouteConfiguration {ROUTES:?}")),
        "{error}"
    );
    assert!(
        error.contains("virtual_hosts[0].routes[0].match.safe_regex.regex"),
        "{error}"
    );
    // A NACK carries the last accepted version and the rejected response's nonce.
    assert_eq!(nack.version, good.version);
    assert_ne!(nack.nonce, good.nonce);

    let view = wait_for_view(&mut updates, "the NACK in the snapshot", |v| {
        v.snapshot().get(RDS).is_some_and(|t| t.error.is_some())
    })
    .await;
    assert_eq!(routed_clusters(&view), [V1]);
    assert!(resolved_to(&view, V1));
    let snapshot = view.snapshot();
    let rds = snapshot.get(RDS).unwrap();
    assert_eq!(rds.nacked.len(), 1);
    assert_eq!(rds.nacked[0].0, ROUTES);
    // Counted: the first RDS response ACKed, the bad one NACKed, one stream.
    let stats = ads.stats();
    assert_eq!((stats.acks(RDS), stats.nacks(RDS)), (1, 1));
    assert!(stats.acks(LDS) >= 1 && stats.nacks(LDS) == 0);
    assert_eq!(stats.streams(), 1);
    assert!(stats.last_accepted().is_some());
}

#[tokio::test]
async fn the_last_config_serves_while_disconnected_and_a_reconnect_resubscribes() {
    let mut server = reviews_server(V1).await;
    let ads = client(&server);
    let mut updates = ads.updates();
    wait_for_view(&mut updates, "reviews resolved to v1", |v| {
        resolved_to(v, V1)
    })
    .await;

    server.stop().await;
    let view = wait_for_view(&mut updates, "a disconnected view", |v| !v.connected).await;
    assert!(resolved_to(&view, V1), "the last good config keeps serving");

    let before = server.requests().len();
    serve_reviews(&server, V2);
    server.restart().await;
    let view = wait_for_view(&mut updates, "reviews resolved to v2", |v| {
        v.connected && resolved_to(v, V2)
    })
    .await;
    assert!(!view.clusters.contains_key(V1));

    // The new stream subscribed to the listener again, with the version
    // accepted on the old one and no nonce.
    let requests = server.requests();
    let resubscribe = requests[before..]
        .iter()
        .find(|r| r.type_url == LDS.type_url())
        .expect("an LDS request on the new stream");
    assert_eq!(resubscribe.names, [LISTENER]);
    assert!(resubscribe.nonce.is_empty());
    assert!(!resubscribe.version.is_empty());
}

/// The resources a view holds, each type printed, to compare two views.
/// A route table prints its virtual hosts: its domain index is a hash map,
/// printed in no fixed order.
fn config(view: &AdsView) -> [String; 4] {
    let route_configs: Vec<_> = view
        .route_configs
        .iter()
        .map(|(name, rc)| (name, &rc.name, rc.table.virtual_hosts(), &rc.ignored))
        .collect();
    [
        format!("{:?}", view.listeners),
        format!("{route_configs:?}"),
        format!("{:?}", view.clusters),
        format!("{:?}", view.load_assignments),
    ]
}

#[tokio::test]
async fn delta_and_state_of_the_world_give_the_same_resulting_config() {
    let server = reviews_server(V1).await;
    let sotw = client(&server);
    let delta = client_speaking(&server, Protocol::Delta);

    let resolved = |v: &AdsView| resolved_to(v, V1);
    let sotw_view = wait_for_view(&mut sotw.updates(), "SotW resolved to v1", resolved).await;
    let delta_view = wait_for_view(&mut delta.updates(), "delta resolved to v1", resolved).await;
    assert_eq!(config(&delta_view), config(&sotw_view));
    assert_eq!(delta_view.listeners.len(), 1);
    assert_eq!(delta_view.route_configs.len(), 1);
    assert_eq!(delta_view.clusters.len(), 1);
    assert_eq!(delta_view.load_assignments.len(), 1);

    // Every type was ACKed over delta: a nonce, no error, no SotW version.
    for kind in [LDS, RDS, CDS, EDS] {
        server
            .wait_for_request(|r| {
                r.type_url == kind.type_url() && r.is_ack() && r.version.is_empty()
            })
            .await;
    }
    // Delta asks for EDS by name, only the cluster routed to.
    let eds = server
        .wait_for_request(|r| r.type_url == EDS.type_url() && r.version.is_empty())
        .await;
    assert_eq!(eds.names, [V1]);
    assert!(server.requests().iter().all(|r| r.error.is_none()));
}

#[tokio::test]
async fn a_nack_over_delta_names_the_bad_resource() {
    let server = reviews_server(V1).await;
    let ads = client_speaking(&server, Protocol::Delta);
    let mut updates = ads.updates();
    wait_for_view(&mut updates, "reviews resolved to v1", |v| {
        resolved_to(v, V1)
    })
    .await;

    server.set(RDS.type_url(), vec![bad_route_config(ROUTES, V2)]);
    let nack = server
        .wait_for_request(|r| r.type_url == RDS.type_url() && r.error.is_some())
        .await;
    let error = nack.error.as_deref().unwrap();
    assert!(
        error.contains(&format!("RouteConfiguration {ROUTES:?}")),
        "{error}"
    );
    assert!(!nack.nonce.is_empty());

    let view = wait_for_view(&mut updates, "the NACK in the snapshot", |v| {
        v.snapshot().get(RDS).is_some_and(|t| t.error.is_some())
    })
    .await;
    assert!(resolved_to(&view, V1), "the good route config is kept");
    let snapshot = view.snapshot();
    let rds = snapshot.get(RDS).unwrap();
    assert_eq!(rds.nacked.len(), 1);
    assert_eq!(rds.nacked[0].0, ROUTES);
}

#[tokio::test]
async fn a_removal_over_delta_deletes() {
    let server = reviews_server(V1).await;
    let ads = client_speaking(&server, Protocol::Delta);
    let mut updates = ads.updates();
    wait_for_view(&mut updates, "reviews resolved to v1", |v| {
        resolved_to(v, V1)
    })
    .await;

    server.set(CDS.type_url(), vec![eds_cluster(V2)]);
    let view = wait_for_view(&mut updates, "cluster v1 gone", |v| {
        !v.clusters.contains_key(V1)
    })
    .await;
    let snapshot = view.snapshot();
    let cds = snapshot.get(CDS).unwrap();
    assert_eq!(cds.does_not_exist, [V1]);
    // Still routed to, so still subscribed.
    assert_eq!(cds.subscribed, [V1]);
}

#[tokio::test]
async fn unsubscribing_over_delta_names_what_is_dropped() {
    let server = reviews_server(V1).await;
    let ads = client_speaking(&server, Protocol::Delta);
    let mut updates = ads.updates();
    wait_for_view(&mut updates, "reviews resolved to v1", |v| {
        resolved_to(v, V1)
    })
    .await;

    ads.unsubscribe_listener(LISTENER);
    for (kind, name) in [(LDS, LISTENER), (RDS, ROUTES), (CDS, V1), (EDS, V1)] {
        server
            .wait_for_request(|r| r.type_url == kind.type_url() && r.unsubscribed == [name])
            .await;
    }
    let view = wait_for_view(&mut updates, "nothing held", |v| v.listeners.is_empty()).await;
    assert!(view.clusters.is_empty() && view.load_assignments.is_empty());
}

#[tokio::test]
async fn a_reconnect_over_delta_sends_the_versions_held() {
    let mut server = reviews_server(V1).await;
    let ads = client_speaking(&server, Protocol::Delta);
    let mut updates = ads.updates();
    wait_for_view(&mut updates, "reviews resolved to v1", |v| {
        resolved_to(v, V1)
    })
    .await;

    server.stop().await;
    wait_for_view(&mut updates, "a disconnected view", |v| !v.connected).await;
    let before = server.requests().len();
    server.restart().await;
    let view = wait_for_view(&mut updates, "connected again", |v| v.connected).await;
    assert!(resolved_to(&view, V1));

    // Each type is subscribed again with the version of what is held, and
    // no nonce.
    for (kind, name) in [(LDS, LISTENER), (RDS, ROUTES), (CDS, V1), (EDS, V1)] {
        let again = server
            .wait_for_request(|r| {
                r.type_url == kind.type_url() && r.initial_versions.contains_key(name)
            })
            .await;
        assert_eq!(again.names, [name]);
        assert!(again.nonce.is_empty());
    }
    let requests = server.requests();
    let first = requests[before..]
        .first()
        .expect("a request on the new stream");
    assert_eq!(first.type_url, LDS.type_url());
    assert_eq!(first.initial_versions.len(), 1);
}

/// A bootstrap for `server` with `tls` channel credentials from `pki`'s
/// files: its root, and the client certificate when `with_identity`.
fn tls_bootstrap(server: &AdsServer, pki: &Pki, with_identity: bool) -> Bootstrap {
    let files = |name: &str| pki.dir().join(name).display().to_string();
    let mut config = serde_json::json!({ "ca_certificate_file": files("root-cert.pem") });
    if with_identity {
        config["certificate_file"] = files("cert-chain.pem").into();
        config["private_key_file"] = files("key.pem").into();
    }
    let json = serde_json::json!({
        "xds_servers": [{
            "server_uri": server.authority(),
            "channel_creds": [{ "type": "tls", "config": config }],
            "server_features": ["xds_v3"],
        }],
        "node": { "id": "sidecar~127.0.0.1~test.default~default.svc.cluster.local" },
    });
    Bootstrap::from_json("test", &json.to_string()).unwrap()
}

#[tokio::test]
async fn tls_to_the_control_plane_with_a_client_certificate() {
    let pki = Pki::new("ads");
    let server = AdsServer::start_tls(pki.server_tls()).await;
    serve_reviews(&server, V1);
    let ads = AdsClient::start(&tls_bootstrap(&server, &pki, true)).unwrap();
    ads.subscribe_listener(LISTENER);
    let mut updates = ads.updates();
    let view = wait_for_view(&mut updates, "reviews over TLS", |v| resolved_to(v, V1)).await;
    assert!(view.connected);
    assert_eq!(view.stream_error, None);
}

#[tokio::test]
async fn tls_without_a_client_certificate_or_with_another_root_never_connects() {
    let pki = Pki::new("ads");
    let server = AdsServer::start_tls(pki.server_tls()).await;
    serve_reviews(&server, V1);

    // The server asks for a client certificate; this client has none.
    let ads = AdsClient::start(&tls_bootstrap(&server, &pki, false)).unwrap();
    ads.subscribe_listener(LISTENER);
    let mut updates = ads.updates();
    let view = wait_for_view(&mut updates, "a failed stream", |v| {
        v.stream_error.is_some()
    })
    .await;
    assert!(view.listeners.is_empty(), "{:?}", view.stream_error);

    // The server's certificate is not signed by the root this client trusts.
    let other = Pki::new("other");
    let ads = AdsClient::start(&tls_bootstrap(&server, &other, true)).unwrap();
    ads.subscribe_listener(LISTENER);
    let mut updates = ads.updates();
    let view = wait_for_view(&mut updates, "a failed stream", |v| {
        v.stream_error.is_some()
    })
    .await;
    assert!(view.listeners.is_empty());
    let error = view.stream_error.as_deref().unwrap();
    assert!(error.contains("certificate"), "{error}");
    assert!(
        !server.requests().iter().any(|r| r.is_ack()),
        "nothing was served"
    );
}

#[tokio::test]
async fn a_unix_socket_control_plane() {
    let dir = std::env::temp_dir().join(format!("mesh-ads-uds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("xds.sock");
    let server = AdsServer::start_unix(&path).await;
    serve_reviews(&server, V1);
    let uri = format!("unix://{}", path.display());
    let bootstrap = Bootstrap::insecure(
        &uri,
        "sidecar~127.0.0.1~uds.default~default.svc.cluster.local",
    )
    .unwrap();
    let ads = AdsClient::start(&bootstrap).unwrap();
    ads.subscribe_listener(LISTENER);
    let mut updates = ads.updates();
    wait_for_view(&mut updates, "reviews over a Unix socket", |v| {
        resolved_to(v, V1)
    })
    .await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The endpoint addresses of `state`, if it is ready.
fn ready_addrs(state: &ResolveState) -> Option<Vec<String>> {
    match state {
        ResolveState::Ready(set) => Some(set.iter().map(|e| e.addr.to_string()).collect()),
        _ => None,
    }
}

#[tokio::test]
async fn xds_resolve_follows_a_cluster_from_dns_to_eds_and_lets_dns_go() {
    let server = reviews_server(V1).await;
    server.set(
        CDS.type_url(),
        vec![logical_dns_cluster(V1, "reviews-dns", 9080)],
    );
    let dns = StaticResolve::default();
    let dns_target: Authority = "reviews-dns:9080".parse().unwrap();
    dns.set(
        &dns_target,
        EndpointSet::new([Endpoint::new("10.0.0.1:9080".parse().unwrap())]),
    );
    let ads = client(&server);
    let resolve = XdsResolve::new(&ads, dns.clone());
    let resolution = resolve.resolve_named(V1);
    let wait_for = |want: &'static str| {
        let mut resolution = resolution.clone();
        async move {
            tokio::time::timeout(WAIT, async {
                loop {
                    if ready_addrs(&resolution.current()).as_deref() == Some(&[want.to_owned()][..])
                    {
                        return;
                    }
                    resolution.changed().await.expect("the resolver runs");
                }
            })
            .await
            .unwrap_or_else(|_| panic!("never {want}: {:?}", resolution.current()))
        }
    };
    wait_for("10.0.0.1:9080").await;
    // The DNS answer changes: relayed.
    dns.set(
        &dns_target,
        EndpointSet::new([Endpoint::new("10.0.0.2:9080".parse().unwrap())]),
    );
    wait_for("10.0.0.2:9080").await;

    // The cluster becomes EDS: its load assignment, and DNS no longer.
    server.set(CDS.type_url(), vec![eds_cluster(V1)]);
    wait_for("127.0.0.1:9080").await;
    dns.set(
        &dns_target,
        EndpointSet::new([Endpoint::new("10.0.0.3:9080".parse().unwrap())]),
    );
    // A relay still running would pass this on as soon as it runs.
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        ready_addrs(&resolution.current()),
        Some(vec!["127.0.0.1:9080".to_owned()]),
        "no DNS answer after the switch"
    );
}

#[tokio::test]
async fn a_listener_stays_subscribed_until_every_subscription_is_undone() {
    let server = reviews_server(V1).await;
    let ads = client(&server); // one subscription to LISTENER
    ads.subscribe_listener(LISTENER);
    let mut updates = ads.updates();
    wait_for_view(&mut updates, "reviews", |v| resolved_to(v, V1)).await;

    ads.unsubscribe_listener(LISTENER);
    // A change the client can only see while still subscribed.
    server.set(RDS.type_url(), vec![route_config(ROUTES, V2)]);
    server.set(EDS.type_url(), vec![load_assignment(V2, "127.0.0.2")]);
    server.set(CDS.type_url(), vec![eds_cluster(V1), eds_cluster(V2)]);
    wait_for_view(&mut updates, "reviews moved to v2", |v| resolved_to(v, V2)).await;

    ads.unsubscribe_listener(LISTENER);
    wait_for_view(&mut updates, "nothing subscribed", |v| {
        v.listeners.is_empty()
    })
    .await;
    server
        .wait_for_request(|r| r.type_url == LDS.type_url() && r.names.is_empty())
        .await;
}
