//! `MeshClient` discovering its endpoints through `DnsResolve`: real hyper
//! servers and a real DNS server, all on 127.0.0.1, on paused time.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use mesh_dns::{DnsConfig, DnsResolve, Outage};
use mesh_tower::{BoxError, MeshClient};
use support::TestDns;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// An HTTP server on 127.0.0.1:0 answering its name; aborted when dropped.
struct Http {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Http {
    async fn start(name: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let svc = hyper::service::service_fn(move |_req| async move {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(name))))
                });
                tokio::spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { addr, task }
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn try_get(client: &MeshClient<Empty<Bytes>>, uri: &str) -> Result<String, BoxError> {
    let req = http::Request::get(uri).body(Empty::new()).unwrap();
    let res = client.clone().oneshot(req).await?;
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8(body.to_vec()).unwrap())
}

async fn get(client: &MeshClient<Empty<Bytes>>, uri: &str) -> String {
    try_get(client, uri).await.unwrap()
}

fn config(dns: &TestDns) -> DnsConfig {
    DnsConfig {
        name_servers: vec![dns.addr()],
        min_ttl: Duration::from_secs(1),
        failure_refresh: Duration::from_millis(500),
        query_timeout: Duration::from_millis(500),
        hosts_file: false,
        ..DnsConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn requests_follow_dns_without_failing() {
    let dns = TestDns::start().await;
    let v1 = Http::start("v1").await;
    let v2 = Http::start("v2").await;
    // SRV records carry the ports, so both servers can live on 127.0.0.1:0.
    dns.set_addresses("reviews-v1", 1, &["127.0.0.1".parse().unwrap()])
        .await;
    dns.set_srv(
        "_http._tcp.reviews",
        1,
        &[(0, 1, v1.addr.port(), "reviews-v1")],
    )
    .await;

    let resolve = DnsResolve::new(config(&dns)).unwrap();
    let client: MeshClient<Empty<Bytes>> = MeshClient::builder(resolve).build();
    let uri = "http://_http._tcp.reviews:80/reviews/0";
    assert_eq!(get(&client, uri).await, "v1");

    // v2 replaces v1 in DNS; every request keeps succeeding, and v2 takes
    // over within a few TTLs.
    dns.set_srv(
        "_http._tcp.reviews",
        1,
        &[(0, 1, v2.addr.port(), "reviews-v1")],
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if get(&client, uri).await == "v2" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still on v1");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(v1);
    for _ in 0..5 {
        assert_eq!(get(&client, uri).await, "v2");
    }
}

#[tokio::test(start_paused = true)]
async fn a_deleted_service_takes_no_more_requests_and_they_say_why() {
    let dns = TestDns::start().await;
    let details = Http::start("details").await;
    let ip = details.addr.ip();
    dns.set_addresses("details", 5, &[ip]).await;
    let client: MeshClient<Empty<Bytes>> =
        MeshClient::builder(DnsResolve::new(config(&dns)).unwrap()).build();
    let uri = format!("http://details:{}/details/0", details.addr.port());
    assert_eq!(get(&client, &uri).await, "details");

    // The name server fails for a while: the last endpoints keep serving.
    dns.set_outage(Some(Outage::ServerFailure));
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(get(&client, &uri).await, "details");
    dns.set_outage(None);

    // The Service is deleted: once its TTL has run out, nothing is sent to
    // the address it had, which may be another's by now.
    dns.set_addresses("details", 5, &[]).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let err = try_get(&client, &uri).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "cannot resolve details:{}: the name no longer resolves: no such name (NXDOMAIN)",
            details.addr.port()
        )),
        "{err}"
    );

    // It comes back: requests find it again.
    dns.set_addresses("details", 5, &[ip]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(get(&client, &uri).await, "details");
}

/// A `Mesh` given DNS discovery hands out clients resolving through it,
/// with Kubernetes' search domains completing a short name.
#[tokio::test(start_paused = true)]
async fn a_mesh_with_dns_discovery_resolves_kubernetes_short_names() {
    let dns = mesh_dns::LocalDns::start("bookinfo.svc.cluster.local")
        .await
        .unwrap();
    let v1 = Http::start("v1").await;
    dns.set_addresses("reviews", 1, &["127.0.0.1".parse().unwrap()])
        .await
        .unwrap();
    let dns_config = DnsConfig {
        name_servers: vec![dns.addr()],
        hosts_file: false,
        ..DnsConfig::kubernetes("bookinfo", "cluster.local")
    };
    let mesh = mesh_tower::Mesh::builder().dns(dns_config).build().unwrap();
    let client: MeshClient<Empty<Bytes>> = mesh.client();
    let uri = format!("http://reviews:{}/reviews/0", v1.addr.port());
    assert_eq!(get(&client, &uri).await, "v1");
}
