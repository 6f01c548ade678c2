//! MeshClient against a bare hyper-util client on loopback, 1 KiB responses,
//! 64 requests in flight: the mesh stack (discovery, balance, retry, timeout,
//! outlier, circuit breaker; no TLS) must keep at least 90 % of the bare
//! client's requests per second. `mesh_client_routed` adds a route table
//! (a header match, then an 80/20 split) in front.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_core::route::{
    Forward, HeaderMatch, HeaderMatcher, Route, RouteMatch, StringMatch, VirtualHost,
};
use mesh_core::{
    Cluster, ClusterPolicy, Endpoint, EndpointSet, MeshConfig, RouteTable, StaticResolve,
};
use mesh_tower::MeshClient;
use tokio::net::TcpListener;
use tower::ServiceExt;

const IN_FLIGHT: usize = 64;

async fn server() -> SocketAddr {
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

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = rt.block_on(server());

    let bare: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let bare_uri: http::Uri = format!("http://{addr}/").parse().unwrap();

    let resolve = StaticResolve::default();
    resolve.set(
        &"svc:80".parse().unwrap(),
        EndpointSet::new([Endpoint::new(addr)]),
    );
    let mesh: MeshClient<Empty<Bytes>> = MeshClient::builder(resolve)
        .policy(ClusterPolicy {
            timeout: Some(Duration::from_secs(15)),
            ..ClusterPolicy::default()
        })
        .build();

    let routed: MeshClient<Empty<Bytes>> = MeshClient::builder(resolve_for(addr))
        .config(routed_config())
        .build();

    let mut group = c.benchmark_group("loopback_1k");
    group.throughput(Throughput::Elements(IN_FLIGHT as u64));
    group.bench_function("bare_hyper_util", |b| {
        b.to_async(&rt).iter(|| async {
            join_all((0..IN_FLIGHT).map(|_| {
                let fut = bare.get(bare_uri.clone());
                async move { fut.await.unwrap().into_body().collect().await.unwrap() }
            }))
            .await
        });
    });
    group.bench_function("mesh_client", |b| {
        b.to_async(&rt).iter(|| async {
            join_all((0..IN_FLIGHT).map(|_| {
                let req = http::Request::get("http://svc/")
                    .body(Empty::new())
                    .unwrap();
                let fut = mesh.clone().oneshot(req);
                async move { fut.await.unwrap().into_body().collect().await.unwrap() }
            }))
            .await
        });
    });
    group.bench_function("mesh_client_routed", |b| {
        b.to_async(&rt).iter(|| async {
            join_all((0..IN_FLIGHT).map(|_| {
                let req = http::Request::get("http://svc/")
                    .body(Empty::new())
                    .unwrap();
                let fut = routed.clone().oneshot(req);
                async move { fut.await.unwrap().into_body().collect().await.unwrap() }
            }))
            .await
        });
    });
    group.finish();
}

fn resolve_for(addr: SocketAddr) -> StaticResolve {
    let resolve = StaticResolve::default();
    resolve.set(
        &"svc:80".parse().unwrap(),
        EndpointSet::new([Endpoint::new(addr)]),
    );
    resolve
}

/// `svc`: requests from `end-user: jason` to one cluster, the rest split
/// 80/20 over two; all three are the same service.
fn routed_config() -> MeshConfig {
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

criterion_group!(benches, bench);
criterion_main!(benches);
