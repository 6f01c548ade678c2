//! `MeshClient` dialling TLS with files of a cluster's own (Istio's
//! DestinationRule `SIMPLE` and `MUTUAL`) to real rustls servers: the
//! chain checked against the rule's roots, the name against its
//! `subjectAltNames` or else its `sni`, the client certificate presented
//! under `MUTUAL`; and every setup that cannot be honoured failing the
//! cluster's requests with the reason, nothing sent.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_core::policy::{TlsFiles, UpstreamTls};
use mesh_core::{Authority, ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
use mesh_tower::MeshClient;
use rcgen::SanType;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tower::ServiceExt;

use support::error_chain;
use support::pki::Ca;

mod support;

const HOST: &str = "ratings.example.com";
const CLIENT: &str = "spiffe://cluster.local/ns/default/sa/reviews";

/// A TLS server presenting a certificate for `HOST` from `ca`, requiring
/// a client certificate from `client_roots` when given; it answers
/// `hello` and the client certificate's SPIFFE id, if any.
async fn server(ca: &Ca, client_roots: Option<&Ca>) -> SocketAddr {
    let (chain, key) = ca.leaf(&[SanType::DnsName(HOST.try_into().unwrap())]);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_roots {
        Some(roots_ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(roots_ca.0.der().clone()).unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(chain, key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let caller = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .map_or("anonymous", |_| CLIENT)
                    .to_owned();
                let svc = hyper::service::service_fn(move |_req| {
                    let body = format!("hello {caller}");
                    async move {
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
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
        subject_alt_names: sans.iter().map(|s| (*s).to_owned()).collect(),
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

    let no_roots = TlsFiles {
        ca_certificates: None,
        ..good.clone()
    };
    let tls = simple(&no_roots, Some(HOST), &[]);
    assert_eq!(
        get(addr, tls).await,
        fails(
            "no caCertificates to check the server's certificate against (the system's roots \
             are not used)"
                .into()
        )
    );
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
