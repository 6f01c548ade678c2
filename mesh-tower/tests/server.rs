//! `MeshServer` with real rustls on both sides, certificates from a CA
//! made here: `MeshClient` calling it over mutual TLS with HTTP/1.1,
//! HTTP/2 and tonic gRPC, each side seeing the other's identity; the
//! three PeerAuthentication modes; authorization from code; the edge's
//! limits; and a graceful drain.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;
use mesh_core::policy::{ConnectionPolicy, Protocol, UpstreamTls};
use mesh_core::route::StringMatch;
use mesh_core::security::{
    MtlsMode, Permission, Principal, Rbac, RbacAction, RbacPolicy, ValueMatch,
};
use mesh_core::{Authority, ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
use mesh_tower::server::{ConnectInfo, MeshServer, MeshServerBuilder, ServerError};
use mesh_tower::tls::{ClientIdentity, PeerIdentity, WorkloadIdentity};
use mesh_tower::{MeshClient, ResponseBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use support::error_chain;
use support::pki::Ca;

mod support;

const RATINGS: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-ratings";
const REVIEWS: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";
const PRODUCTPAGE: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";

/// Answers `hello CALLER from ratings over VERSION`, the caller being its
/// SPIFFE id or `anonymous`.
async fn hello<B>(req: http::Request<B>) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let caller = req
        .extensions()
        .get::<ClientIdentity>()
        .map_or("anonymous".into(), |c| c.0.to_string());
    assert!(req.extensions().get::<ConnectInfo>().is_some());
    let body = format!("hello {caller} from ratings over {:?}", req.version());
    Ok(http::Response::new(Full::new(Bytes::from(body))))
}

/// Serves [`hello`] with `builder` on loopback.
async fn start(builder: MeshServerBuilder) -> (SocketAddr, MeshServer) {
    let server = builder.build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = server.clone();
    tokio::spawn(async move {
        serving.serve(listener, tower::service_fn(hello)).await;
    });
    (addr, server)
}

fn strict(ca: &Ca) -> MeshServerBuilder {
    MeshServer::builder().identity(ca.identity(RATINGS))
}

/// A client sending `ratings:9080` to `addr`; over the mesh's mutual TLS
/// as `identity`, expecting `expect`, when there is one.
fn client<B>(addr: SocketAddr, tls: Option<(WorkloadIdentity, &str)>) -> MeshClient<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<mesh_tower::BoxError>,
{
    support::pki::client("ratings:9080", addr, tls)
}

/// GET `path` through `client`: the status, body and the server's
/// identity, or the error's chain.
async fn get(
    client: &MeshClient<Empty<Bytes>>,
    path: &str,
) -> Result<(u16, String, Option<PeerIdentity>), String> {
    let req = http::Request::get(format!("http://ratings:9080{path}"))
        .body(Empty::new())
        .unwrap();
    let res = client
        .clone()
        .oneshot(req)
        .await
        .map_err(|e| error_chain(&*e))?;
    let status = res.status().as_u16();
    let peer = res.extensions().get::<PeerIdentity>().cloned();
    let body = body_of(res).await;
    Ok((status, body, peer))
}

async fn body_of(res: http::Response<ResponseBody>) -> String {
    let body = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// A rustls client of its own, for what `MeshClient` does not do: only
/// HTTP/1.1, or no certificate at all.
async fn raw_tls(
    addr: SocketAddr,
    ca: &Ca,
    identity: Option<&WorkloadIdentity>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.0.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyName(verifier)));
    let mut config = match identity {
        Some(id) => builder.with_client_cert_resolver(Arc::new(
            rustls::sign::SingleCertAndKey::from(id.certified_key().clone()),
        )),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// The mesh's roots checked, the name not: a mesh certificate names a
/// SPIFFE id, not a host.
#[derive(Debug)]
struct AnyName(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// An HTTP/1.1 GET over `io`: the body, or the error.
async fn http1_get<IO>(io: IO) -> Result<String, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| error_chain(&e))?;
    tokio::spawn(conn);
    let req = http::Request::get("/")
        .header("host", "ratings:9080")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = send.send_request(req).await.map_err(|e| error_chain(&e))?;
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Ok(String::from_utf8(body.to_vec()).unwrap())
}

/// Waits (boundedly) for a counter the server bumps after the client has
/// already seen the refusal.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} never happened");
}

#[tokio::test]
async fn mutual_tls_over_http2_and_http1_with_each_side_seeing_the_other() {
    let ca = Ca::new();
    let (addr, server) = start(strict(&ca)).await;

    let reviews = client(addr, Some((ca.identity(REVIEWS), RATINGS)));
    let (status, body, peer) = get(&reviews, "/").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, format!("hello {REVIEWS} from ratings over HTTP/2.0"));
    assert_eq!(peer, Some(PeerIdentity(RATINGS.into())));

    // HTTP/1.1 where the cluster says so: ALPN offers only that.
    let target: Authority = "ratings:9080".parse().unwrap();
    let resolve = StaticResolve::default();
    resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
    let policy = ClusterPolicy {
        connection: ConnectionPolicy {
            protocol: Protocol::Http1,
            ..ConnectionPolicy::default()
        },
        tls: Some(UpstreamTls::default()),
        ..ClusterPolicy::default()
    };
    let http1 = MeshClient::builder(resolve)
        .identity(ca.identity(REVIEWS))
        .cluster_policy(target, policy)
        .build();
    let (_, body, _) = get(&http1, "/").await.unwrap();
    assert_eq!(body, format!("hello {REVIEWS} from ratings over HTTP/1.1"));

    // And from a client of its own.
    let tls = raw_tls(addr, &ca, Some(&ca.identity(REVIEWS)))
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let body = http1_get(tls).await.unwrap();
    assert_eq!(body, format!("hello {REVIEWS} from ratings over HTTP/1.1"));
    assert_eq!(server.stats().mtls_connections(), 3);
}

#[tokio::test]
async fn a_tonic_service_behind_mutual_tls_sees_its_caller() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

    let ca = Ca::new();
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("ratings", tonic_health::ServingStatus::Serving)
        .await;
    let callers = Arc::new(Mutex::new(Vec::new()));
    let seen = callers.clone();
    let service = tower::service_fn(move |req: http::Request<mesh_tower::server::Body>| {
        let caller = req.extensions().get::<ClientIdentity>().cloned();
        seen.lock().unwrap().push(caller.map(|c| c.0.to_string()));
        health.clone().oneshot(req)
    });
    let server = strict(&ca).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { server.serve(listener, service).await });

    let client = client::<tonic::body::Body>(addr, Some((ca.identity(REVIEWS), RATINGS)));
    let mut health = HealthClient::new(client.channel("ratings:9080".parse().unwrap()));
    let check = HealthCheckRequest {
        service: "ratings".into(),
    };
    let status = health.check(check).await.unwrap().into_inner().status();
    assert_eq!(status, ServingStatus::Serving);
    assert_eq!(*callers.lock().unwrap(), [Some(REVIEWS.to_owned())]);
}

#[tokio::test]
async fn strict_refuses_plain_text_strangers_and_clients_without_certificates() {
    let ca = Ca::new();
    let other = Ca::new();
    let (addr, server) = start(strict(&ca)).await;

    // Plain text: closed unanswered.
    let e = get(&client(addr, None), "/").await.unwrap_err();
    assert!(!e.contains("hello"), "{e}");
    eventually("a plain-text refusal", || {
        server.stats().plaintext_refused() == 1
    })
    .await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nhost: ratings\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer).await;
    assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));

    // A certificate another root signs, from a client that trusts the mesh.
    let (chain, key) = other.issue(REVIEWS);
    let stranger = WorkloadIdentity::from_pem(
        chain.as_bytes(),
        key.as_bytes(),
        ca.pem().as_bytes(),
        std::time::SystemTime::now(),
    )
    .unwrap();
    let e = get(&client(addr, Some((stranger, RATINGS))), "/")
        .await
        .unwrap_err();
    assert!(e.contains("received fatal alert"), "{e}");
    eventually("a refused handshake", || {
        server.stats().handshake_failures() == 1
    })
    .await;

    // No client certificate at all.
    let refused = match raw_tls(addr, &ca, None).await {
        Ok(tls) => http1_get(tls).await.unwrap_err(),
        Err(e) => e.to_string(),
    };
    assert!(!refused.contains("hello"), "{refused}");
    eventually("a second refused handshake", || {
        server.stats().handshake_failures() == 2
    })
    .await;
    assert_eq!(server.stats().mtls_connections(), 0);
}

#[tokio::test]
async fn a_client_refuses_a_mesh_server_of_another_identity() {
    let ca = Ca::new();
    let (addr, _server) = start(strict(&ca)).await;
    let details = "spiffe://cluster.local/ns/default/sa/bookinfo-details";
    let e = get(&client(addr, Some((ca.identity(REVIEWS), details))), "/")
        .await
        .unwrap_err();
    assert!(
        e.contains(&format!(
            "the server is {RATINGS}, where {details} was expected"
        )),
        "{e}"
    );
}

#[tokio::test]
async fn permissive_takes_mutual_tls_and_plain_text_on_one_port() {
    let ca = Ca::new();
    let (addr, server) = start(strict(&ca).mtls(MtlsMode::Permissive)).await;
    let (_, body, peer) = get(&client(addr, None), "/").await.unwrap();
    assert_eq!(body, "hello anonymous from ratings over HTTP/1.1");
    assert_eq!(peer, None);
    let (_, body, _) = get(&client(addr, Some((ca.identity(REVIEWS), RATINGS))), "/")
        .await
        .unwrap();
    assert_eq!(body, format!("hello {REVIEWS} from ratings over HTTP/2.0"));
    assert_eq!(server.stats().connections(), 2);
    assert_eq!(server.stats().mtls_connections(), 1);
}

#[tokio::test]
async fn disable_is_plain_text_only_and_mutual_tls_needs_an_identity() {
    let ca = Ca::new();
    let (addr, _server) = start(MeshServer::builder().mtls(MtlsMode::Disable)).await;
    let (_, body, _) = get(&client(addr, None), "/").await.unwrap();
    assert_eq!(body, "hello anonymous from ratings over HTTP/1.1");
    let e = get(&client(addr, Some((ca.identity(REVIEWS), RATINGS))), "/")
        .await
        .unwrap_err();
    assert!(!e.contains("hello"), "{e}");

    for mode in [MtlsMode::Strict, MtlsMode::Permissive] {
        let e = MeshServer::builder().mtls(mode).build().unwrap_err();
        assert!(matches!(e, ServerError::NoIdentity(m) if m == mode), "{e}");
        assert!(
            e.to_string().contains("needs the workload's identity"),
            "{e}"
        );
    }
}

/// Only reviews may call ratings, and nobody `/admin`.
fn ratings_policy() -> Vec<Rbac> {
    let admin = RbacPolicy {
        permissions: vec![Permission::UrlPath(ValueMatch {
            kind: StringMatch::Prefix("/admin".into()),
            ignore_case: false,
        })],
        principals: vec![Principal::Any],
    };
    let from_reviews = RbacPolicy {
        permissions: vec![Permission::Any],
        principals: vec![Principal::Authenticated(Some(ValueMatch::exact(REVIEWS)))],
    };
    vec![
        Rbac {
            action: RbacAction::Deny,
            policies: vec![("default-no-admin-0".into(), admin)],
        },
        Rbac {
            action: RbacAction::Allow,
            policies: vec![("default-ratings-viewer-0".into(), from_reviews)],
        },
    ]
}

#[tokio::test]
async fn authorization_lets_through_only_what_the_policy_allows() {
    let ca = Ca::new();
    let (addr, server) = start(strict(&ca).rbac(ratings_policy())).await;
    let reviews = client(addr, Some((ca.identity(REVIEWS), RATINGS)));
    let productpage = client(addr, Some((ca.identity(PRODUCTPAGE), RATINGS)));

    let (status, body, _) = get(&reviews, "/ratings/0").await.unwrap();
    assert_eq!(
        (status, &*body),
        (200, &*format!("hello {REVIEWS} from ratings over HTTP/2.0"))
    );
    for (who, path) in [
        (&productpage, "/ratings/0"),
        (&reviews, "/admin"),
        (&reviews, "//admin/"),
    ] {
        let (status, body, _) = get(who, path).await.unwrap();
        assert_eq!((status, &*body), (403, "RBAC: access denied"), "{path}");
    }

    // A policy set while connections are open applies to their next request.
    server.policy().set(mesh_core::security::InboundPolicy {
        mtls: MtlsMode::Strict,
        rbac: Vec::new(),
    });
    let (status, _, _) = get(&productpage, "/ratings/0").await.unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_denied_grpc_call_is_permission_denied() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let ca = Ca::new();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let server = strict(&ca).rbac(ratings_policy()).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { server.serve(listener, health).await });
    let client = client::<tonic::body::Body>(addr, Some((ca.identity(PRODUCTPAGE), RATINGS)));
    let mut health = HealthClient::new(client.channel("ratings:9080".parse().unwrap()));
    let status = health
        .check(HealthCheckRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(status.message(), "RBAC: access denied");
}

/// Sends `head` on a plain-text connection and reads the answer's status
/// line.
async fn status_line(addr: SocketAddr, head: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(head).await.unwrap();
    let mut answer = vec![0; 4096];
    let n = tcp.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn bad_request_heads_get_400_and_431() {
    let builder = MeshServer::builder()
        .mtls(MtlsMode::Disable)
        .max_header_bytes(16 * 1024);
    let (addr, _server) = start(builder).await;
    let line = status_line(addr, b"GET / HTTP/1.1\r\nhost ratings\r\n\r\n").await;
    assert_eq!(line, "HTTP/1.1 400 Bad Request");
    let line = status_line(addr, b"GET /a%zz HTTP/1.1\r\nhost: ratings\r\n\r\n").await;
    assert_eq!(line, "HTTP/1.1 400 Bad Request");
    let big = format!(
        "GET / HTTP/1.1\r\nhost: ratings\r\nx-big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let line = status_line(addr, big.as_bytes()).await;
    assert_eq!(line, "HTTP/1.1 431 Request Header Fields Too Large");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_finishes_its_head_is_cut_off() {
    let ca = Ca::new();
    let builder = strict(&ca)
        .mtls(MtlsMode::Permissive)
        .header_read_timeout(Duration::from_secs(10));
    let (addr, server) = start(builder).await;
    // Plain text, half a head.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nhost: rat").await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), tcp.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the connection is closed");
    // TLS, half a handshake: a record header with no record.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(&[0x16, 0x03, 0x01, 0x01, 0x00])
        .await
        .unwrap();
    let read = tokio::time::timeout(Duration::from_secs(60), tcp.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the connection is closed");
    assert_eq!(server.stats().handshake_failures(), 1);
}

#[tokio::test]
async fn shutdown_drains_requests_in_flight_and_takes_no_new_connection() {
    let (release, released) = tokio::sync::watch::channel(false);
    let (entered_tx, mut entered) = tokio::sync::mpsc::channel(1);
    let slow = tower::service_fn(move |_req: http::Request<mesh_tower::server::Body>| {
        let mut released = released.clone();
        let entered = entered_tx.clone();
        async move {
            let _ = entered.send(()).await;
            let _ = released.wait_for(|r| *r).await;
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from("done"))))
        }
    });
    let server = MeshServer::builder()
        .mtls(MtlsMode::Disable)
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        server
            .serve_with_shutdown(listener, slow, async {
                let _ = stopped.await;
            })
            .await;
    });
    let client = client::<Empty<Bytes>>(addr, None);
    let in_flight = tokio::spawn(async move { get(&client, "/").await });
    entered.recv().await.unwrap();
    stop.send(()).unwrap();
    // The listener is closed while the request is still being answered.
    let mut refused = false;
    for _ in 0..500 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "no new connection after shutdown");
    release.send(true).unwrap();
    let (status, body, _) = in_flight.await.unwrap().unwrap();
    assert_eq!((status, &*body), (200, "done"));
    serving.await.unwrap();
}

/// Both sides' certificates re-issued and read while 1,000 requests are
/// in flight over mutual TLS: none fails, and a new connection afterwards
/// is served with the new certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotated_under_1000_requests_in_flight_drop_none() {
    use mesh_tower::tls::{IdentityFiles, IdentitySource};

    let ca = Ca::new();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let [server_files, client_files] = [0, 1].map(|i| IdentityFiles::in_dir(dirs[i].path()));
    let issue = |files: &IdentityFiles, id: &str| {
        let (chain, key) = ca.issue(id);
        std::fs::write(&files.certificate_chain, chain).unwrap();
        std::fs::write(&files.private_key, key).unwrap();
        std::fs::write(&files.roots, ca.pem()).unwrap();
    };
    issue(&server_files, RATINGS);
    issue(&client_files, REVIEWS);
    let server_source = IdentitySource::from_files(server_files.clone()).unwrap();
    let client_source = IdentitySource::from_files(client_files.clone()).unwrap();
    // hello, held until released once the first 100 requests are in.
    let arrived = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (release, released) = tokio::sync::watch::channel(false);
    let held = {
        let arrived = arrived.clone();
        tower::service_fn(move |req: http::Request<mesh_tower::server::Body>| {
            let arrived = arrived.clone();
            let mut released = released.clone();
            async move {
                arrived.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = released.wait_for(|r| *r).await;
                hello(req).await
            }
        })
    };
    let server = MeshServer::builder()
        .identity(server_source.clone())
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { server.serve(listener, held).await });
    release.send_replace(true);
    let presented = || async {
        let tls = raw_tls(addr, &ca, Some(&ca.identity(PRODUCTPAGE)))
            .await
            .unwrap();
        tls.get_ref().1.peer_certificates().unwrap()[0].clone()
    };
    let old = presented().await;

    let target: Authority = "ratings:9080".parse().unwrap();
    let resolve = StaticResolve::default();
    resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
    let make_client = || -> MeshClient<Empty<Bytes>> {
        MeshClient::builder(resolve.clone())
            .identity(client_source.clone())
            .cluster_policy(
                target.clone(),
                ClusterPolicy {
                    connection: ConnectionPolicy {
                        protocol: Protocol::Http2,
                        ..ConnectionPolicy::default()
                    },
                    tls: Some(UpstreamTls {
                        subject_alt_names: vec![RATINGS.into()],
                        ..UpstreamTls::default()
                    }),
                    ..ClusterPolicy::default()
                },
            )
            .build()
    };
    let client = make_client();
    assert_eq!(get(&client, "/").await.unwrap().0, 200);

    release.send_replace(false);
    arrived.store(0, std::sync::atomic::Ordering::Relaxed);
    let in_flight = futures_util::future::join_all((0..1000).map(|_| get(&client, "/")));
    let rotate = async {
        eventually("100 requests in", || {
            arrived.load(std::sync::atomic::Ordering::Relaxed) >= 100
        })
        .await;
        issue(&server_files, RATINGS);
        issue(&client_files, REVIEWS);
        let reloaded = (server_source.reload(), client_source.reload());
        release.send_replace(true);
        reloaded
    };
    let (results, (server_reloaded, client_reloaded)) = tokio::join!(in_flight, rotate);
    assert!(server_reloaded.unwrap() && client_reloaded.unwrap());
    let failed: Vec<_> = results
        .iter()
        .filter(|r| !matches!(r, Ok((200, _, _))))
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        failed.first()
    );

    assert_ne!(
        presented().await,
        old,
        "a new connection gets the new certificate"
    );
    assert_eq!(
        get(&make_client(), "/").await.unwrap(),
        (
            200,
            format!("hello {REVIEWS} from ratings over HTTP/2.0"),
            Some(PeerIdentity(RATINGS.into()))
        )
    );
}
