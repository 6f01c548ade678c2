//! `https://` targets outside the mesh: ordinary TLS against the system's
//! roots with the host name checked, h2 or HTTP/1.1 by ALPN, and never a
//! byte in plain text. The system's roots here are the test CA's, named
//! by `SSL_CERT_FILE` as an operator would name them: the test runs itself
//! again in a process of its own with that set (the roots are read once
//! per process, from its environment).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use mesh_core::policy::{TlsFiles, TlsMatch, UpstreamTls};
use mesh_core::{Authority, ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
use mesh_tower::MeshClient;
use tower::ServiceExt;

use support::pki::{Ca, tls_server};
use support::{Server, error_chain};

mod support;

/// GET `uri`, every authority in `at` resolved to its address and given
/// `policy` when there is one: the body and HTTP version, or the error's
/// chain.
async fn get(
    uri: &str,
    at: &[(&str, SocketAddr)],
    policy: Option<ClusterPolicy>,
) -> Result<(String, http::Version), String> {
    let resolve = StaticResolve::default();
    let mut builder = None;
    for (authority, addr) in at {
        let target: Authority = authority.parse().unwrap();
        resolve.set(&target, EndpointSet::new([Endpoint::new(*addr)]));
        if let Some(policy) = &policy {
            let b = builder.unwrap_or_else(|| MeshClient::builder(resolve.clone()));
            builder = Some(b.cluster_policy(target, policy.clone()));
        }
    }
    let builder = builder.unwrap_or_else(|| MeshClient::builder(resolve));
    let client: MeshClient<Empty<Bytes>> = builder.build();
    let req = http::Request::get(uri).body(Empty::new()).unwrap();
    let res = client.oneshot(req).await.map_err(|e| error_chain(&*e))?;
    let version = res.version();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Ok((String::from_utf8(body.to_vec()).unwrap(), version))
}

/// Set in the process the test runs itself in.
const CHILD: &str = "MESH_TEST_SYSTEM_ROOTS";

#[test]
fn https_targets_are_dialled_with_the_systems_roots_and_their_host_name() {
    let Some(roots) = std::env::var_os(CHILD) else {
        let dir = tempfile::tempdir().unwrap();
        let roots = dir.path().join("ca-certificates.crt");
        let test = "https_targets_are_dialled_with_the_systems_roots_and_their_host_name";
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, &roots)
            .env("SSL_CERT_FILE", &roots)
            .env_remove("SSL_CERT_DIR")
            .output()
            .unwrap();
        let output = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{output}");
        assert!(output.contains("1 passed"), "{output}");
        return;
    };
    // The system's store: what SSL_CERT_FILE names, written before the
    // first TLS handshake reads it.
    let ca = Ca::new();
    std::fs::write(&roots, ca.pem()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let api = tls_server(&ca, "api.example.com", None).await;
        let hello = ("hello anonymous".to_owned(), http::Version::HTTP_2);

        // The host name checks out against the system's roots; h2 by ALPN.
        let ok = get(
            "https://api.example.com/",
            &[("api.example.com:443", api)],
            None,
        )
        .await;
        assert_eq!(ok, Ok(hello.clone()));
        // HTTP/1.1 where the cluster allows only that.
        let mut http1 = ClusterPolicy::default();
        http1.connection.protocol = mesh_core::policy::Protocol::Http1;
        let ok = get(
            "https://api.example.com/",
            &[("api.example.com:443", api)],
            Some(http1),
        )
        .await;
        assert_eq!(ok.map(|(_, v)| v), Ok(http::Version::HTTP_11));

        // Another name at the same address: the certificate is not its.
        let err = get(
            "https://www.example.com/",
            &[("www.example.com:443", api)],
            None,
        )
        .await
        .unwrap_err();
        assert!(err.contains("certificate not valid for name"), "{err}");

        // A server from a root the system does not trust.
        let stranger = tls_server(&Ca::new(), "api.example.com", None).await;
        let err = get(
            "https://api.example.com/",
            &[("api.example.com:443", stranger)],
            None,
        )
        .await
        .unwrap_err();
        // (It is named as the trusted root is, so its signature is what fails.)
        assert!(err.contains("invalid peer certificate"), "{err}");

        // A plain-text server at an https URL gets a ClientHello and no
        // request.
        let plain = Server::start("plain", Duration::ZERO).await;
        let err = get(
            "https://plain.example.com/",
            &[("plain.example.com:443", plain.addr)],
            None,
        )
        .await
        .unwrap_err();
        assert!(!err.is_empty());
        assert_eq!(plain.hits(), 0);

        // A DestinationRule's SIMPLE without caCertificates: the system's
        // roots, the name by its sni.
        let simple = ClusterPolicy {
            tls: Some(UpstreamTls {
                sni: Some("api.example.com".into()),
                files: Some(TlsFiles::default()),
                ..UpstreamTls::default()
            }),
            ..ClusterPolicy::default()
        };
        let ok = get("http://api:443/", &[("api:443", api)], Some(simple)).await;
        assert_eq!(ok, Ok(hello));

        // A cluster that reaches this endpoint in plain text (auto mTLS,
        // and the endpoint has no sidecar) refuses the https request.
        let auto = ClusterPolicy {
            tls_matches: vec![TlsMatch {
                name: "tlsMode-istio".into(),
                criteria: [("tlsMode".into(), "istio".into())].into(),
                tls: Some(UpstreamTls::default()),
            }],
            ..ClusterPolicy::default()
        };
        let err = get(
            "https://plain.example.com/",
            &[("plain.example.com:443", plain.addr)],
            Some(auto),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err,
            "https://plain.example.com: the request's cluster reaches its endpoints in plain \
             text (give the cluster TLS); the request is not sent in plain text"
        );
        assert_eq!(plain.hits(), 0);
    });
}
