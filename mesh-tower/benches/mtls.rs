//! The cost of the mesh's mutual TLS, `MeshClient` → `MeshServer` on
//! loopback: 1 KiB responses, 64 requests in flight over pooled
//! connections, HTTP/1.1 and HTTP/2, against the same server in plain
//! text (`DISABLE`) and in `STRICT` mutual TLS (certificates from a CA
//! made here). `new_connection` measures a request that opens its own
//! connection each time: a full handshake (a new client each time), a
//! resumed one (one client that keeps no idle connection, so its TLS
//! sessions are resumed), and plain TCP.
//!
//! `cargo bench -p mesh-tower --bench mtls`

#[path = "../tests/support/pki.rs"]
#[allow(dead_code, unreachable_pub)]
mod pki;

mod support;

use std::net::SocketAddr;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use http_body_util::{BodyExt, Empty};
use mesh_core::policy::{ConnectionPolicy, Protocol, UpstreamTls};
use mesh_core::security::MtlsMode;
use mesh_core::{Authority, ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
use mesh_tower::tls::WorkloadIdentity;
use mesh_tower::{MeshClient, MeshServer};
use pki::Ca;
use tower::ServiceExt;

const IN_FLIGHT: usize = 64;
const SERVER: &str = "spiffe://cluster.local/ns/default/sa/server";
const CLIENT: &str = "spiffe://cluster.local/ns/default/sa/client";

/// A MeshServer answering 1 KiB, in `STRICT` mutual TLS with `ca`'s
/// certificate, or in plain text.
async fn server(ca: Option<&Ca>) -> SocketAddr {
    let builder = match ca {
        Some(ca) => MeshServer::builder().identity(ca.identity(SERVER)),
        None => MeshServer::builder().mtls(MtlsMode::Disable),
    };
    support::mesh_server(builder).await
}

/// A client of `addr` speaking `protocol`, over mutual TLS as `identity`
/// when given, keeping `max_idle` connections.
fn client(
    addr: SocketAddr,
    identity: Option<&WorkloadIdentity>,
    protocol: Protocol,
    max_idle: usize,
) -> MeshClient<Empty<Bytes>> {
    let resolve = StaticResolve::default();
    let target: Authority = "svc:80".parse().unwrap();
    resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
    let policy = ClusterPolicy {
        connection: ConnectionPolicy {
            protocol,
            max_idle_per_endpoint: max_idle,
            ..ConnectionPolicy::default()
        },
        tls: identity.map(|_| UpstreamTls {
            subject_alt_names: vec![SERVER.into()],
            ..UpstreamTls::default()
        }),
        ..ClusterPolicy::default()
    };
    let builder = MeshClient::builder(resolve).cluster_policy(target, policy);
    match identity {
        Some(identity) => builder.identity(identity.clone()).build(),
        None => builder.build(),
    }
}

async fn get(client: &MeshClient<Empty<Bytes>>) {
    let req = http::Request::get("http://svc/")
        .body(Empty::new())
        .unwrap();
    let res = client.clone().oneshot(req).await.unwrap();
    res.into_body().collect().await.unwrap();
}

async fn burst(client: &MeshClient<Empty<Bytes>>) {
    join_all((0..IN_FLIGHT).map(|_| get(client))).await;
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ca = Ca::new();
    let plain_addr = rt.block_on(server(None));
    let tls_addr = rt.block_on(server(Some(&ca)));
    let unbounded = usize::MAX;
    let me = ca.identity(CLIENT);

    for (name, protocol) in [("http1", Protocol::Http1), ("http2", Protocol::Http2)] {
        let (plain, mtls) = rt.block_on(async {
            (
                client(plain_addr, None, protocol, unbounded),
                client(tls_addr, Some(&me), protocol, unbounded),
            )
        });
        let mut group = c.benchmark_group(format!("loopback_1k_{name}"));
        group.throughput(Throughput::Elements(IN_FLIGHT as u64));
        group.bench_function("plain_text", |b| b.to_async(&rt).iter(|| burst(&plain)));
        group.bench_function("mutual_tls", |b| b.to_async(&rt).iter(|| burst(&mtls)));
        group.finish();
    }

    let mut group = c.benchmark_group("new_connection");
    group.throughput(Throughput::Elements(1));
    let plain = rt.block_on(async { client(plain_addr, None, Protocol::Http1, 0) });
    group.bench_function("plain_text", |b| b.to_async(&rt).iter(|| get(&plain)));
    group.bench_function("mutual_tls_full_handshake", |b| {
        b.to_async(&rt).iter(|| async {
            get(&client(tls_addr, Some(&me), Protocol::Http1, 0)).await;
        })
    });
    let resumed = rt.block_on(async { client(tls_addr, Some(&me), Protocol::Http1, 0) });
    group.bench_function("mutual_tls_resumed", |b| {
        b.to_async(&rt).iter(|| get(&resumed))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
