//! hello-mesh: a plain hyper client and a tonic client, each wrapped by
//! `MeshClient` and discovering its endpoints through DNS, as an application
//! in a Kubernetes pod would through kube-dns.
//!
//! Then it routes `reviews` by an Istio VirtualService and DestinationRule:
//! `end-user: jason` to v2, everyone else split 75/25 between v1 and v2.
//!
//! It starts its own small world on loopback first — two `reviews` HTTP
//! servers, one `ratings` gRPC server, and a DNS server publishing them as
//! kube-dns does (A records per pod, SRV records per named port) — so it runs
//! anywhere with `cargo run -p examples --bin hello-mesh`.

#![allow(clippy::print_stdout)]

use bytes::Bytes;
use examples::{health_server, hello_server};
use http_body_util::{BodyExt, Empty};
use mesh_core::{Endpoint, EndpointSet, StaticResolve};
use mesh_dns::{DnsConfig, DnsResolve, LocalDns};
use mesh_tower::MeshClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceExt;

#[tokio::main]
async fn main() -> Result<(), mesh_tower::BoxError> {
    // The world: servers on ephemeral ports, published in DNS.
    let dns = LocalDns::start("default.svc.cluster.local").await?;
    let (v1, v2) = (
        hello_server("reviews-v1").await?,
        hello_server("reviews-v2").await?,
    );
    let ratings = health_server("ratings").await?;
    for (pod, addr) in [
        ("reviews-v1", v1),
        ("reviews-v2", v2),
        ("ratings-0", ratings),
    ] {
        dns.set_addresses(pod, 5, &[addr.ip()]).await?;
    }
    dns.set_srv(
        "_http._tcp.reviews",
        5,
        &[
            (0, 1, v1.port(), "reviews-v1"),
            (0, 1, v2.port(), "reviews-v2"),
        ],
    )
    .await?;
    dns.set_srv(
        "_grpc._tcp.ratings",
        5,
        &[(0, 1, ratings.port(), "ratings-0")],
    )
    .await?;

    // The application: DNS discovery with kube-dns search domains.
    let resolve = DnsResolve::new(DnsConfig {
        name_servers: vec![dns.addr()],
        ..DnsConfig::kubernetes("default", "cluster.local")
    })?;

    // 1. A hyper client: requests are addressed by service name; the mesh
    //    resolves, balances, retries and ejects failing endpoints.
    let http: MeshClient<Empty<Bytes>> = MeshClient::builder(resolve.clone()).build();
    for _ in 0..4 {
        let req = http::Request::get("http://_http._tcp.reviews/reviews/0").body(Empty::new())?;
        let res = http.clone().oneshot(req).await?;
        let body = res.into_body().collect().await?.to_bytes();
        println!("reviews: {}", String::from_utf8_lossy(&body));
    }

    // 2. A tonic generated client over the same stack.
    let grpc = MeshClient::builder(resolve).build();
    let mut health = HealthClient::new(grpc.channel("_grpc._tcp.ratings:9090".parse()?));
    let reply = health
        .check(HealthCheckRequest {
            service: "ratings".into(),
        })
        .await?;
    println!("ratings: {:?}", reply.into_inner().status());

    // 3. Istio's own YAML as the routing configuration. Subsets select
    //    endpoints by label, so here the pods are registered with theirs.
    let labelled = StaticResolve::default();
    labelled.set(
        &"reviews.default.svc.cluster.local:9080".parse()?,
        EndpointSet::new([(v1, "v1"), (v2, "v2")].map(|(addr, version)| {
            let mut e = Endpoint::new(addr);
            e.labels.insert("version".into(), version.into());
            e
        })),
    );
    let (resources, warnings) = mesh_istio::parse("reviews.yaml", REVIEWS_YAML)?;
    for w in warnings {
        println!("warning: {w}");
    }
    let routed: MeshClient<Empty<Bytes>> = MeshClient::builder(labelled)
        .config(resources.to_mesh_config()?)
        .build();
    let mut served = std::collections::BTreeMap::<String, usize>::new();
    for user in ["jason", "bob"] {
        for _ in 0..100 {
            let req = http::Request::get("http://reviews:9080/reviews/0")
                .header("end-user", user)
                .body(Empty::new())?;
            let body = routed
                .clone()
                .oneshot(req)
                .await?
                .into_body()
                .collect()
                .await?;
            let server = String::from_utf8_lossy(&body.to_bytes()).into_owned();
            *served.entry(format!("{user} -> {server}")).or_default() += 1;
        }
    }
    for (route, n) in served {
        println!("{route}: {n} of 100");
    }
    Ok(())
}

const REVIEWS_YAML: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 75}
    - {destination: {host: reviews, subset: v2}, weight: 25}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"#;
