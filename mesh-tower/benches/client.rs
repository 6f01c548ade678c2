//! MeshClient against a bare hyper-util client on loopback, 1 KiB responses,
//! 64 requests in flight: the mesh stack (discovery, balance, retry, timeout,
//! outlier, circuit breaker; no TLS) must keep at least 90 % of the bare
//! client's requests per second. `mesh_client_routed` adds a route table
//! (a header match, then an 80/20 split) in front.

mod support;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::ServiceExt;

const IN_FLIGHT: usize = 64;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = rt.block_on(support::server());

    let bare: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let bare_uri: http::Uri = format!("http://{addr}/").parse().unwrap();

    let mesh = support::mesh_client(addr);
    let routed = support::routed_client(addr);

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

criterion_group!(benches, bench);
criterion_main!(benches);
