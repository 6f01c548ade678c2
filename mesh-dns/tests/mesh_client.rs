//! `MeshClient` discovering its endpoints through `DnsResolve`: real hyper
//! servers and a real DNS server, all on 127.0.0.1.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use mesh_dns::{DnsConfig, DnsResolve};
use mesh_tower::MeshClient;
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

async fn get(client: &MeshClient<Empty<Bytes>>, uri: &str) -> String {
    let req = http::Request::get(uri).body(Empty::new()).unwrap();
    let res = client.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

    let resolve = DnsResolve::new(DnsConfig {
        name_servers: vec![dns.addr()],
        min_ttl: Duration::from_secs(1),
        failure_refresh: Duration::from_millis(500),
        query_timeout: Duration::from_millis(500),
        hosts_file: false,
        ..DnsConfig::default()
    })
    .unwrap();
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
