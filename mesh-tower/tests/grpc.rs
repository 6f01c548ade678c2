//! A tonic generated client over MeshClient, against real tonic servers.

use std::net::SocketAddr;

use mesh_core::policy::LoadBalancer;
use mesh_core::{ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
use mesh_tower::MeshClient;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_server::HealthServer};

/// Starts a gRPC health server on loopback; `serving` decides the status
/// reported for the service "ratings".
async fn grpc_server(serving: bool) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let (reporter, service) = tonic_health::server::health_reporter();
    if serving {
        reporter
            .set_service_status("ratings", tonic_health::ServingStatus::Serving)
            .await;
    } else {
        reporter
            .set_service_status("ratings", tonic_health::ServingStatus::NotServing)
            .await;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _keep = reporter;
        tonic::transport::Server::builder()
            .add_service::<HealthServer<_>>(service)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    (addr, task)
}

fn check() -> HealthCheckRequest {
    HealthCheckRequest {
        service: "ratings".into(),
    }
}

/// A client sending `ratings:9080` round robin to `addrs`.
fn round_robin_client(addrs: &[SocketAddr]) -> MeshClient<tonic::body::Body> {
    let resolve = StaticResolve::default();
    resolve.set(
        &"ratings:9080".parse().unwrap(),
        addrs
            .iter()
            .map(|a| Endpoint::new(*a))
            .collect::<EndpointSet>(),
    );
    MeshClient::builder(resolve)
        .policy(ClusterPolicy {
            load_balancer: LoadBalancer::RoundRobin,
            ..ClusterPolicy::default()
        })
        .build()
}

#[tokio::test]
async fn a_tonic_client_balances_over_the_mesh() {
    let (up, _t1) = grpc_server(true).await;
    let (down, _t2) = grpc_server(false).await;
    let client = round_robin_client(&[up, down]);

    let mut health = HealthClient::new(client.channel("ratings:9080".parse().unwrap()));
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(health.check(check()).await.unwrap().into_inner().status());
    }
    let serving = statuses
        .iter()
        .filter(|s| **s == ServingStatus::Serving)
        .count();
    assert_eq!(serving, 2, "round robin over both servers: {statuses:?}");

    let mut with_origin = HealthClient::with_origin(client, "http://ratings:9080".parse().unwrap());
    with_origin.check(check()).await.unwrap();
}

#[tokio::test]
async fn a_dead_grpc_endpoint_is_retried_elsewhere() {
    let (up, _t1) = grpc_server(true).await;
    let (dead, t2) = grpc_server(true).await;
    t2.abort();
    let _ = t2.await;
    let client = round_robin_client(&[up, dead]);
    let mut health = HealthClient::new(client.channel("ratings:9080".parse().unwrap()));
    for _ in 0..6 {
        let status = health.check(check()).await.unwrap().into_inner().status();
        assert_eq!(status, ServingStatus::Serving);
    }
}
