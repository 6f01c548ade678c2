//! `MeshClient` driven by a real ADS server: routes, clusters and endpoints
//! from xDS, for a hyper-style client and a tonic generated client.

#[path = "../../mesh-xds/tests/support/mod.rs"]
mod ads;
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use mesh_core::StaticResolve;
use mesh_tower::MeshClient;
use mesh_tower::endpoint::UpstreamHost;
use mesh_tower::split::SelectedCluster;
use mesh_xds::Bootstrap;
use mesh_xds::ads::{AdsClient, AdsHandle, Backoff, Protocol, ResourceType};
use support::Server;
use tower::ServiceExt;

use ads::resources::{
    bad_route_config, eds_cluster, listener, load_assignment_at, route_config_by_prefix,
    weighted_route_config,
};
use ads::{AdsServer, WAIT};

const LDS: ResourceType = ResourceType::Listener;
const RDS: ResourceType = ResourceType::RouteConfig;
const CDS: ResourceType = ResourceType::Cluster;
const EDS: ResourceType = ResourceType::LoadAssignment;

const REVIEWS: &str = "reviews.default.svc.cluster.local:9080";
const V1: &str = "outbound|9080|v1|reviews.default.svc.cluster.local";
const V2: &str = "outbound|9080|v2|reviews.default.svc.cluster.local";

/// Serves the reviews chain: listener → routes splitting `weights` over
/// v1 and v2 → EDS clusters → `v1` and `v2` endpoints.
fn serve(server: &AdsServer, weights: (u32, u32), v1: &[SocketAddr], v2: &[SocketAddr]) {
    server.set(LDS.type_url(), vec![listener(REVIEWS, "reviews")]);
    set_weights(server, weights);
    server.set(CDS.type_url(), vec![eds_cluster(V1), eds_cluster(V2)]);
    server.set(
        EDS.type_url(),
        vec![load_assignment_at(V1, v1), load_assignment_at(V2, v2)],
    );
}

fn set_weights(server: &AdsServer, (v1, v2): (u32, u32)) {
    let routes = weighted_route_config(
        "reviews",
        &["reviews.default.svc.cluster.local", REVIEWS, "reviews:9080"],
        &[(V1, v1), (V2, v2)],
    );
    server.set(RDS.type_url(), vec![routes]);
}

fn ads_client(server: &AdsServer, protocol: Protocol) -> AdsHandle {
    let bootstrap = Bootstrap::insecure(
        &server.authority(),
        "sidecar~127.0.0.1~productpage.default~default.svc.cluster.local",
    )
    .unwrap();
    AdsClient::new(&bootstrap)
        .with_protocol(protocol)
        .with_backoff(Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
        })
        .spawn()
        .unwrap()
}

fn mesh_client(ads: AdsHandle) -> MeshClient<Full<Bytes>> {
    MeshClient::builder(StaticResolve::default())
        .xds(ads)
        .seed(7)
        .build()
}

/// Sends one GET to `uri`; the body of a 200, or the error in words.
async fn get(client: &MeshClient<Full<Bytes>>, uri: &str) -> Result<String, String> {
    let req = http::Request::get(uri).body(Full::default()).unwrap();
    let res = client
        .clone()
        .oneshot(req)
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status();
    let body = res.into_body().collect().await.map_err(|e| e.to_string())?;
    let body = String::from_utf8_lossy(&body.to_bytes()).into_owned();
    match status {
        http::StatusCode::OK => Ok(body),
        s => Err(format!("{s}: {body}")),
    }
}

/// Which server answered, from a body `name:len`.
fn server_of(body: &str) -> &str {
    body.split(':').next().unwrap_or(body)
}

/// Sends requests until one is answered by `name`, within [`WAIT`].
async fn until_served_by(client: &MeshClient<Full<Bytes>>, uri: &str, name: &str) {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(body) = get(client, uri).await
                && server_of(&body) == name
            {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(found.is_ok(), "{name} never answered {uri}");
}

/// Counts who answers `n` requests; every one must succeed.
async fn tally(client: &MeshClient<Full<Bytes>>, uri: &str, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let body = get(client, uri).await.expect("request failed");
        *counts.entry(server_of(&body).to_owned()).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn the_chain_routes_and_a_weight_change_applies_to_the_next_requests() {
    for protocol in [Protocol::StateOfTheWorld, Protocol::Delta] {
        let v1 = Server::start("v1", Duration::ZERO).await;
        let v2 = Server::start("v2", Duration::ZERO).await;
        let server = AdsServer::start().await;
        serve(&server, (100, 0), &[v1.addr], &[v2.addr]);
        let client = mesh_client(ads_client(&server, protocol));
        let uri = format!("http://{REVIEWS}/reviews/0");

        // The first request waits for the whole chain.
        let counts = tally(&client, &uri, 20).await;
        assert_eq!(counts, HashMap::from([("v1".into(), 20)]), "{protocol:?}");
        // The response names the cluster and the endpoint that served it.
        let req = http::Request::get(&uri).body(Full::default()).unwrap();
        let res = client.clone().oneshot(req).await.unwrap();
        assert_eq!(
            res.extensions().get::<SelectedCluster>(),
            Some(&SelectedCluster(V1.into()))
        );
        assert_eq!(
            res.extensions().get::<UpstreamHost>(),
            Some(&UpstreamHost(v1.addr))
        );

        set_weights(&server, (20, 80));
        until_served_by(&client, &uri, "v2").await;
        let counts = tally(&client, &uri, 1000).await;
        let v2_share = counts["v2"] as f64 / 1000.0;
        assert!(
            (0.75..=0.85).contains(&v2_share),
            "{protocol:?}: {counts:?}"
        );
        // The target routes by its own listener's table.
        assert!(client.config().listener(REVIEWS).is_some());
    }
}

#[tokio::test]
async fn endpoints_come_and_go_without_a_failed_request() {
    let a = Server::start("a", Duration::ZERO).await;
    let b = Server::start("b", Duration::ZERO).await;
    let server = AdsServer::start().await;
    serve(&server, (100, 0), &[a.addr], &[]);
    let client = mesh_client(ads_client(&server, Protocol::StateOfTheWorld));
    let uri = format!("http://{REVIEWS}/");
    assert_eq!(server_of(&get(&client, &uri).await.unwrap()), "a");

    // Load runs from before the first change until after the last is in.
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let load = {
        let (client, uri) = (client.clone(), uri.clone());
        tokio::spawn(async move {
            let mut served = HashMap::<String, usize>::new();
            while !*stopped.borrow_and_update() {
                let body = get(&client, &uri).await?;
                *served.entry(server_of(&body).to_owned()).or_default() += 1;
            }
            Ok::<_, String>(served)
        })
    };
    server.set(
        EDS.type_url(),
        vec![load_assignment_at(V1, &[a.addr, b.addr])],
    );
    until_served_by(&client, &uri, "b").await;
    server.set(EDS.type_url(), vec![load_assignment_at(V1, &[b.addr])]);
    // Once the removal is in, only b serves.
    tokio::time::timeout(WAIT, async {
        while client_sees(&client, &uri, "a").await {}
    })
    .await
    .expect("a is removed");
    stop.send_replace(true);
    let served = load.await.unwrap().expect("no request fails");
    assert!(
        served.contains_key("a") && served.contains_key("b"),
        "{served:?}"
    );
    let counts = tally(&client, &uri, 50).await;
    assert_eq!(counts, HashMap::from([("b".into(), 50)]));
}

/// Whether a few requests reach `name`.
async fn client_sees(client: &MeshClient<Full<Bytes>>, uri: &str, name: &str) -> bool {
    let counts = tally(client, uri, 10).await;
    counts.contains_key(name)
}

#[tokio::test]
async fn losing_the_control_plane_fails_no_request_and_its_return_applies_what_changed() {
    let v1 = Server::start("v1", Duration::ZERO).await;
    let v2 = Server::start("v2", Duration::ZERO).await;
    let mut server = AdsServer::start().await;
    serve(&server, (100, 0), &[v1.addr], &[v2.addr]);
    let ads = ads_client(&server, Protocol::StateOfTheWorld);
    let client = mesh_client(ads.clone());
    let uri = format!("http://{REVIEWS}/");
    assert_eq!(server_of(&get(&client, &uri).await.unwrap()), "v1");

    // Load runs from before the server goes until the client knows it has.
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let load = {
        let (client, uri) = (client.clone(), uri.clone());
        tokio::spawn(async move {
            let mut sent = 0;
            while !*stopped.borrow_and_update() || sent < 500 {
                let body = get(&client, &uri).await.expect("no request fails");
                assert_eq!(server_of(&body), "v1");
                sent += 1;
            }
        })
    };
    server.stop().await;
    let mut updates = ads.updates();
    tokio::time::timeout(
        WAIT,
        updates.wait_for(|v| !v.connected && v.stream_error.is_some()),
    )
    .await
    .expect("the client sees the server go")
    .unwrap();
    stop.send_replace(true);
    load.await
        .expect("no request fails while the server is down");

    set_weights(&server, (0, 100));
    server.restart().await;
    until_served_by(&client, &uri, "v2").await;
    assert_eq!(
        tally(&client, &uri, 50).await,
        HashMap::from([("v2".into(), 50)])
    );
}

#[tokio::test]
async fn a_tonic_client_reaches_an_xds_target() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_server::HealthServer};

    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("ratings", tonic_health::ServingStatus::Serving)
        .await;
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = grpc.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service::<HealthServer<_>>(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(grpc)),
    );

    const RATINGS: &str = "ratings.default.svc.cluster.local:9080";
    const CLUSTER: &str = "outbound|9080||ratings.default.svc.cluster.local";
    let server = AdsServer::start().await;
    server.set(LDS.type_url(), vec![listener(RATINGS, "ratings")]);
    server.set(
        RDS.type_url(),
        vec![weighted_route_config(
            "ratings",
            &[RATINGS],
            &[(CLUSTER, 1)],
        )],
    );
    server.set(CDS.type_url(), vec![eds_cluster(CLUSTER)]);
    server.set(
        EDS.type_url(),
        vec![load_assignment_at(CLUSTER, &[grpc_addr])],
    );

    let client: MeshClient<tonic::body::Body> = MeshClient::builder(StaticResolve::default())
        .xds(ads_client(&server, Protocol::Delta))
        .build();
    let channel = client.channel_to(&format!("xds:///{RATINGS}")).unwrap();
    let mut health = HealthClient::new(channel);
    let res = health
        .check(HealthCheckRequest {
            service: "ratings".into(),
        })
        .await
        .expect("the check goes through");
    assert_eq!(res.into_inner().status(), ServingStatus::Serving);
}

#[tokio::test]
async fn a_target_the_server_rejects_fails_with_the_reason() {
    let server = AdsServer::start().await;
    // A server listener: NACKed, and there is no earlier copy.
    let mut bad = listener("bad", "routes");
    let mut l = <envoy_types::pb::envoy::config::listener::v3::Listener as prost::Message>::decode(
        bad.any.value.as_slice(),
    )
    .unwrap();
    l.api_listener = None;
    bad.any.value = prost::Message::encode_to_vec(&l);
    server.set(LDS.type_url(), vec![bad]);
    let client = mesh_client(ads_client(&server, Protocol::StateOfTheWorld));
    let err = get(&client, "http://bad/").await.unwrap_err();
    assert!(err.contains("xds:///bad"), "{err}");
    assert!(
        err.contains("rejected") && err.contains("a server listener needs a socket address"),
        "{err}"
    );
    // Forgotten: unsubscribed, and asked for again by the next request.
    server
        .wait_for_request(|r| r.type_url == LDS.type_url() && r.names.is_empty())
        .await;
    let again = get(&client, "http://bad/").await.unwrap_err();
    assert!(again.contains("rejected"), "{again}");
}

#[tokio::test]
async fn a_servers_listener_is_no_target_for_a_client() {
    let server = AdsServer::start().await;
    let name = "inbound";
    let inbound = mesh_xds::translate::server_listener(
        name,
        "127.0.0.1:9080".parse().unwrap(),
        &[],
        mesh_core::security::MtlsMode::Disable,
    )
    .unwrap();
    let (name, any) = mesh_xds::translate::entry(name, &inbound);
    server.set(LDS.type_url(), vec![ads::Resource { name, any }]);
    let client = mesh_client(ads_client(&server, Protocol::StateOfTheWorld));
    let err = get(&client, "http://inbound/").await.unwrap_err();
    assert_eq!(
        err,
        "xds:///inbound: listener \"inbound\" is a server's listener (on 127.0.0.1:9080), \
         not one a client routes by"
    );
}

#[tokio::test]
async fn routes_to_a_cluster_on_its_way_apply_once_it_is_here() {
    const V3: &str = "outbound|9080|v3|reviews.default.svc.cluster.local";
    let v1 = Server::start("v1", Duration::ZERO).await;
    let v3 = Server::start("v3", Duration::ZERO).await;
    let server = AdsServer::start().await;
    serve(&server, (100, 0), &[v1.addr], &[]);
    let ads = ads_client(&server, Protocol::StateOfTheWorld);
    let client = mesh_client(ads.clone());
    let uri = format!("http://{REVIEWS}/");
    assert_eq!(server_of(&get(&client, &uri).await.unwrap()), "v1");

    // The routes send everything to v3 before CDS has it: the routes
    // before serve meanwhile, with no request waiting or failing.
    let routes = weighted_route_config(
        "reviews",
        &["reviews.default.svc.cluster.local", REVIEWS, "reviews:9080"],
        &[(V1, 0), (V3, 100)],
    );
    server.set(RDS.type_url(), vec![routes]);
    let names_v3 = |v: &Arc<mesh_xds::ads::AdsView>| {
        v.route_configs
            .get("reviews")
            .is_some_and(|rc| rc.table.clusters().any(|c| c.as_str() == V3))
    };
    tokio::time::timeout(WAIT, ads.updates().wait_for(names_v3))
        .await
        .expect("the routes arrive")
        .unwrap();
    for _ in 0..20 {
        let started = tokio::time::Instant::now();
        assert_eq!(server_of(&get(&client, &uri).await.unwrap()), "v1");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a request waited"
        );
    }
    server.set(
        CDS.type_url(),
        vec![eds_cluster(V1), eds_cluster(V2), eds_cluster(V3)],
    );
    server.set(
        EDS.type_url(),
        vec![
            load_assignment_at(V1, &[v1.addr]),
            load_assignment_at(V3, &[v3.addr]),
        ],
    );
    until_served_by(&client, &uri, "v3").await;
}

/// The idle timeout runs on paused time; the exchanges with the control
/// plane around it on the real clock, so that no timer of theirs fires
/// while a response is on its way.
#[tokio::test]
async fn an_unused_target_is_unsubscribed_and_asked_for_again() {
    let v1 = Server::start("v1", Duration::ZERO).await;
    let server = AdsServer::start().await;
    serve(&server, (100, 0), &[v1.addr], &[]);
    let client: MeshClient<Full<Bytes>> = MeshClient::builder(StaticResolve::default())
        .xds(ads_client(&server, Protocol::StateOfTheWorld))
        .cluster_idle_timeout(Duration::from_secs(60))
        .build();
    let uri = format!("http://{REVIEWS}/");
    let lds_names = || {
        let requests = server.requests();
        let last = requests.iter().rev().find(|r| r.type_url == LDS.type_url());
        last.map(|r| r.names.clone()).unwrap_or_default()
    };
    assert_eq!(server_of(&get(&client, &uri).await.unwrap()), "v1");
    assert_eq!(lds_names(), [REVIEWS]);

    // Used within the timeout: kept.
    tokio::time::pause();
    tokio::time::sleep(Duration::from_secs(50)).await;
    assert_eq!(server_of(&get(&client, &uri).await.unwrap()), "v1");
    tokio::time::sleep(Duration::from_secs(50)).await;
    assert_eq!(lds_names(), [REVIEWS]);
    assert!(client.config().listener(REVIEWS).is_some());

    // Unused for the timeout (and at most a quarter more): unsubscribed,
    // and out of the configuration.
    tokio::time::sleep(Duration::from_secs(30)).await;
    tokio::time::resume();
    server
        .wait_for_request(|r| r.type_url == LDS.type_url() && r.names.is_empty())
        .await;
    let config = tokio::time::timeout(WAIT, async {
        while client.config().listener(REVIEWS).is_some() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(config.is_ok(), "the target is still configured");
    assert!(client.config().clusters().next().is_none());

    // The next request asks again, and is served.
    assert_eq!(server_of(&get(&client, &uri).await.unwrap()), "v1");
    assert_eq!(lds_names(), [REVIEWS]);
}

#[tokio::test(start_paused = true)]
async fn a_target_the_server_never_sends_does_not_exist_after_15s() {
    let server = AdsServer::start().await;
    server.set(LDS.type_url(), vec![listener("other", "routes")]);
    let client = mesh_client(ads_client(&server, Protocol::StateOfTheWorld));
    let started = tokio::time::Instant::now();
    let err = get(&client, "http://missing/").await.unwrap_err();
    assert!(
        err.contains("xds:///missing: LDS resource \"missing\" does not exist"),
        "{err}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= mesh_xds::ads::DOES_NOT_EXIST_TIMEOUT && waited < mesh_tower::client::TARGET_WAIT,
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_route_to_a_cluster_that_no_longer_exists_fails_only_its_requests() {
    const GONE: &str = "outbound|9080|gone|reviews.default.svc.cluster.local";
    let v1 = Server::start("v1", Duration::ZERO).await;
    let gone = Server::start("gone", Duration::ZERO).await;
    let server = AdsServer::start().await;
    server.set(LDS.type_url(), vec![listener(REVIEWS, "reviews")]);
    server.set(
        RDS.type_url(),
        vec![route_config_by_prefix(
            "reviews",
            &[REVIEWS],
            &[("/gone", GONE), ("/", V1)],
        )],
    );
    server.set(CDS.type_url(), vec![eds_cluster(V1), eds_cluster(GONE)]);
    server.set(
        EDS.type_url(),
        vec![
            load_assignment_at(V1, &[v1.addr]),
            load_assignment_at(GONE, &[gone.addr]),
        ],
    );
    let client = mesh_client(ads_client(&server, Protocol::StateOfTheWorld));
    let uri = |path: &str| format!("http://{REVIEWS}{path}");
    assert_eq!(
        server_of(&get(&client, &uri("/gone")).await.unwrap()),
        "gone"
    );

    // Left out of a full CDS response: deleted (gRFC A53).
    server.set(CDS.type_url(), vec![eds_cluster(V1)]);
    let err = tokio::time::timeout(WAIT, async {
        loop {
            match get(&client, &uri("/gone")).await {
                Ok(_) => tokio::task::yield_now().await,
                Err(e) => return e,
            }
        }
    })
    .await
    .expect("the deletion arrives");
    assert!(
        err.contains(&format!("CDS resource {GONE:?} does not exist")),
        "{err}"
    );
    assert_eq!(server_of(&get(&client, &uri("/ok")).await.unwrap()), "v1");
}

#[tokio::test]
async fn a_route_configuration_without_virtual_hosts_answers_404() {
    let server = AdsServer::start().await;
    server.set(LDS.type_url(), vec![listener(REVIEWS, "reviews")]);
    server.set(
        RDS.type_url(),
        vec![route_config_by_prefix("reviews", &[], &[])],
    );
    let client = mesh_client(ads_client(&server, Protocol::StateOfTheWorld));
    let err = get(&client, &format!("http://{REVIEWS}/x"))
        .await
        .unwrap_err();
    assert_eq!(err, format!("404 Not Found: no route for {REVIEWS}/x\n"));
}

#[tokio::test]
async fn a_new_target_fails_at_once_while_the_control_plane_cannot_be_reached() {
    let mut server = AdsServer::start().await;
    server.stop().await;
    let client = mesh_client(ads_client(&server, Protocol::StateOfTheWorld));
    let err = tokio::time::timeout(WAIT, get(&client, &format!("http://{REVIEWS}/")))
        .await
        .expect("no waiting for a control plane that cannot answer")
        .unwrap_err();
    assert!(
        err.starts_with(&format!(
            "xds:///{REVIEWS}: the control plane cannot be reached: "
        )),
        "{err}"
    );
}

#[tokio::test]
async fn a_rejected_update_leaves_traffic_on_the_last_good_routes() {
    let v1 = Server::start("v1", Duration::ZERO).await;
    let v2 = Server::start("v2", Duration::ZERO).await;
    let server = AdsServer::start().await;
    serve(&server, (100, 0), &[v1.addr], &[v2.addr]);
    let client = mesh_client(ads_client(&server, Protocol::StateOfTheWorld));
    let uri = format!("http://{REVIEWS}/");
    assert_eq!(server_of(&get(&client, &uri).await.unwrap()), "v1");

    // To v2, but on a regex that does not compile: NACKed.
    server.set(RDS.type_url(), vec![bad_route_config("reviews", V2)]);
    let nack = server
        .wait_for_request(|r| r.type_url == RDS.type_url() && r.error.is_some())
        .await;
    let error = nack.error.unwrap();
    assert!(
        error.contains("RouteConfiguration \"reviews\"") && error.contains("regex"),
        "{error}"
    );
    assert_eq!(
        tally(&client, &uri, 100).await,
        HashMap::from([("v1".into(), 100)])
    );
}

/// A second client of the same ADS client asking for a target the first
/// already has (no new subscription, so no response of its own) is
/// configured at once, not after the target wait.
#[tokio::test]
async fn a_second_client_of_one_ads_client_routes_a_target_the_first_has() {
    let v1 = Server::start("v1", Duration::ZERO).await;
    let server = AdsServer::start().await;
    serve(&server, (100, 0), &[v1.addr], &[]);
    let ads = ads_client(&server, Protocol::StateOfTheWorld);
    let uri = format!("http://{REVIEWS}/");
    let first = mesh_client(ads.clone());
    assert_eq!(server_of(&get(&first, &uri).await.unwrap()), "v1");

    let second = mesh_client(ads);
    let answered = tokio::time::timeout(Duration::from_secs(5), get(&second, &uri))
        .await
        .expect("configured without waiting for an update");
    assert_eq!(server_of(&answered.unwrap()), "v1");
}

/// The admin dumps what the client holds, as Envoy's `ConfigDump` and
/// over CSDS on the same port, with a NACKed route configuration's
/// last good copy and what its NACK said.
#[tokio::test]
async fn the_admin_dumps_what_the_client_holds_and_serves_it_over_csds() {
    use envoy_types::pb::envoy::admin::v3::ClientResourceStatus;
    use envoy_types::pb::envoy::service::status::v3::ClientStatusRequest;
    use envoy_types::pb::envoy::service::status::v3::client_status_discovery_service_client::ClientStatusDiscoveryServiceClient;

    let v1 = Server::start("v1", Duration::ZERO).await;
    let server = AdsServer::start().await;
    serve(&server, (100, 0), &[v1.addr], &[]);
    let ads = ads_client(&server, Protocol::StateOfTheWorld);
    let client = mesh_client(ads.clone());
    let uri = format!("http://{REVIEWS}/");
    assert_eq!(server_of(&get(&client, &uri).await.unwrap()), "v1");
    server.set(RDS.type_url(), vec![bad_route_config("reviews", V2)]);
    server
        .wait_for_request(|r| r.type_url == RDS.type_url() && r.error.is_some())
        .await;
    // The NACK is published once the response is handled.
    let mut updates = ads.updates();
    tokio::time::timeout(
        WAIT,
        updates.wait_for(|v| v.rejected(RDS, "reviews").is_some()),
    )
    .await
    .unwrap()
    .unwrap();

    let admin = mesh_tower::admin::Admin::builder(Default::default())
        .xds("mesh", &ads)
        .client("app", &client)
        .build();
    let res = admin.respond(&http::Request::get("/config_dump").body(()).unwrap());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let dump: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let configs = dump["configs"].as_array().unwrap();
    let types: Vec<&str> = configs
        .iter()
        .map(|c| c["@type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
            "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
            "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
            "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
        ]
    );
    let listener = &configs[0]["dynamicListeners"][0];
    assert_eq!(listener["name"], REVIEWS);
    assert_eq!(listener["clientStatus"], "ACKED");
    assert_eq!(listener["activeState"]["listener"]["name"], REVIEWS);
    let routes = &configs[1]["dynamicRouteConfigs"][0];
    assert_eq!(routes["clientStatus"], "NACKED");
    assert_eq!(
        routes["routeConfig"]["name"], "reviews",
        "the last good copy"
    );
    let details = routes["errorState"]["details"].as_str().unwrap();
    assert!(details.contains("regex"), "{details}");
    assert!(routes["lastUpdated"].as_str().unwrap().ends_with('Z'));
    let clusters = configs[2]["dynamicActiveClusters"].as_array().unwrap();
    assert!(
        clusters.iter().all(|c| c["clientStatus"] == "ACKED"),
        "{clusters:?}"
    );

    // CSDS, over gRPC on the admin's own port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(admin.clone().serve(listener));
    let mut csds = ClientStatusDiscoveryServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let response = csds
        .fetch_client_status(ClientStatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let [config] = &response.config[..] else {
        panic!("{response:?}")
    };
    assert_eq!(
        config.node.as_ref().unwrap().id,
        "sidecar~127.0.0.1~productpage.default~default.svc.cluster.local"
    );
    let rds = config
        .generic_xds_configs
        .iter()
        .find(|c| c.type_url == RDS.type_url())
        .unwrap();
    assert_eq!(rds.name, "reviews");
    assert_eq!(rds.client_status, ClientResourceStatus::Nacked as i32);
    assert!(rds.error_state.as_ref().unwrap().details.contains("regex"));
    assert!(rds.xds_config.is_some());

    let requests = futures_util::stream::iter([ClientStatusRequest {
        exclude_resource_contents: true,
        ..Default::default()
    }]);
    let mut stream = csds
        .stream_client_status(requests)
        .await
        .unwrap()
        .into_inner();
    let streamed = stream.message().await.unwrap().unwrap();
    let configs = &streamed.config[0].generic_xds_configs;
    assert_eq!(configs.len(), config.generic_xds_configs.len());
    assert!(configs.iter().all(|c| c.xds_config.is_none()));
    // The plain admin still answers on the same port.
    let ready = http1_get(addr, "/ready").await;
    assert_eq!(ready, "PRE_INITIALIZING\n");
    serving.abort();
}

/// One HTTP/1.1 GET over a fresh connection; the body.
async fn http1_get(addr: SocketAddr, path: &str) -> String {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", addr.to_string())
        .body(Full::<Bytes>::default())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}
