//! What the client benchmarks share: a loopback server answering 1 KiB
//! (a bare hyper one, or a `MeshServer`), the clients measured, and the
//! routed configuration.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Empty, Full};
use hyper_util::rt::TokioIo;
use mesh_core::route::{
    Forward, HeaderMatch, HeaderMatcher, Route, RouteMatch, StringMatch, VirtualHost,
};
use mesh_core::{
    Cluster, ClusterPolicy, Endpoint, EndpointSet, MeshConfig, RouteTable, StaticResolve,
};
use mesh_tower::MeshClient;
use tokio::net::TcpListener;

/// `builder`'s `MeshServer` on loopback, answering every request with
/// 1 KiB.
pub(crate) async fn mesh_server(builder: mesh_tower::MeshServerBuilder) -> SocketAddr {
    let server = builder.build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = Bytes::from(vec![b'x'; 1024]);
    let svc = tower::service_fn(move |_req| {
        let body = body.clone();
        async move { Ok::<_, Infallible>(http::Response::new(Full::new(body))) }
    });
    tokio::spawn(async move { server.serve(listener, svc).await });
    addr
}

/// A server on loopback answering every request with 1 KiB.
pub(crate) async fn server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = Bytes::from(vec![b'x'; 1024]);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            stream.set_nodelay(true).unwrap();
            let body = body.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let body = body.clone();
                    async move { Ok::<_, Infallible>(hyper::Response::new(Full::new(body))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// The plain mesh client: discovery, P2C, Istio's default retries, a
/// timeout, outlier detection and circuit breakers.
pub(crate) fn mesh_client(addr: SocketAddr) -> MeshClient<Empty<Bytes>> {
    MeshClient::builder(resolve_for(addr))
        .policy(ClusterPolicy {
            timeout: Some(Duration::from_secs(15)),
            ..ClusterPolicy::default()
        })
        .build()
}

/// The mesh client with [`routed_config`] in front.
pub(crate) fn routed_client(addr: SocketAddr) -> MeshClient<Empty<Bytes>> {
    MeshClient::builder(resolve_for(addr))
        .config(routed_config())
        .build()
}

pub(crate) fn resolve_for(addr: SocketAddr) -> StaticResolve {
    let resolve = StaticResolve::default();
    resolve.set(
        &"svc:80".parse().unwrap(),
        EndpointSet::new([Endpoint::new(addr)]),
    );
    resolve
}

/// `svc`: requests from `end-user: jason` to one cluster, the rest split
/// 80/20 over two; all three are the same service.
pub(crate) fn routed_config() -> MeshConfig {
    let jason = RouteMatch {
        headers: vec![HeaderMatcher {
            name: http::HeaderName::from_static("end-user"),
            kind: HeaderMatch::Value(StringMatch::Exact("jason".into())),
            invert: false,
        }],
        ..Default::default()
    };
    let table = RouteTable::new(vec![VirtualHost::new(
        "svc",
        ["svc"],
        vec![
            Route::forward(Forward::to("svc-a")).when(jason),
            Route::forward(Forward::split([("svc-a".into(), 80), ("svc-b".into(), 20)])),
        ],
    )])
    .unwrap();
    let clusters = ["svc-a", "svc-b"].map(|name| Cluster {
        name: name.into(),
        ..Cluster::service(&"svc:80".parse().unwrap())
    });
    MeshConfig::new(table, clusters).unwrap()
}
