//! The control plane inside a program, as a launcher embeds it: Istio
//! YAML handed over as text, the endpoints of services it started on
//! ephemeral ports registered from code, and a `MeshClient` following it.

mod support;

use mesh_control::ControlPlane;
use mesh_control::config_dir::load_texts;
use mesh_core::registry::Instance;
use mesh_xds::server::AdsServer;
use support::control::upstream;
use support::mesh::{bookinfo, client, get, wait_for_version};

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\n\
                       spec:\n  selector: {app: reviews}\n  ports: [{name: http, port: 9080}]\n";

/// `plane` served over ADS on a free port of 127.0.0.1, until the test's
/// runtime ends.
async fn serve(plane: &ControlPlane) -> std::net::SocketAddr {
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
fn instance(version: &str, addr: std::net::SocketAddr) -> Instance {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stays_in_its_locality_and_fails_over_when_it_empties() {
    let plane = ControlPlane::new("cluster.local");
    let rule = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
                metadata: {name: reviews}\nspec:\n  host: reviews\n\
                \x20 trafficPolicy: {outlierDetection: {consecutive5xxErrors: 5}}\n";
    let files = [
        ("reviews-service.yaml", SERVICE.to_owned()),
        ("reviews-rule.yaml", rule.to_owned()),
    ];
    plane.apply(load_texts(files.map(|(n, t)| (n.to_owned(), t)), "cluster.local").unwrap());
    let in_zone = |name: &str, addr, zone: &str| {
        let mut i = instance(name, addr);
        i.locality = mesh_core::registry::parse_locality(&format!("us-east/{zone}"));
        i
    };
    let (east_a, east_b) = (upstream("zone-a").await, upstream("zone-b").await);
    plane.set_instances(
        "launcher",
        vec![in_zone("v1", east_a, "a"), in_zone("v1", east_b, "b")],
    );
    let xds = serve(&plane).await;
    let mut bootstrap = mesh_xds::Bootstrap::insecure(&xds.to_string(), "productpage-v1").unwrap();
    bootstrap.node.locality.region = "us-east".into();
    bootstrap.node.locality.zone = "a".into();
    let client = support::mesh::client_with(&bootstrap);

    // Its own zone takes everything while it has healthy endpoints.
    for _ in 0..50 {
        assert_eq!(get(&client, None).await.unwrap(), "zone-a");
    }
    // Zone a empties: traffic fails over to the next nearest.
    plane.set_instances("launcher", vec![in_zone("v1", east_b, "b")]);
    wait_for_version(&client, "zone-b").await;
}
