//! Bookinfo's authorization from Istio's own YAML, enforced by MeshServers
//! over real mutual TLS: productpage may call details and reviews, reviews
//! may call ratings, anyone may GET productpage, and nothing else passes.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use mesh_core::policy::UpstreamTls;
use mesh_core::security::MtlsMode;
use mesh_core::{Authority, ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
use mesh_istio::Workload;
use mesh_tower::{MeshClient, MeshServer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use support::pki::Ca;

mod support;

const POLICIES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../mesh-istio/tests/data/bookinfo/authorization.yaml"
);

const SERVICES: [&str; 4] = ["productpage", "details", "reviews", "ratings"];

fn spiffe(app: &str) -> String {
    format!("spiffe://cluster.local/ns/default/sa/bookinfo-{app}")
}

/// `app`'s server on loopback, with its identity and the policy Istio's
/// YAML gives it on port 9080.
async fn serve(ca: &Ca, app: &str) -> SocketAddr {
    let workload = Workload {
        labels: [("app".to_owned(), app.to_owned())].into(),
        ..Workload::default()
    };
    let (policy, warnings) = mesh_tower::istio::inbound_policy(POLICIES, &workload, 9080).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(policy.mtls, MtlsMode::Strict);
    let server = MeshServer::builder()
        .identity(ca.identity(&spiffe(app)))
        .policy(policy)
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hello = tower::service_fn(|_req: http::Request<mesh_tower::server::Body>| async {
        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from("hello"))))
    });
    tokio::spawn(async move { server.serve(listener, hello).await });
    addr
}

/// What `from` gets for `method /` at `to`: its status.
async fn call(ca: &Ca, from: &str, to: (&str, SocketAddr), method: http::Method) -> u16 {
    let target: Authority = format!("{}:9080", to.0).parse().unwrap();
    let resolve = StaticResolve::default();
    resolve.set(&target, EndpointSet::new([Endpoint::new(to.1)]));
    let client: MeshClient<Empty<Bytes>> = MeshClient::builder(resolve)
        .identity(ca.identity(&spiffe(from)))
        .cluster_policy(
            target.clone(),
            ClusterPolicy {
                tls: Some(UpstreamTls {
                    subject_alt_names: vec![spiffe(to.0).into()],
                    ..UpstreamTls::default()
                }),
                ..ClusterPolicy::default()
            },
        )
        .build();
    let req = http::Request::builder()
        .method(method)
        .uri(format!("http://{target}/"))
        .body(Empty::new())
        .unwrap();
    let res = client.oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let want: &[u8] = if status == 200 {
        b"hello"
    } else {
        b"RBAC: access denied"
    };
    assert_eq!(body, want);
    status
}

#[tokio::test]
async fn bookinfo_callers_reach_only_what_its_policies_allow() {
    let ca = Ca::new();
    let mut servers = Vec::new();
    for app in SERVICES {
        servers.push((app, serve(&ca, app).await));
    }
    let allowed = [
        ("productpage", "details"),
        ("productpage", "reviews"),
        ("reviews", "ratings"),
    ];
    for from in SERVICES {
        for &to in &servers {
            let open = to.0 == "productpage" || allowed.contains(&(from, to.0));
            let want = if open { 200 } else { 403 };
            let got = call(&ca, from, to, http::Method::GET).await;
            assert_eq!(got, want, "{from} -> {}", to.0);
        }
    }
    // Only GET, even where the caller is allowed.
    let details = servers[1];
    assert_eq!(
        call(&ca, "productpage", details, http::Method::POST).await,
        403
    );
}
