//! `MeshTlsConnector` against a real rustls server that requires client
//! certificates, both sides with certificates from a CA made here: HTTP/1.1
//! and HTTP/2 (by ALPN) over mutual TLS, each side seeing the other's
//! SPIFFE id; a server of another identity, or from another root, and a
//! client from another root, are refused before any request is sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mesh_core::policy::{Protocol, UpstreamTls};
use mesh_core::route::StringMatch;
use mesh_tower::endpoint::{AddrConnector, TcpConnector};
use mesh_tower::tls::{IdentitySource, MeshTlsConnector, PeerIdentity, WorkloadIdentity};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use support::error_chain as chain_of;
use support::pki::{Ca, serve_tls};

mod support;

const RATINGS: &str = "spiffe://cluster.local/ns/default/sa/ratings";
const REVIEWS: &str = "spiffe://cluster.local/ns/default/sa/reviews";

/// A server on loopback that is `id` (issued by `ca`), takes only clients
/// with certificates `client_roots` signs, offers the protocols `alpn`,
/// and answers `hello CALLER` with the caller's SPIFFE id.
async fn server_with(ca: &Ca, id: &str, client_roots: &Ca, alpn: &[&[u8]]) -> SocketAddr {
    let (chain, key) = ca.issue(id);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(client_roots.0.der().clone()).unwrap();
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
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    serve_tls(config, |cert| {
        cert.map(|c| format!("{} {}", spiffe_id(c), serial(c)))
            .unwrap_or_default()
    })
    .await
}

async fn server(ca: &Ca, id: &str, client_roots: &Ca) -> SocketAddr {
    server_with(ca, id, client_roots, &[b"h2", b"http/1.1"]).await
}

/// The serial number of the certificate `der`, in hex.
fn serial(der: &CertificateDer<'_>) -> String {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    cert.raw_serial_as_string()
}

fn spiffe_id(der: &CertificateDer<'_>) -> String {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    san.value
        .general_names
        .iter()
        .find_map(|n| match n {
            GeneralName::URI(u) => Some((*u).to_owned()),
            _ => None,
        })
        .unwrap()
}

type Tls = MeshTlsConnector<TcpConnector>;

fn client(
    addr: SocketAddr,
    identity: &WorkloadIdentity,
    expect: &[&str],
) -> Client<AddrConnector<Tls>, Empty<Bytes>> {
    let expect = expect.iter().map(|s| (*s).into()).collect();
    client_matching(addr, identity, expect)
}

/// A client expecting a server identity one of `expect` matches.
fn client_matching(
    addr: SocketAddr,
    identity: &WorkloadIdentity,
    expect: Vec<StringMatch>,
) -> Client<AddrConnector<Tls>, Empty<Bytes>> {
    let tls = UpstreamTls {
        subject_alt_names: expect,
        ..UpstreamTls::default()
    };
    let source = IdentitySource::from(identity.clone());
    let connector =
        MeshTlsConnector::new(TcpConnector::default(), &source, &tls, Protocol::default()).unwrap();
    Client::builder(TokioExecutor::new()).build(AddrConnector::new(addr, connector))
}

#[tokio::test]
async fn mutual_tls_both_ways_with_each_side_seeing_the_others_identity() {
    let ca = Ca::new();
    let addr = server(&ca, RATINGS, &ca).await;
    let reviews = ca.identity(REVIEWS);
    let res = client(addr, &reviews, &[RATINGS])
        .get("http://ratings:9080/".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // ALPN chose HTTP/2.
    assert_eq!(res.version(), http::Version::HTTP_2);
    assert_eq!(
        res.extensions().get::<PeerIdentity>(),
        Some(&PeerIdentity(RATINGS.into()))
    );
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(
        body.starts_with(format!("hello {REVIEWS} ").as_bytes()),
        "{body:?}"
    );

    // HTTP/1.1 when the server offers only that.
    let http1 = server_with(&ca, RATINGS, &ca, &[b"http/1.1"]).await;
    let res = client(http1, &reviews, &[RATINGS])
        .get("http://ratings:9080/".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(res.version(), http::Version::HTTP_11);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(
        body.starts_with(format!("hello {REVIEWS} ").as_bytes()),
        "{body:?}"
    );
}

#[tokio::test]
async fn the_wrong_server_identity_or_root_is_refused_before_any_request() {
    let ca = Ca::new();
    let other = Ca::new();
    let reviews = ca.identity(REVIEWS);

    // The server is ratings; details was expected.
    let addr = server(&ca, RATINGS, &ca).await;
    let details = "spiffe://cluster.local/ns/default/sa/details";
    let e = client(addr, &reviews, &[details])
        .get("http://ratings:9080/".parse().unwrap())
        .await
        .unwrap_err();
    let e = chain_of(&e);
    assert!(
        e.contains(&format!(
            "the server is {RATINGS}, where {details} was expected"
        )),
        "{e}"
    );

    // A server whose certificate another root signs.
    let impostor = server(&other, RATINGS, &ca).await;
    let e = client(impostor, &reviews, &[RATINGS])
        .get("http://ratings:9080/".parse().unwrap())
        .await
        .unwrap_err();
    let e = chain_of(&e);
    assert!(e.contains("invalid peer certificate"), "{e}");

    // A client whose certificate another root signs (trusting the mesh's
    // root itself): the server refuses it.
    let (chain, key) = other.issue(REVIEWS);
    let roots = ca.pem();
    let stranger = WorkloadIdentity::from_pem(
        chain.as_bytes(),
        key.as_bytes(),
        roots.as_bytes(),
        SystemTime::now(),
    )
    .unwrap();
    let e = client(addr, &stranger, &[RATINGS])
        .get("http://ratings:9080/".parse().unwrap())
        .await
        .unwrap_err();
    let e = chain_of(&e);
    assert!(!e.contains("hello"), "{e}");
    assert!(e.contains("received fatal alert"), "{e}");
}

/// SAN matchers other than exact ones, as xDS sends them: checked against
/// the server's SPIFFE id, and named in the error when none matches.
#[tokio::test]
async fn server_identities_match_by_prefix_suffix_substring_and_pattern() {
    let ca = Ca::new();
    let reviews = ca.identity(REVIEWS);
    let addr = server(&ca, RATINGS, &ca).await;
    let get = |expect: Vec<StringMatch>| {
        let client = client_matching(addr, &reviews, expect);
        async move {
            client
                .get("http://ratings:9080/".parse().unwrap())
                .await
                .map(|res| res.status())
                .map_err(|e| chain_of(&e))
        }
    };
    let pattern = StringMatch::regex("spiffe://cluster\\.local/ns/[a-z]+/sa/ratings").unwrap();
    for accepted in [
        StringMatch::Prefix("spiffe://cluster.local/ns/default/".into()),
        StringMatch::Suffix("/sa/ratings".into()),
        StringMatch::Contains("/ns/default/".into()),
        pattern,
    ] {
        assert_eq!(get(vec![accepted]).await, Ok(http::StatusCode::OK));
    }
    let e = get(vec![
        StringMatch::Prefix("spiffe://cluster.local/ns/prod/".into()),
        StringMatch::from("spiffe://cluster.local/ns/default/sa/details"),
    ])
    .await
    .unwrap_err();
    assert!(
        e.contains(&format!(
            "the server is {RATINGS}, where prefix \"spiffe://cluster.local/ns/prod/\" or \
             spiffe://cluster.local/ns/default/sa/details was expected"
        )),
        "{e}"
    );
}

/// `MeshClient` with a workload identity dials a cluster whose policy asks
/// for the mesh's mutual TLS; without one, or with a policy naming another
/// identity, the request fails and is not sent.
#[tokio::test]
async fn mesh_client_dials_mutual_tls_where_the_cluster_asks_for_it() {
    use mesh_core::{Authority, ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
    use mesh_tower::MeshClient;
    use tower::ServiceExt;

    let ca = Ca::new();
    let addr = server(&ca, RATINGS, &ca).await;
    let target: Authority = "ratings:9080".parse().unwrap();
    let resolve = StaticResolve::default();
    resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
    let policy = |expect: &str| ClusterPolicy {
        tls: Some(UpstreamTls {
            subject_alt_names: vec![expect.into()],
            ..UpstreamTls::default()
        }),
        ..ClusterPolicy::default()
    };
    let get = |client: MeshClient<Empty<Bytes>>| async move {
        let req = http::Request::get("http://ratings:9080/")
            .body(Empty::new())
            .unwrap();
        match client.oneshot(req).await {
            Ok(res) => Ok(res.into_body().collect().await.unwrap().to_bytes()),
            Err(e) => Err(chain_of(&*e)),
        }
    };

    let client = MeshClient::builder(resolve.clone())
        .cluster_policy(target.clone(), policy(RATINGS))
        .identity(ca.identity(REVIEWS))
        .build();
    let body = get(client).await.unwrap();
    assert!(
        body.starts_with(format!("hello {REVIEWS} ").as_bytes()),
        "{body:?}"
    );

    // Another identity expected: refused in the handshake.
    let details = "spiffe://cluster.local/ns/default/sa/details";
    let client = MeshClient::builder(resolve.clone())
        .cluster_policy(target.clone(), policy(details))
        .identity(ca.identity(REVIEWS))
        .build();
    let e = get(client).await.unwrap_err();
    assert!(
        e.contains(&format!(
            "the server is {RATINGS}, where {details} was expected"
        )),
        "{e}"
    );

    // No identity: fails closed, as before.
    let client = MeshClient::builder(resolve)
        .cluster_policy(target, policy(RATINGS))
        .build();
    let e = get(client).await.unwrap_err();
    assert!(e.contains("TLS required"), "{e}");
}

/// The certificate rotates under a client: requests in flight across the
/// reload all succeed, a new connection presents the new certificate, and
/// files that do not check out leave the last good one in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_serves_new_connections_and_a_broken_one_is_not_taken() {
    use futures_util::future::join_all;
    use mesh_core::{Authority, ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
    use mesh_tower::MeshClient;
    use mesh_tower::tls::IdentityFiles;
    use tower::ServiceExt;

    let ca = Ca::new();
    let addr = server(&ca, RATINGS, &ca).await;
    let target: Authority = "ratings:9080".parse().unwrap();
    let resolve = StaticResolve::default();
    resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
    let dir = tempfile::tempdir().unwrap();
    let files = IdentityFiles::in_dir(dir.path());
    let issue = || {
        let (chain, key) = ca.issue(REVIEWS);
        std::fs::write(&files.certificate_chain, chain).unwrap();
        std::fs::write(&files.private_key, key).unwrap();
        std::fs::write(&files.roots, ca.pem()).unwrap();
    };
    issue();
    let source = IdentitySource::from_files(files.clone()).unwrap();
    let client = || -> MeshClient<Empty<Bytes>> {
        MeshClient::builder(resolve.clone())
            .cluster_policy(
                target.clone(),
                ClusterPolicy {
                    tls: Some(UpstreamTls {
                        subject_alt_names: vec![RATINGS.into()],
                        ..UpstreamTls::default()
                    }),
                    ..ClusterPolicy::default()
                },
            )
            .identity(source.clone())
            .build()
    };
    let serial_seen = |client: MeshClient<Empty<Bytes>>| async move {
        let req = http::Request::get("http://ratings:9080/")
            .body(Empty::new())
            .unwrap();
        let res = client.oneshot(req).await.map_err(|e| chain_of(&*e))?;
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        Ok::<_, String>(body.rsplit(' ').next().unwrap().to_owned())
    };
    let first = client();
    let old = serial_seen(first.clone()).await.unwrap();

    // 200 requests in flight while the certificate is re-issued and read.
    let in_flight = join_all((0..200).map(|_| serial_seen(first.clone())));
    let reload = async {
        issue();
        source.reload()
    };
    let (results, reloaded) = tokio::join!(in_flight, reload);
    assert!(reloaded.unwrap(), "a new certificate");
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    let new = serial_seen(client()).await.unwrap();
    assert_ne!(new, old, "a new connection presents the new certificate");

    // A broken file: the error names it, and the last good one stays.
    std::fs::write(&files.certificate_chain, "not a certificate").unwrap();
    let e = source.reload().unwrap_err();
    assert!(e.to_string().contains("cert-chain.pem"), "{e}");
    assert!(source.last_error().is_some());
    assert_eq!(serial_seen(client()).await.unwrap(), new);
}
