//! MeshClient against a bare hyper-util client on loopback, 1 KiB responses,
//! 64 requests in flight: the mesh stack (discovery, balance, retry, timeout,
//! outlier, circuit breaker; no TLS) must keep at least 90 % of the bare
//! client's requests per second.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_core::{ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
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
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
