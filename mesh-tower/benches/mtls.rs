//! The cost of the mesh's mutual TLS on `MeshClient`'s requests: loopback,
//! 1 KiB responses, 64 requests in flight over pooled HTTP/1.1
//! connections, to a server answering in plain text and to the same
//! server behind rustls requiring client certificates (certificates from
//! a CA made here). `new_connection` measures a request that opens its own
//! connection each time (a new client per request): a full handshake.
//!
//! `cargo bench -p mesh-tower --bench mtls`

#[path = "../tests/support/pki.rs"]
#[allow(dead_code, unreachable_pub)]
mod pki;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;
use mesh_core::policy::UpstreamTls;
use mesh_core::{ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
use mesh_tower::MeshClient;
use pki::Ca;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tower::ServiceExt;

const IN_FLIGHT: usize = 64;
const SERVER: &str = "spiffe://cluster.local/ns/default/sa/server";
const CLIENT: &str = "spiffe://cluster.local/ns/default/sa/client";

/// A server answering 1 KiB over HTTP/1.1, behind TLS if `tls` is given.
async fn server(tls: Option<tokio_rustls::TlsAcceptor>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = Bytes::from(vec![b'x'; 1024]);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            stream.set_nodelay(true).unwrap();
            let (body, tls) = (body.clone(), tls.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let body = body.clone();
                    async move { Ok::<_, Infallible>(hyper::Response::new(Full::new(body))) }
                });
                let http = hyper::server::conn::http1::Builder::new();
                let _ = match tls {
                    Some(tls) => match tls.accept(stream).await {
                        Ok(s) => http.serve_connection(TokioIo::new(s), svc).await,
                        Err(_) => return,
                    },
                    None => http.serve_connection(TokioIo::new(stream), svc).await,
                };
            });
        }
    });
    addr
}

fn acceptor(ca: &Ca) -> tokio_rustls::TlsAcceptor {
    let (chain, key) = ca.issue(SERVER);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.0.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

fn client(addr: SocketAddr, mtls: Option<&Ca>) -> MeshClient<Empty<Bytes>> {
    let resolve = StaticResolve::default();
    let target = "svc:80".parse().unwrap();
    resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
    let builder = MeshClient::builder(resolve);
    match mtls {
        Some(ca) => builder
            .cluster_policy(
                target,
                ClusterPolicy {
                    tls: Some(UpstreamTls {
                        subject_alt_names: vec![SERVER.into()],
                        ..UpstreamTls::default()
                    }),
                    ..ClusterPolicy::default()
                },
            )
            .identity(ca.identity(CLIENT))
            .build(),
        None => builder.build(),
    }
}

async fn burst(client: &MeshClient<Empty<Bytes>>) {
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
    let ca = Ca::new();
    let plain_addr = rt.block_on(server(None));
    let tls_addr = rt.block_on(server(Some(acceptor(&ca))));
    let (plain, mtls) =
        rt.block_on(async { (client(plain_addr, None), client(tls_addr, Some(&ca))) });

    let mut group = c.benchmark_group("loopback_1k");
    group.throughput(Throughput::Elements(IN_FLIGHT as u64));
    group.bench_function("plain_text", |b| b.to_async(&rt).iter(|| burst(&plain)));
    group.bench_function("mutual_tls", |b| b.to_async(&rt).iter(|| burst(&mtls)));
    group.finish();

    let identity = ca.identity(CLIENT);
    let mut group = c.benchmark_group("new_connection");
    group.throughput(Throughput::Elements(1));
    let one = |addr, mtls: bool| {
        let identity = identity.clone();
        async move {
            let resolve = StaticResolve::default();
            let target: mesh_core::Authority = "svc:80".parse().unwrap();
            resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
            let mut builder = MeshClient::builder(resolve);
            if mtls {
                let policy = ClusterPolicy {
                    tls: Some(UpstreamTls {
                        subject_alt_names: vec![SERVER.into()],
                        ..UpstreamTls::default()
                    }),
                    ..ClusterPolicy::default()
                };
                builder = builder.cluster_policy(target, policy).identity(identity);
            }
            let client: MeshClient<Empty<Bytes>> = builder.build();
            let req = http::Request::get("http://svc/")
                .body(Empty::new())
                .unwrap();
            client
                .oneshot(req)
                .await
                .unwrap()
                .into_body()
                .collect()
                .await
                .unwrap()
        }
    };
    group.bench_function("plain_text", |b| {
        b.to_async(&rt).iter(|| one(plain_addr, false))
    });
    group.bench_function("mutual_tls", |b| {
        b.to_async(&rt).iter(|| one(tls_addr, true))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
