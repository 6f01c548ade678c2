//! The cost of telemetry: `MeshClient` → `MeshServer` on loopback, 1 KiB
//! responses, 64 in flight, plain text, HTTP/1.1, with nothing on, and
//! with everything a proxyless workload runs in production on both sides —
//! peer metadata exchange, Istio's metrics, a span per request sampled at
//! Istio's 1 %. The goal: telemetry costs at most 3 % of requests/s.

mod support;

use std::net::SocketAddr;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use http_body_util::{BodyExt, Empty};
use mesh_core::policy::{ConnectionPolicy, Protocol};
use mesh_core::security::MtlsMode;
use mesh_core::telemetry::WorkloadMetadata;
use mesh_core::{Authority, ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
use mesh_tower::metrics::{IstioMetrics, IstioMetricsLayer, LocalWorkload, Reporter};
use mesh_tower::trace::{Sampler, TraceLayer};
use mesh_tower::{MeshClient, MeshServer};
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};

const IN_FLIGHT: usize = 64;

type Client = BoxCloneSyncService<
    http::Request<Empty<Bytes>>,
    http::Response<
        Box<dyn http_body::Body<Data = Bytes, Error = mesh_tower::BoxError> + Send + Unpin>,
    >,
    mesh_tower::BoxError,
>;

fn workload(app: &str) -> WorkloadMetadata {
    let labels = [("app".to_owned(), app.to_owned())].into();
    WorkloadMetadata::from_labels(
        &format!("{app}-0"),
        "default",
        &format!("{app}-v1"),
        &labels,
    )
}

/// A server answering 1 KiB, reporting its requests when `telemetry`.
async fn server(telemetry: bool) -> SocketAddr {
    let mut builder = MeshServer::builder().mtls(MtlsMode::Disable);
    if telemetry {
        builder = builder.metrics(IstioMetrics::default(), workload("server"), None);
    }
    support::mesh_server(builder).await
}

/// A client of `addr`, with its telemetry when `telemetry`.
fn client(addr: SocketAddr, telemetry: bool) -> Client {
    let resolve = StaticResolve::default();
    let target: Authority = "svc:80".parse().unwrap();
    resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
    let policy = ClusterPolicy {
        connection: ConnectionPolicy {
            protocol: Protocol::Http1,
            max_idle_per_endpoint: usize::MAX,
            ..ConnectionPolicy::default()
        },
        ..ClusterPolicy::default()
    };
    let builder = MeshClient::builder(resolve).cluster_policy(target, policy);
    let boxed = |res: http::Response<_>| {
        res.map(|b| Box::new(b) as Box<dyn http_body::Body<Data = Bytes, Error = _> + Send + Unpin>)
    };
    if !telemetry {
        let client: MeshClient<Empty<Bytes>> = builder.build();
        return BoxCloneSyncService::new(client.map_response(boxed));
    }
    let me = workload("client");
    let client: MeshClient<Empty<Bytes>> = builder.metadata(&me).build();
    let local = LocalWorkload {
        metadata: me.into(),
        principal: None,
        service: None,
    };
    let metrics = IstioMetricsLayer::new(IstioMetrics::default(), Reporter::Source, local);
    let traced = TraceLayer::client(Sampler::default()).layer(metrics.layer(client));
    let mapped = traced.map_response(move |res: http::Response<_>| {
        res.map(|b| {
            Box::new(b.map_err(|e: mesh_tower::BoxError| e))
                as Box<
                    dyn http_body::Body<Data = Bytes, Error = mesh_tower::BoxError> + Send + Unpin,
                >
        })
    });
    BoxCloneSyncService::new(mapped)
}

async fn burst(client: &Client) {
    join_all((0..IN_FLIGHT).map(|_| {
        let req = http::Request::get("http://svc/")
            .body(Empty::new())
            .unwrap();
        let fut = client.clone().oneshot(req);
        async move { fut.await.unwrap().into_body().collect().await.unwrap() }
    }))
    .await;
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (bare, reported) = rt.block_on(async {
        let bare = client(server(false).await, false);
        let reported = client(server(true).await, true);
        (bare, reported)
    });
    let mut group = c.benchmark_group("telemetry_loopback_1k");
    group.throughput(Throughput::Elements(IN_FLIGHT as u64));
    group.bench_function("off", |b| b.to_async(&rt).iter(|| burst(&bare)));
    group.bench_function("metrics_metadata_tracing_1pct", |b| {
        b.to_async(&rt).iter(|| burst(&reported))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
