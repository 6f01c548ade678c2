//! The cost of telemetry: `MeshClient` → `MeshServer` on loopback, 1 KiB
//! responses, 64 in flight, plain text, over HTTP/1.1 and over HTTP/2
//! (h2c, one connection), with nothing on, and
//! with everything a proxyless workload runs in production on both sides —
//! peer metadata exchange, Istio's metrics, a span per request sampled at
//! Istio's 1 %. The goal: telemetry costs at most 3 % of requests/s.
//!
//! A third run sends the same headers with none of the telemetry's code
//! (`wire_only`: the peer metadata both ways, and new trace ids with each
//! request): what Istio's wire format costs by itself.

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
use mesh_tower::metrics::{CountedBody, IstioMetrics, IstioMetricsLayer, LocalWorkload, Reporter};
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

/// The headers a telemetry client sends with every request (its peer
/// metadata), and those its server answers with.
fn wire_headers() -> (http::HeaderMap, http::HeaderMap) {
    use mesh_tower::metadata_exchange::{PEER_METADATA, PEER_METADATA_ID, codec, node_id};
    let told = |app: &str| {
        let me = workload(app);
        let mut headers = http::HeaderMap::new();
        headers.insert(PEER_METADATA, codec::encode(&me).try_into().unwrap());
        headers.insert(PEER_METADATA_ID, node_id(&me));
        headers
    };
    (told("client"), told("server"))
}

/// Adds the trace headers of an unsampled request to `headers`: new ids
/// each time, as every request's are (written as the trace layer writes
/// them, one buffer sliced, marked sensitive).
fn trace_headers(headers: &mut http::HeaderMap) {
    use std::fmt::Write;
    let (trace, span, id): (u128, u64, u128) = (rand::random(), rand::random(), rand::random());
    let mut text = String::with_capacity(55 + 32);
    let _ = write!(text, "00-{trace:032x}-{span:016x}-00{id:032x}");
    let all = Bytes::from(text);
    let value = |range: std::ops::Range<usize>| {
        let mut v = http::HeaderValue::from_maybe_shared(all.slice(range)).unwrap();
        v.set_sensitive(true);
        v
    };
    headers.insert("traceparent", value(0..55));
    headers.insert("x-b3-traceid", value(3..35));
    headers.insert("x-b3-spanid", value(36..52));
    headers.insert("x-b3-sampled", http::HeaderValue::from_static("0"));
    headers.insert("x-request-id", value(55..87));
}

/// A plain server on loopback answering 1 KiB with `headers`.
async fn wire_server(headers: http::HeaderMap) -> SocketAddr {
    let server = MeshServer::builder()
        .mtls(MtlsMode::Disable)
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = Bytes::from(vec![b'x'; 1024]);
    let svc = tower::service_fn(move |_req| {
        let mut res = http::Response::new(http_body_util::Full::new(body.clone()));
        res.headers_mut().extend(headers.clone());
        async move { Ok::<_, std::convert::Infallible>(res) }
    });
    tokio::spawn(async move { server.serve(listener, svc).await });
    addr
}

/// A plain client of `addr` sending `headers` with each request.
fn wire_client(addr: SocketAddr, protocol: Protocol, headers: http::HeaderMap) -> Client {
    let plain = client(addr, protocol, false);
    BoxCloneSyncService::new(
        plain.map_request(move |mut req: http::Request<Empty<Bytes>>| {
            req.headers_mut().extend(headers.clone());
            trace_headers(req.headers_mut());
            req
        }),
    )
}

/// A client of `addr`, with its telemetry when `telemetry`.
fn client(addr: SocketAddr, protocol: Protocol, telemetry: bool) -> Client {
    let resolve = StaticResolve::default();
    let target: Authority = "svc:80".parse().unwrap();
    resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
    let policy = ClusterPolicy {
        connection: ConnectionPolicy {
            protocol,
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
    let client: MeshClient<CountedBody<Empty<Bytes>>> = builder.metadata(&me).build();
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
    for (name, protocol) in [("http1", Protocol::Http1), ("http2", Protocol::Http2)] {
        let (bare, reported, wire) = rt.block_on(async {
            let bare = client(server(false).await, protocol, false);
            let reported = client(server(true).await, protocol, true);
            let (request, response) = wire_headers();
            let wire = wire_client(wire_server(response).await, protocol, request);
            (bare, reported, wire)
        });
        let mut group = c.benchmark_group(format!("telemetry_loopback_1k_{name}"));
        group.throughput(Throughput::Elements(IN_FLIGHT as u64));
        group.bench_function("off", |b| b.to_async(&rt).iter(|| burst(&bare)));
        group.bench_function("metrics_metadata_tracing_1pct", |b| {
            b.to_async(&rt).iter(|| burst(&reported))
        });
        group.bench_function("wire_only", |b| b.to_async(&rt).iter(|| burst(&wire)));
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
