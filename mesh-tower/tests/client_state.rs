//! What a client holds, read back: `MeshClient::status`, the admin's
//! `/clusters` (text and JSON) and the mesh's own metrics, after a known
//! run against real servers: an ejected endpoint, one discovery reports
//! unhealthy, a circuit-breaker overflow and a rate-limited request.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use mesh_core::policy::{CircuitBreakers, Limit, LocalRateLimit, OutlierDetection};
use mesh_core::{Authority, ClusterPolicy, Endpoint, EndpointSet, Health, StaticResolve};
use mesh_tower::admin::Admin;
use mesh_tower::balance::EndpointState;
use mesh_tower::{BoxError, MeshClient};
use prometheus_client::registry::Registry;
use support::Server;
use tower::ServiceExt;

async fn get(client: &MeshClient<Empty<Bytes>>, uri: &str) -> Result<http::StatusCode, BoxError> {
    let req = http::Request::get(uri).body(Empty::new())?;
    let res = client.clone().oneshot(req).await?;
    let status = res.status();
    res.into_body().collect().await?;
    Ok(status)
}

async fn admin_get(admin: &Admin, path: &str) -> String {
    let res = admin.respond(&http::Request::get(path).body(()).unwrap());
    assert_eq!(res.status(), http::StatusCode::OK, "{path}");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

fn authority(s: &str) -> Authority {
    s.parse().unwrap()
}

#[tokio::test]
async fn clusters_endpoints_and_their_counters_are_read_back() {
    let up = Server::start("up", Duration::ZERO).await;
    let mut gone = Server::start("gone", Duration::ZERO).await;
    gone.kill().await;
    let slow = Server::start("slow", Duration::from_secs(30)).await;
    let limited = Server::start("limited", Duration::ZERO).await;

    let resolve = StaticResolve::default();
    let down = Endpoint {
        health: Health::Unhealthy,
        ..Endpoint::new("127.0.0.1:9".parse().unwrap())
    };
    resolve.set(
        &authority("flaky:80"),
        EndpointSet::new([up.endpoint(), gone.endpoint(), down]),
    );
    resolve.set(&authority("slow:80"), EndpointSet::new([slow.endpoint()]));
    resolve.set(
        &authority("limited:80"),
        EndpointSet::new([limited.endpoint()]),
    );
    let client: MeshClient<Empty<Bytes>> = MeshClient::builder(resolve)
        .cluster_policy(
            authority("flaky:80"),
            ClusterPolicy {
                outlier: OutlierDetection {
                    consecutive_5xx: Some(1),
                    ..OutlierDetection::default()
                },
                ..ClusterPolicy::default()
            },
        )
        .cluster_policy(
            authority("slow:80"),
            ClusterPolicy {
                circuit_breakers: CircuitBreakers {
                    max_requests: 1,
                    max_pending_requests: 0,
                },
                ..ClusterPolicy::default()
            },
        )
        .cluster_policy(
            authority("limited:80"),
            ClusterPolicy {
                rate_limit: Some(LocalRateLimit {
                    total: Some(Limit {
                        requests_per_second: 1,
                    }),
                    ..LocalRateLimit::default()
                }),
                ..ClusterPolicy::default()
            },
        )
        .build();

    // Until the dead endpoint has failed once, and so is ejected (the
    // request retried on the live one).
    for _ in 0..50 {
        assert_eq!(get(&client, "http://flaky/").await.unwrap(), 200);
        if client.status().clusters[0].ejections > 0 {
            break;
        }
    }
    for _ in 0..5 {
        assert_eq!(get(&client, "http://flaky/").await.unwrap(), 200);
    }

    let held = tokio::spawn({
        let client = client.clone();
        async move { get(&client, "http://slow/").await }
    });
    while slow.hits() == 0 {
        tokio::task::yield_now().await;
    }
    assert!(get(&client, "http://slow/").await.is_err(), "overflow");

    assert_eq!(get(&client, "http://limited/").await.unwrap(), 200);
    assert_eq!(get(&client, "http://limited/").await.unwrap(), 429);

    // The status, in code.
    let status = client.status();
    let names: Vec<&str> = status.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["flaky:80", "limited:80", "slow:80"]);
    let flaky = &status.clusters[0];
    assert_eq!(flaky.ejections, 1);
    let state_of = |addr: std::net::SocketAddr| {
        let e = flaky.endpoints.iter().find(|e| e.endpoint.addr == addr);
        e.map(|e| (e.state, e.errors, e.times_ejected))
    };
    assert_eq!(state_of(gone.addr), Some((EndpointState::Ejected, 1, 1)));
    assert_eq!(
        state_of(up.addr).map(|(s, errors, _)| (s, errors)),
        Some((EndpointState::Healthy, 0))
    );
    assert_eq!(
        state_of("127.0.0.1:9".parse().unwrap()),
        Some((EndpointState::Unhealthy, 0, 0))
    );
    let up_requests = flaky.endpoints.iter().find(|e| e.endpoint.addr == up.addr);
    assert_eq!(up_requests.unwrap().requests, up.hits() as u64);
    assert_eq!(status.clusters[1].rate_limited, 1);
    assert_eq!(status.clusters[2].circuit_breaker_overflows, 1);
    assert_eq!(
        status.clusters[2].endpoints[0].active, 1,
        "the held request"
    );

    // The admin: Envoy's text, its JSON, and the metrics.
    let admin = Admin::builder(Registry::default())
        .client("app", &client)
        .build();
    let text = admin_get(&admin, "/clusters").await;
    let line = |s: &str| assert!(text.lines().any(|l| l == s), "no {s:?} in\n{text}");
    line("flaky:80::observability_name::flaky:80");
    line("flaky:80::mesh_client::app");
    line(&format!(
        "flaky:80::{}::health_flags::/failed_outlier_check",
        gone.addr
    ));
    line(&format!("flaky:80::{}::health_flags::healthy", up.addr));
    line("flaky:80::127.0.0.1:9::health_flags::/failed_eds_health");
    line(&format!("flaky:80::{}::rq_error::1", gone.addr));
    line(&format!("flaky:80::{}::rq_total::{}", up.addr, up.hits()));
    line(&format!("flaky:80::{}::rq_success::{}", up.addr, up.hits()));
    line(&format!("slow:80::{}::rq_active::1", slow.addr));
    line("slow:80::default_priority::max_requests::1");

    let json: serde_json::Value =
        serde_json::from_str(&admin_get(&admin, "/clusters?format=json").await).unwrap();
    let statuses = json["cluster_statuses"].as_array().unwrap();
    assert_eq!(statuses.len(), 3);
    let hosts = statuses[0]["host_statuses"].as_array().unwrap();
    let ejected = hosts
        .iter()
        .find(|h| h["address"]["socket_address"]["port_value"] == gone.addr.port())
        .unwrap();
    assert_eq!(ejected["health_status"]["failed_outlier_check"], true);
    assert_eq!(ejected["health_status"]["eds_health_status"], "HEALTHY");

    let metrics = admin_get(&admin, "/stats/prometheus").await;
    for sample in [
        "mesh_client_endpoints{client=\"app\",cluster=\"flaky:80\",health=\"healthy\"} 1",
        "mesh_client_endpoints{client=\"app\",cluster=\"flaky:80\",health=\"ejected\"} 1",
        "mesh_client_endpoints{client=\"app\",cluster=\"flaky:80\",health=\"unhealthy\"} 1",
        "mesh_client_endpoints{client=\"app\",cluster=\"flaky:80\",health=\"draining\"} 0",
        "mesh_client_ejections_total{client=\"app\",cluster=\"flaky:80\"} 1",
        "mesh_client_circuit_breaker_overflows_total{client=\"app\",cluster=\"slow:80\"} 1",
        "mesh_client_rate_limited_total{client=\"app\",scope=\"cluster:limited:80\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == sample),
            "no {sample} in\n{metrics}"
        );
    }
    // The held request given up: an error of its endpoint, not a success.
    held.abort();
    let _ = held.await;
    let slow_status = client.status().clusters.remove(2);
    let endpoint = &slow_status.endpoints[0];
    assert_eq!((endpoint.active, endpoint.errors), (0, 1));
}

#[tokio::test]
async fn routes_are_the_route_configuration_envoy_would_be_sent() {
    use mesh_core::route::{Route, VirtualHost};

    let cluster = mesh_core::cluster::istio_cluster_name("reviews.default.svc", Some(9080), None);
    let config = support::config(vec![VirtualHost::new(
        "reviews",
        ["reviews", "reviews.default.svc"],
        vec![Route::forward(mesh_core::route::Forward::to(
            cluster.clone(),
        ))],
    )]);
    let client: MeshClient<Empty<Bytes>> = MeshClient::builder(StaticResolve::default())
        .config(config)
        .build();
    let admin = Admin::builder(Registry::default())
        .client("app", &client)
        .build();
    let routes: serde_json::Value =
        serde_json::from_str(&admin_get(&admin, "/routes").await).unwrap();
    let table = &routes["clients"][0]["route_configs"][0];
    assert_eq!(routes["clients"][0]["client"], "app");
    assert_eq!(table["name"], "default");
    let host = &table["virtualHosts"][0];
    assert_eq!(
        host["domains"],
        serde_json::json!(["reviews", "reviews.default.svc"])
    );
    assert_eq!(host["routes"][0]["route"]["cluster"], cluster.as_str());
}
