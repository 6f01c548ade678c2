//! `MeshClient` dialling TLS with files of a cluster's own (Istio's
//! DestinationRule `SIMPLE` and `MUTUAL`) to real rustls servers: the
//! chain checked against the rule's roots, the name against its
//! `subjectAltNames` or else its `sni`, the client certificate presented
//! under `MUTUAL`; and every setup that cannot be honoured failing the
//! cluster's requests with the reason, nothing sent.

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use mesh_core::policy::{TlsFiles, UpstreamTls};
use mesh_core::{Authority, ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
use mesh_tower::MeshClient;
use tower::ServiceExt;

use support::error_chain;
use support::pki::{Ca, tls_server};

mod support;

const HOST: &str = "ratings.example.com";
const CLIENT: &str = "spiffe://cluster.local/ns/default/sa/reviews";

/// A TLS server for `HOST` from `ca`, answering `hello CLIENT` to a
/// client certificate from `client_roots`.
async fn server(ca: &Ca, client_roots: Option<&Ca>) -> SocketAddr {
    tls_server(ca, HOST, client_roots.map(|roots| (roots, CLIENT))).await
}

/// Writes `ca`'s root and a client certificate for [`CLIENT`] into `dir`;
/// the files, as a `MUTUAL` rule names them.
fn write_files(ca: &Ca, dir: &Path) -> TlsFiles {
    let path = |name: &str| dir.join(name).display().to_string();
    let (chain, key) = ca.issue(CLIENT);
    std::fs::write(path("cert-chain.pem"), chain).unwrap();
    std::fs::write(path("key.pem"), key).unwrap();
    std::fs::write(path("root-cert.pem"), ca.pem()).unwrap();
    TlsFiles {
        client_certificate: Some(path("cert-chain.pem")),
        private_key: Some(path("key.pem")),
        ca_certificates: Some(path("root-cert.pem")),
    }
}

/// GET through a client whose cluster for `addr` dials `tls`: the body,
/// or the error's chain.
async fn get(addr: SocketAddr, tls: UpstreamTls) -> Result<String, String> {
    let policy = ClusterPolicy {
        tls: Some(tls),
        ..ClusterPolicy::default()
    };
    get_with(addr, policy).await
}

/// GET through a client whose cluster for `addr` has `policy`.
async fn get_with(addr: SocketAddr, policy: ClusterPolicy) -> Result<String, String> {
    let target: Authority = "ratings:443".parse().unwrap();
    let resolve = StaticResolve::default();
    resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
    let client: MeshClient<Empty<Bytes>> = MeshClient::builder(resolve)
        .cluster_policy(target, policy)
        .build();
    let req = http::Request::get("http://ratings:443/")
        .body(Empty::new())
        .unwrap();
    let res = client.oneshot(req).await.map_err(|e| error_chain(&*e))?;
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Ok(String::from_utf8(body.to_vec()).unwrap())
}

fn simple(files: &TlsFiles, sni: Option<&str>, sans: &[&str]) -> UpstreamTls {
    UpstreamTls {
        sni: sni.map(str::to_owned),
        subject_alt_names: sans.iter().map(|s| (*s).into()).collect(),
        files: Some(TlsFiles {
            client_certificate: None,
            private_key: None,
            ..files.clone()
        }),
    }
}

#[tokio::test]
async fn simple_checks_the_chain_and_the_name_by_sni_or_subject_alt_names() {
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let files = write_files(&ca, dir.path());
    let addr = server(&ca, None).await;

    let hello = Ok("hello anonymous".to_owned());
    assert_eq!(get(addr, simple(&files, Some(HOST), &[])).await, hello);
    assert_eq!(get(addr, simple(&files, None, &[HOST])).await, hello);

    let err = get(addr, simple(&files, Some("other.example.com"), &[]))
        .await
        .unwrap_err();
    assert!(err.contains("certificate not valid for name"), "{err}");
    let err = get(addr, simple(&files, None, &["other.example.com"]))
        .await
        .unwrap_err();
    assert!(
        err.contains("the server is ratings.example.com, where other.example.com was expected"),
        "{err}"
    );

    // Roots of another CA: the chain does not check out.
    let other = tempfile::tempdir().unwrap();
    let stranger = write_files(&Ca::new(), other.path());
    let err = get(addr, simple(&stranger, Some(HOST), &[]))
        .await
        .unwrap_err();
    assert!(err.contains("invalid peer certificate"), "{err}");
}

#[tokio::test]
async fn mutual_presents_the_rules_client_certificate() {
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let files = write_files(&ca, dir.path());
    let addr = server(&ca, Some(&ca)).await;
    let mutual = UpstreamTls {
        sni: Some(HOST.into()),
        files: Some(files.clone()),
        ..UpstreamTls::default()
    };
    assert_eq!(get(addr, mutual).await, Ok(format!("hello {CLIENT}")));
    // SIMPLE to a server that wants a client certificate: refused.
    assert!(get(addr, simple(&files, Some(HOST), &[])).await.is_err());
}

#[tokio::test]
async fn what_cannot_be_set_up_fails_the_request_with_the_reason() {
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let good = write_files(&ca, dir.path());
    let addr = server(&ca, None).await;
    let cluster = "cluster ratings:443: TLS required, and ";
    let fails = |why: String| {
        Err(format!(
            "{cluster}{why}; the request is not sent in plain text"
        ))
    };

    assert_eq!(
        get(addr, simple(&good, None, &[])).await,
        fails("neither sni nor subjectAltNames to check the server's certificate for".into())
    );

    let missing = dir.path().join("missing.pem").display().to_string();
    let unreadable = TlsFiles {
        ca_certificates: Some(missing.clone()),
        ..good.clone()
    };
    let err = get(addr, simple(&unreadable, Some(HOST), &[]))
        .await
        .unwrap_err();
    assert!(err.starts_with(&format!("{cluster}{missing}: ")), "{err}");

    let unpaired = UpstreamTls {
        sni: Some(HOST.into()),
        files: Some(TlsFiles {
            private_key: None,
            ..good.clone()
        }),
        ..UpstreamTls::default()
    };
    assert_eq!(
        get(addr, unpaired).await,
        fails("MUTUAL TLS names a clientCertificate but not its pair".into())
    );
}

/// A server that takes the connection and never answers the handshake:
/// the request fails once the cluster's connect timeout has passed.
#[tokio::test(start_paused = true)]
async fn a_handshake_never_answered_times_out() {
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let files = write_files(&ca, dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let policy = ClusterPolicy {
        tls: Some(simple(&files, Some(HOST), &[])),
        connection: mesh_core::policy::ConnectionPolicy {
            connect_timeout: std::time::Duration::from_secs(1),
            ..Default::default()
        },
        retry: mesh_core::policy::RetryPolicy {
            num_retries: 0,
            ..Default::default()
        },
        ..ClusterPolicy::default()
    };
    let err = get_with(addr, policy).await.unwrap_err();
    assert!(err.contains("TLS handshake timed out after 1s"), "{err}");
}
