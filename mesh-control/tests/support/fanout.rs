//! Many ADS clients on one `mesh-control`: the control plane in-process,
//! following a real directory of bookinfo's reviews YAML, and `clients`
//! real `AdsClient`s (half state of the world, half delta) asking for
//! reviews' listener. A VirtualService file is then edited, and the time
//! from the write to the last client holding the new routes is measured.

use std::time::{Duration, Instant};

use mesh_control::{ControlPlane, watch};
use mesh_xds::Bootstrap;
use mesh_xds::ads::{AdsClient, AdsHandle, AdsView, Protocol};
use mesh_xds::server::AdsServer;

const LISTENER: &str = "reviews.default.svc.cluster.local:9080";
const ROUTES: &str = "outbound|9080||reviews.default.svc.cluster.local";
const V3: &str = "outbound|9080|v3|reviews.default.svc.cluster.local";
const BOOKINFO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../mesh-istio/tests/data/bookinfo"
);
const REGISTRY: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\n\
    spec:\n  selector: {app: reviews}\n  ports: [{name: http, port: 9080}]\n\
    ---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: reviews-v1}\n\
    spec: {address: 10.0.0.1, labels: {app: reviews, version: v1}}\n\
    ---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: reviews-v3}\n\
    spec: {address: 10.0.0.3, labels: {app: reviews, version: v3}}\n";

/// What a run measured.
pub(crate) struct Report {
    /// From starting the clients to all of them holding the routes.
    pub(crate) connected: Duration,
    /// From the edit to the last client holding it.
    pub(crate) reached: Duration,
    /// Streams the server had.
    pub(crate) streams: usize,
}

fn bookinfo(file: &str) -> String {
    std::fs::read_to_string(format!("{BOOKINFO}/{file}")).unwrap()
}

/// Whether `view` routes reviews to v3 and holds v3's endpoints.
fn routes_to_v3(view: &AdsView) -> bool {
    let routed = view
        .route_configs
        .get(ROUTES)
        .is_some_and(|rc| rc.table.clusters().any(|c| c.as_str() == V3));
    routed && view.load_assignments.contains_key(V3)
}

/// Waits, within `wait`, until every client's view satisfies `pred`.
async fn all(clients: &[AdsHandle], wait: Duration, pred: impl Fn(&AdsView) -> bool) {
    for ads in clients {
        let mut updates = ads.updates();
        tokio::time::timeout(wait, updates.wait_for(|v| pred(v)))
            .await
            .expect("every client gets the configuration")
            .expect("the client runs");
    }
}

/// Runs `clients` clients through one edit, each wait bounded by `wait`.
pub(crate) async fn run(clients: usize, wait: Duration) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
    write("registry.yaml", REGISTRY.to_owned());
    write("rules.yaml", bookinfo("destination-rule-all.yaml"));
    write("reviews.yaml", bookinfo("virtual-service-all-v1.yaml"));
    let plane = ControlPlane::new("cluster.local");
    assert!(watch::load_into(&plane, dir.path()).await);
    let follow = tokio::spawn(watch::watch(plane.clone(), dir.path().to_owned()));
    let server = AdsServer::new(plane);
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let serving = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(server.clone().into_service())
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(socket)),
    );

    let started = Instant::now();
    let handles: Vec<AdsHandle> = (0..clients)
        .map(|i| {
            let bootstrap = Bootstrap::insecure(&addr.to_string(), format!("node-{i}")).unwrap();
            let protocol = match i % 2 {
                0 => Protocol::StateOfTheWorld,
                _ => Protocol::Delta,
            };
            let ads = AdsClient::new(&bootstrap)
                .with_protocol(protocol)
                .spawn()
                .unwrap();
            ads.subscribe_listener(LISTENER);
            ads
        })
        .collect();
    all(&handles, wait, |v| v.route_configs.contains_key(ROUTES)).await;
    let connected = started.elapsed();

    let edited = Instant::now();
    write(
        "reviews.yaml",
        bookinfo("virtual-service-reviews-50-v3.yaml"),
    );
    all(&handles, wait, routes_to_v3).await;
    let reached = edited.elapsed();
    let streams = server.clients().len();
    follow.abort();
    serving.abort();
    Report {
        connected,
        reached,
        streams,
    }
}
