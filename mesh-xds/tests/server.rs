//! The ADS server against the crate's own ADS client, both protocols, and
//! against a raw ADS stream for the protocol's finer rules.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use mesh_xds::Bootstrap;
use mesh_xds::ads::{AdsClient, AdsHandle, AdsView, Backoff, Protocol, ResourceType};
use mesh_xds::server::{AdsServer, ClientStatus, ResourceCache};
use support::resources::{
    LISTENER, ROUTES, V1, V2, bad_route_config, eds_cluster, listener, load_assignment,
    route_config,
};
use support::{Resource, WAIT};
use tokio::sync::{mpsc, watch};
use tonic::Streaming;

const LDS: ResourceType = ResourceType::Listener;
const RDS: ResourceType = ResourceType::RouteConfig;
const CDS: ResourceType = ResourceType::Cluster;
const EDS: ResourceType = ResourceType::LoadAssignment;

/// A server on a free port of 127.0.0.1, serving its cache until the
/// test's runtime ends.
struct Served {
    server: AdsServer,
    cache: ResourceCache,
    addr: SocketAddr,
}

async fn serve() -> Served {
    let cache = ResourceCache::new();
    let server = AdsServer::new(cache.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let service = server.clone().into_service();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    Served {
        server,
        cache,
        addr,
    }
}

fn set(cache: &ResourceCache, kind: ResourceType, resources: Vec<Resource>) {
    cache.set(
        kind,
        resources.into_iter().map(|r| (r.name, r.any)).collect(),
    );
}

/// The reviews chain LDS → RDS (to `cluster`) → CDS → EDS.
fn serve_reviews(cache: &ResourceCache, cluster: &str) {
    set(cache, LDS, vec![listener(LISTENER, ROUTES)]);
    set(cache, RDS, vec![route_config(ROUTES, cluster)]);
    set(cache, CDS, vec![eds_cluster(V1), eds_cluster(V2)]);
    set(
        cache,
        EDS,
        vec![
            load_assignment(V1, "127.0.0.1"),
            load_assignment(V2, "127.0.0.2"),
        ],
    );
}

fn client(addr: SocketAddr, protocol: Protocol, node_id: &str) -> AdsHandle {
    let bootstrap = Bootstrap::insecure(&addr.to_string(), node_id).unwrap();
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

const NODE: &str = "sidecar~127.0.0.1~test.default~default.svc.cluster.local";

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

/// Polls the server's record of clients until `pred` holds, within [`WAIT`].
async fn wait_for_clients(
    server: &AdsServer,
    what: &str,
    pred: impl Fn(&[ClientStatus]) -> bool,
) -> Vec<ClientStatus> {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let clients = server.clients();
            if pred(&clients) {
                return clients;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no clients with {what}: {:#?}", server.clients()))
}

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

fn endpoint_of(view: &AdsView, cluster: &str) -> Option<SocketAddr> {
    let la = view.load_assignments.get(cluster)?;
    la.endpoints.as_slice().first().map(|e| e.addr)
}

/// A test per protocol, each running `$name(protocol)`.
macro_rules! both_protocols {
    ($name:ident) => {
        mod $name {
            use mesh_xds::ads::Protocol;

            #[tokio::test]
            async fn state_of_the_world() {
                super::$name(Protocol::StateOfTheWorld).await;
            }

            #[tokio::test]
            async fn delta() {
                super::$name(Protocol::Delta).await;
            }
        }
    };
}

both_protocols!(the_chain_resolves_and_every_type_is_acked);
async fn the_chain_resolves_and_every_type_is_acked(protocol: Protocol) {
    let served = serve().await;
    serve_reviews(&served.cache, V1);
    let ads = client(served.addr, protocol, NODE);
    let view = wait_for_view(&mut ads.updates(), "reviews resolved to v1", |v| {
        resolved_to(v, V1)
    })
    .await;
    assert_eq!(
        endpoint_of(&view, V1),
        Some("127.0.0.1:9080".parse().unwrap())
    );

    let clients = wait_for_clients(&served.server, "every type ACKed", |c| {
        c.len() == 1
            && [LDS, RDS, CDS, EDS].iter().all(|kind| {
                c[0].types
                    .get(kind)
                    .is_some_and(|t| t.acked_version.is_some())
            })
    })
    .await;
    let client = &clients[0];
    assert_eq!(client.node_id, NODE);
    assert_eq!(client.protocol, protocol);
    assert!(client.types.values().all(|t| t.last_nack.is_none()));
}

both_protocols!(an_endpoint_change_reaches_the_client);
async fn an_endpoint_change_reaches_the_client(protocol: Protocol) {
    let served = serve().await;
    serve_reviews(&served.cache, V1);
    let ads = client(served.addr, protocol, NODE);
    let mut updates = ads.updates();
    wait_for_view(&mut updates, "reviews resolved to v1", |v| {
        resolved_to(v, V1)
    })
    .await;

    set(
        &served.cache,
        EDS,
        vec![
            load_assignment(V1, "127.0.0.3"),
            load_assignment(V2, "127.0.0.2"),
        ],
    );
    let moved: SocketAddr = "127.0.0.3:9080".parse().unwrap();
    let view = wait_for_view(&mut updates, "v1 at 127.0.0.3", |v| {
        endpoint_of(v, V1) == Some(moved)
    })
    .await;
    assert!(resolved_to(&view, V1));
}

both_protocols!(removed_listeners_and_clusters_disappear);
async fn removed_listeners_and_clusters_disappear(protocol: Protocol) {
    let served = serve().await;
    serve_reviews(&served.cache, V1);
    let ads = client(served.addr, protocol, NODE);
    let mut updates = ads.updates();
    wait_for_view(&mut updates, "reviews resolved to v1", |v| {
        resolved_to(v, V1)
    })
    .await;

    set(&served.cache, CDS, vec![eds_cluster(V2)]);
    wait_for_view(&mut updates, "cluster v1 gone", |v| {
        !v.clusters.contains_key(V1)
    })
    .await;

    set(&served.cache, LDS, vec![]);
    wait_for_view(&mut updates, "the listener gone", |v| {
        !v.listeners.contains_key(LISTENER)
    })
    .await;
}

both_protocols!(a_bad_route_config_is_nacked_and_recorded);
async fn a_bad_route_config_is_nacked_and_recorded(protocol: Protocol) {
    let served = serve().await;
    serve_reviews(&served.cache, V1);
    let ads = client(served.addr, protocol, NODE);
    let mut updates = ads.updates();
    wait_for_view(&mut updates, "reviews resolved to v1", |v| {
        resolved_to(v, V1)
    })
    .await;
    let acked = |c: &[ClientStatus]| -> Option<String> {
        c.first()?.types.get(&RDS)?.acked_version.clone()
    };
    let good = wait_for_clients(&served.server, "RDS ACKed", |c| acked(c).is_some()).await;
    let good_version = acked(&good).unwrap();

    set(&served.cache, RDS, vec![bad_route_config(ROUTES, V2)]);
    let clients = wait_for_clients(&served.server, "an RDS NACK", |c| {
        c.first()
            .and_then(|c| c.types.get(&RDS))
            .is_some_and(|t| t.last_nack.is_some())
    })
    .await;
    let rds = &clients[0].types[&RDS];
    let nack = rds.last_nack.as_ref().unwrap();
    assert!(
        nack.message
            .contains("virtual_hosts[0].routes[0].match.safe_regex.regex"),
        "{nack:?}"
    );
    assert_ne!(nack.version, good_version);
    assert_eq!(rds.acked_version.as_deref(), Some(good_version.as_str()));

    let view = wait_for_view(&mut updates, "the NACK in the client", |v| {
        v.snapshot().get(RDS).is_some_and(|t| t.error.is_some())
    })
    .await;
    assert!(resolved_to(&view, V1), "the good routes are kept");
}

/// A raw state-of-the-world stream: requests in, responses out.
struct RawStream {
    requests: mpsc::UnboundedSender<DiscoveryRequest>,
    responses: Streaming<DiscoveryResponse>,
}

impl RawStream {
    async fn open(addr: SocketAddr) -> Self {
        let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        let (requests, rx) = mpsc::unbounded_channel();
        let outgoing =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
            );
        let responses = client
            .stream_aggregated_resources(outgoing)
            .await
            .unwrap()
            .into_inner();
        Self {
            requests,
            responses,
        }
    }

    fn send(&self, request: DiscoveryRequest) {
        self.requests.send(request).unwrap();
    }

    async fn next(&mut self) -> DiscoveryResponse {
        tokio::time::timeout(WAIT, self.responses.message())
            .await
            .expect("a response in time")
            .unwrap()
            .expect("the stream open")
    }
}

fn cds_request(names: &[&str], acking: Option<&DiscoveryResponse>) -> DiscoveryRequest {
    DiscoveryRequest {
        type_url: CDS.type_url().into(),
        resource_names: names.iter().map(|n| n.to_string()).collect(),
        version_info: acking.map(|r| r.version_info.clone()).unwrap_or_default(),
        response_nonce: acking.map(|r| r.nonce.clone()).unwrap_or_default(),
        node: Some(Node {
            id: "raw".into(),
            ..Node::default()
        }),
        ..DiscoveryRequest::default()
    }
}

/// The cluster names a response carries.
fn names_in(response: &DiscoveryResponse) -> Vec<String> {
    use prost::Message;
    let mut names: Vec<String> = response
        .resources
        .iter()
        .map(|any| {
            envoy_types::pb::envoy::config::cluster::v3::Cluster::decode(any.value.as_slice())
                .unwrap()
                .name
        })
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_wildcard_stream_gets_every_cluster_and_nonces_rule_acks() {
    let served = serve().await;
    serve_reviews(&served.cache, V1);
    let mut raw = RawStream::open(served.addr).await;

    // A type the server does not know is ignored; the wildcard is served.
    raw.send(DiscoveryRequest {
        type_url: "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig".into(),
        ..cds_request(&[], None)
    });
    raw.send(cds_request(&[], None));
    let first = raw.next().await;
    assert_eq!(first.type_url, CDS.type_url());
    assert_eq!(names_in(&first), [V1, V2]);
    assert!(!first.version_info.is_empty());
    // EDS by name, alongside.
    let eds_request = |acking: Option<&DiscoveryResponse>| DiscoveryRequest {
        type_url: EDS.type_url().into(),
        ..cds_request(&[V1], acking)
    };
    raw.send(eds_request(None));
    let eds = raw.next().await;
    assert_eq!(eds.type_url, EDS.type_url());
    assert_eq!(eds.resources.len(), 1);

    // An ACK gets no response: the next one is the cache's next change.
    raw.send(cds_request(&[], Some(&first)));
    raw.send(eds_request(Some(&eds)));
    wait_for_clients(&served.server, "the ACKs", |c| {
        c.first().is_some_and(|c| {
            c.types.get(&CDS).and_then(|t| t.acked_version.as_deref())
                == Some(first.version_info.as_str())
                && c.types.get(&EDS).and_then(|t| t.acked_version.as_deref())
                    == Some(eds.version_info.as_str())
        })
    })
    .await;
    // A change to what the stream did not subscribe to sends nothing, of
    // that type or another.
    set(
        &served.cache,
        EDS,
        vec![
            load_assignment(V1, "127.0.0.1"),
            load_assignment(V2, "127.0.0.7"),
        ],
    );
    let v3 = "outbound|9080|v3|reviews.default.svc.cluster.local";
    set(
        &served.cache,
        CDS,
        vec![eds_cluster(V1), eds_cluster(V2), eds_cluster(v3)],
    );
    let second = raw.next().await;
    assert_eq!(names_in(&second), [V1, V2, v3]);
    assert_ne!(second.nonce, first.nonce);
    assert_ne!(second.version_info, first.version_info);

    // A stale nonce is ignored, subscription change and all: still the
    // wildcard when the cache next changes.
    raw.send(cds_request(&[V1], Some(&first)));
    // A NACK of the current response is recorded and not answered.
    raw.send(DiscoveryRequest {
        error_detail: Some(RpcStatus {
            code: 3,
            message: "raw says no".into(),
            ..RpcStatus::default()
        }),
        version_info: first.version_info.clone(),
        ..cds_request(&[], Some(&second))
    });
    let clients = wait_for_clients(&served.server, "the NACK", |c| {
        c.first()
            .and_then(|c| c.types.get(&CDS))
            .is_some_and(|t| t.last_nack.is_some())
    })
    .await;
    let cds = &clients[0].types[&CDS];
    let nack = cds.last_nack.as_ref().unwrap();
    assert_eq!(nack.message, "raw says no");
    assert_eq!(nack.nonce, second.nonce);
    assert_eq!(nack.version, second.version_info);
    assert_eq!(clients[0].node_id, "raw");

    set(&served.cache, CDS, vec![eds_cluster(V2)]);
    let third = raw.next().await;
    assert_eq!(names_in(&third), [V2]);
}

#[tokio::test]
async fn a_hundred_clients_all_get_an_update() {
    const CLIENTS: usize = 100;
    let served = serve().await;
    serve_reviews(&served.cache, V1);
    let clients: Vec<AdsHandle> = (0..CLIENTS)
        .map(|i| {
            let protocol = if i % 2 == 0 {
                Protocol::StateOfTheWorld
            } else {
                Protocol::Delta
            };
            client(served.addr, protocol, &format!("node-{i}"))
        })
        .collect();
    for ads in &clients {
        wait_for_view(&mut ads.updates(), "reviews resolved to v1", |v| {
            resolved_to(v, V1)
        })
        .await;
    }
    assert_eq!(served.server.clients().len(), CLIENTS);

    set(
        &served.cache,
        EDS,
        vec![
            load_assignment(V1, "127.0.0.9"),
            load_assignment(V2, "127.0.0.2"),
        ],
    );
    let moved: SocketAddr = "127.0.0.9:9080".parse().unwrap();
    let all = async {
        for ads in &clients {
            ads.updates()
                .wait_for(|v| endpoint_of(v, V1) == Some(moved))
                .await
                .unwrap();
        }
    };
    tokio::time::timeout(WAIT, all)
        .await
        .expect("every client sees the update in time");
}

#[tokio::test]
async fn a_new_delta_stream_is_sent_only_what_the_client_lacks() {
    let served = serve().await;
    set(&served.cache, CDS, vec![eds_cluster(V1), eds_cluster(V2)]);
    let v1_version = served.cache.load().resources(CDS)[V1].version.clone();

    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{}", served.addr))
        .await
        .unwrap();
    let (requests, rx) = mpsc::unbounded_channel();
    let outgoing =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
    let mut responses = client
        .delta_aggregated_resources(outgoing)
        .await
        .unwrap()
        .into_inner();
    let mut next = async || -> DeltaDiscoveryResponse {
        tokio::time::timeout(WAIT, responses.message())
            .await
            .expect("a response in time")
            .unwrap()
            .expect("the stream open")
    };

    // The client has v1 at its current version and a cluster since gone;
    // it subscribes to every cluster.
    requests
        .send(DeltaDiscoveryRequest {
            type_url: CDS.type_url().into(),
            initial_resource_versions: [
                (V1.to_owned(), v1_version),
                ("gone".to_owned(), "0".to_owned()),
            ]
            .into_iter()
            .collect(),
            ..DeltaDiscoveryRequest::default()
        })
        .unwrap();
    let first = next().await;
    let sent: Vec<&str> = first.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(sent, [V2]);
    assert_eq!(first.removed_resources, ["gone"]);

    requests
        .send(DeltaDiscoveryRequest {
            type_url: CDS.type_url().into(),
            response_nonce: first.nonce.clone(),
            ..DeltaDiscoveryRequest::default()
        })
        .unwrap();
    set(&served.cache, CDS, vec![eds_cluster(V2)]);
    let second = next().await;
    assert!(second.resources.is_empty(), "{second:?}");
    assert_eq!(second.removed_resources, [V1]);
    assert_ne!(second.nonce, first.nonce);
}

#[tokio::test]
async fn a_client_that_stops_reading_holds_up_no_one() {
    let served = serve().await;
    serve_reviews(&served.cache, V1);
    let ads = client(served.addr, Protocol::StateOfTheWorld, NODE);
    let mut updates = ads.updates();
    wait_for_view(&mut updates, "reviews resolved to v1", |v| {
        resolved_to(v, V1)
    })
    .await;

    // A wildcard stream that reads nothing, sent far more than HTTP/2's
    // windows and the server's buffer hold.
    let raw = RawStream::open(served.addr).await;
    raw.send(cds_request(&[], None));
    let big = |i: u8| {
        (
            "big".to_owned(),
            envoy_types::pb::google::protobuf::Any {
                type_url: CDS.type_url().into(),
                value: vec![i; 64 * 1024],
            },
        )
    };
    for i in 0..64 {
        let mut clusters: Vec<_> = [eds_cluster(V1), eds_cluster(V2)]
            .into_iter()
            .map(|r| (r.name, r.any))
            .collect();
        clusters.push(big(i));
        served.cache.set(CDS, clusters);
        // Lets the stream's task take each change on its own.
        tokio::task::yield_now().await;
    }

    set(
        &served.cache,
        EDS,
        vec![
            load_assignment(V1, "127.0.0.5"),
            load_assignment(V2, "127.0.0.2"),
        ],
    );
    let moved: SocketAddr = "127.0.0.5:9080".parse().unwrap();
    wait_for_view(&mut updates, "v1 at 127.0.0.5", |v| {
        endpoint_of(v, V1) == Some(moved)
    })
    .await;
    assert_eq!(served.server.clients().len(), 2);
}

#[tokio::test]
async fn over_delta_a_name_the_cache_lacks_is_removed_at_once() {
    let served = serve().await;
    // Nothing served: the listener the client asks for does not exist.
    let ads = client(served.addr, Protocol::Delta, NODE);
    let mut updates = ads.updates();
    wait_for_view(&mut updates, "the listener marked missing", |v| {
        v.does_not_exist(LDS, LISTENER)
    })
    .await;
    // Once it is served, it arrives.
    serve_reviews(&served.cache, V1);
    wait_for_view(&mut updates, "the listener", |v| {
        v.listeners.contains_key(LISTENER)
    })
    .await;
}

/// Sidecars are served one cache; every other node another, where the
/// reviews chain is made when a listener is asked for.
#[derive(Default)]
struct ByNode {
    sidecars: ResourceCache,
    others: ResourceCache,
}

impl mesh_xds::server::Snapshots for ByNode {
    fn cache_for(
        &self,
        caller: &mesh_xds::server::Caller,
    ) -> Result<ResourceCache, mesh_xds::server::Refused> {
        Ok(if caller.node.id.starts_with("sidecar~") {
            self.sidecars.clone()
        } else {
            self.others.clone()
        })
    }

    fn requested(&self, caller: &mesh_xds::server::Caller, kind: ResourceType, names: &[String]) {
        let sidecar = caller.node.id.starts_with("sidecar~");
        if !sidecar && kind == LDS && names.iter().any(|n| n == LISTENER) {
            serve_reviews(&self.others, V2);
        }
    }
}

async fn each_node_is_served_its_cache_and_names_are_made_on_request(protocol: Protocol) {
    let snapshots = ByNode::default();
    serve_reviews(&snapshots.sidecars, V1);
    let others = snapshots.others.clone();
    let server = AdsServer::new(snapshots);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let service = server.clone().into_service();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming),
    );

    let sidecar = client(addr, protocol, NODE);
    let proxyless = client(addr, protocol, "proxyless-1");
    wait_for_view(&mut sidecar.updates(), "v1", |v| resolved_to(v, V1)).await;
    wait_for_view(&mut proxyless.updates(), "v2, made on request", |v| {
        resolved_to(v, V2)
    })
    .await;
    // A change to one cache reaches only its nodes.
    set(&others, EDS, vec![load_assignment(V2, "127.0.0.9")]);
    let moved: SocketAddr = "127.0.0.9:9080".parse().unwrap();
    wait_for_view(&mut proxyless.updates(), "v2 moved", |v| {
        endpoint_of(v, V2) == Some(moved)
    })
    .await;
    let view = sidecar.updates().borrow().clone();
    assert!(resolved_to(&view, V1));
    assert_ne!(endpoint_of(&view, V2), Some(moved));
}

both_protocols!(each_node_is_served_its_cache_and_names_are_made_on_request);
