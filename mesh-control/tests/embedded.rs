//! The control plane inside a program, as a launcher embeds it: Istio
//! YAML handed over as text, the endpoints of services it started on
//! ephemeral ports registered from code, and a `MeshClient` following it.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use mesh_control::ControlPlane;
use mesh_control::config_dir::load_texts;
use mesh_core::registry::Instance;
use mesh_tower::MeshClient;
use mesh_xds::server::AdsServer;
use support::control::upstream;
use support::mesh::{bookinfo, client, get, wait_for_version};

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\n\
                       spec:\n  selector: {app: reviews}\n  ports: [{name: http, port: 9080}]\n";

/// `plane` served over ADS on a free port of 127.0.0.1, until the test's
/// runtime ends.
async fn serve(plane: &ControlPlane) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let xds = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AdsServer::new(plane.clone()).into_service())
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    xds
}

/// An instance of reviews `version` at `addr`, as a launcher registers it.
fn instance(version: &str, addr: SocketAddr) -> Instance {
    let mut i = Instance::new(addr.ip().to_string());
    i.ports.insert("http".into(), addr.port());
    i.labels.insert("app".into(), "reviews".into());
    i.labels.insert("version".into(), version.into());
    i.namespace = "default".into();
    i
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_registered_from_code_are_served_and_follow_changes() {
    let plane = ControlPlane::new("cluster.local");
    let files = [
        ("reviews-service.yaml", SERVICE.to_owned()),
        (
            "destination-rule-all.yaml",
            bookinfo("destination-rule-all.yaml"),
        ),
        (
            "virtual-service-reviews-test-v2.yaml",
            bookinfo("virtual-service-reviews-test-v2.yaml"),
        ),
    ];
    let loaded = load_texts(files.map(|(n, t)| (n.to_owned(), t)), "cluster.local").unwrap();
    plane.apply(loaded);
    let (v1, v2) = (upstream("v1").await, upstream("v2").await);
    plane.set_instances("launcher", vec![instance("v1", v1), instance("v2", v2)]);

    let xds = serve(&plane).await;
    let client = client(xds);
    assert_eq!(get(&client, Some("jason")).await.unwrap(), "v2");
    assert_eq!(get(&client, None).await.unwrap(), "v1");

    // The launcher restarts v1 elsewhere and registers it again.
    let moved = upstream("v1-moved").await;
    plane.set_instances("launcher", vec![instance("v1", moved), instance("v2", v2)]);
    wait_for_version(&client, "v1-moved").await;

    // What the client asked for is visible to an operator.
    let status = plane.status();
    let node = &status.nodes[0];
    assert_eq!(node.shape, "proxyless");
    assert_eq!(node.requested, [support::mesh::TARGET]);
    assert!(
        node.resources["CDS"].contains_key("outbound|9080|v1|reviews.default.svc.cluster.local")
    );
}

/// A control plane serving reviews under a DestinationRule whose traffic
/// policy is `policy`, and a client of it in `us-east/a`.
async fn in_east_a(policy: &str) -> (ControlPlane, MeshClient<Full<Bytes>>) {
    let plane = ControlPlane::new("cluster.local");
    let rule = format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
         metadata: {{name: reviews}}\nspec:\n  host: reviews\n  trafficPolicy: {policy}\n"
    );
    let files = [
        ("reviews-service.yaml", SERVICE.to_owned()),
        ("reviews-rule.yaml", rule),
    ];
    plane.apply(load_texts(files.map(|(n, t)| (n.to_owned(), t)), "cluster.local").unwrap());
    let xds = serve(&plane).await;
    let mut bootstrap = mesh_xds::Bootstrap::insecure(&xds.to_string(), "productpage-v1").unwrap();
    bootstrap.node.locality.region = "us-east".into();
    bootstrap.node.locality.zone = "a".into();
    (plane, support::mesh::client_with(&bootstrap))
}

/// An instance of reviews v1 at `addr` in `locality`.
fn at(addr: SocketAddr, locality: &str) -> Instance {
    let mut i = instance("v1", addr);
    i.locality = mesh_core::registry::parse_locality(locality);
    i
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stays_in_its_locality_and_fails_over_when_it_empties() {
    let (plane, client) = in_east_a("{outlierDetection: {consecutive5xxErrors: 5}}").await;
    let (east_a, east_b) = (upstream("zone-a").await, upstream("zone-b").await);
    plane.set_instances(
        "launcher",
        vec![at(east_a, "us-east/a"), at(east_b, "us-east/b")],
    );

    // Its own zone takes everything while it has healthy endpoints.
    for _ in 0..50 {
        assert_eq!(get(&client, None).await.unwrap(), "zone-a");
    }
    // Zone a empties: traffic fails over to the next nearest.
    plane.set_instances("launcher", vec![at(east_b, "us-east/b")]);
    wait_for_version(&client, "zone-b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_rule_picks_the_region_traffic_leaves_for() {
    let policy = "{outlierDetection: {consecutive5xxErrors: 5}, loadBalancer: \
                  {localityLbSetting: {failover: [{from: us-east, to: eu-west}]}}}";
    let (plane, client) = in_east_a(policy).await;
    let (us_west, eu_west) = (upstream("us-west").await, upstream("eu-west").await);
    plane.set_instances(
        "launcher",
        vec![at(us_west, "us-west/a"), at(eu_west, "eu-west/a")],
    );
    // Nothing in us-east: the rule's region first, not every other alike.
    wait_for_version(&client, "eu-west").await;
    for _ in 0..50 {
        assert_eq!(get(&client, None).await.unwrap(), "eu-west");
    }
    plane.set_instances("launcher", vec![at(us_west, "us-west/a")]);
    wait_for_version(&client, "us-west").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distribute_rule_splits_traffic_by_locality() {
    let policy = "{loadBalancer: {localityLbSetting: {distribute: \
                  [{from: us-east/a/*, to: {us-east/a: 80, us-east/b: 20}}]}}}";
    let (plane, client) = in_east_a(policy).await;
    let zones = [
        (upstream("zone-a").await, "us-east/a"),
        (upstream("zone-b").await, "us-east/b"),
        (upstream("zone-c").await, "us-east/c"),
    ];
    plane.set_instances("launcher", zones.map(|(a, l)| at(a, l)).to_vec());

    const N: usize = 500;
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..N {
        *tally.entry(get(&client, None).await.unwrap()).or_default() += 1;
    }
    // 20 % of 500 is 100, with a standard deviation of about 9.
    let b = tally.get("zone-b").copied().unwrap_or_default();
    assert!((64..=136).contains(&b), "{tally:?}");
    assert_eq!(
        tally.get("zone-c"),
        None,
        "zone c is in no share: {tally:?}"
    );
    assert_eq!(tally.values().sum::<usize>(), N);
}
