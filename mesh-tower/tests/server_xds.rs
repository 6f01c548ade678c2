//! `MeshServer` following a real xDS server (gRFC A36): not serving until
//! the listener for its address has come, then taking the mutual TLS mode
//! and the RBAC of that listener as istiod writes it
//! (`translate::server_listener`), following an edit, and draining when
//! the control plane drops the listener; and the reasons it gives when it
//! cannot serve by what it was sent.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use mesh_core::security::{
    MtlsMode, Permission, Principal, Rbac, RbacAction, RbacPolicy, ValueMatch,
};
use mesh_tower::MeshClient;
use mesh_tower::server::{MeshServer, MeshServerBuilder, ServingMode};
use mesh_xds::Bootstrap;
use mesh_xds::ads::{AdsClient, AdsHandle, Backoff, ResourceType};
use mesh_xds::server::ResourceCache;
use mesh_xds::translate;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tower::ServiceExt;

use support::error_chain;
use support::pki::Ca;

mod support;

const RATINGS: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-ratings";
const REVIEWS: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";
const PRODUCTPAGE: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";
const WAIT: Duration = Duration::from_secs(10);

/// An ADS server on loopback serving `cache`, and a client of it.
async fn control_plane(cache: &ResourceCache) -> AdsHandle {
    let addr = support::serve_ads(cache).await;
    let bootstrap = Bootstrap::insecure(
        &addr.to_string(),
        "sidecar~127.0.0.1~ratings-v1.default~default.svc.cluster.local",
    )
    .unwrap();
    AdsClient::new(&bootstrap)
        .with_backoff(Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
        })
        .spawn()
        .unwrap()
}

/// Serves [`hello`] with `builder` on loopback; the server, its address
/// and the name of its listener.
async fn start(builder: MeshServerBuilder) -> (MeshServer, SocketAddr, String) {
    let server = builder.build().unwrap();
    let addr = support::serve_hello(&server).await;
    let name = format!("{}{addr}", translate::SERVER_LISTENER_PREFIX);
    (server, addr, name)
}

/// Waits until the server's mode is one `ok` takes; that mode.
async fn mode(server: &MeshServer, ok: impl Fn(&ServingMode) -> bool) -> ServingMode {
    let mut modes = server.serving_mode();
    let found = tokio::time::timeout(WAIT, async {
        modes.wait_for(|m| ok(m)).await.unwrap().clone()
    })
    .await;
    found.unwrap_or_else(|_| panic!("still {:?}", *server.serving_mode().borrow()))
}

fn not_serving(m: &ServingMode) -> Option<&str> {
    match m {
        ServingMode::NotServing(reason) => Some(reason),
        ServingMode::Serving => None,
    }
}

/// Puts the listener `name` on `addr` with `rbac` in `cache`.
fn set_listener(cache: &ResourceCache, name: &str, addr: SocketAddr, rbac: &[Rbac], mtls: bool) {
    let mode = if mtls {
        mesh_core::security::MtlsMode::Strict
    } else {
        mesh_core::security::MtlsMode::Disable
    };
    let listener = translate::server_listener(name, addr, rbac, mode).unwrap();
    cache.set(
        ResourceType::Listener,
        vec![translate::entry(name, &listener)],
    );
}

/// Only reviews may call.
fn from_reviews() -> Vec<Rbac> {
    let policy = RbacPolicy {
        permissions: vec![Permission::Any],
        principals: vec![Principal::Authenticated(Some(ValueMatch::exact(REVIEWS)))],
    };
    vec![Rbac {
        action: RbacAction::Allow,
        policies: vec![("default-ratings-viewer-0".into(), policy)],
    }]
}

async fn get(client: &MeshClient<Empty<Bytes>>) -> Result<(u16, String), String> {
    let req = http::Request::get("http://ratings:9080/ratings/0")
        .body(Empty::new())
        .unwrap();
    let res = client
        .clone()
        .oneshot(req)
        .await
        .map_err(|e| error_chain(&*e))?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Ok((status, String::from_utf8(body.to_vec()).unwrap()))
}

/// Whether the server closes a connection to `addr` without a byte.
async fn closed_at_once(addr: SocketAddr) -> bool {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 1];
    matches!(
        tokio::time::timeout(WAIT, stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn a_server_serves_by_its_listener_from_the_control_plane() {
    let ca = Ca::new();
    let cache = ResourceCache::new();
    let ads = control_plane(&cache).await;
    let builder = MeshServer::builder()
        .identity(ca.identity(RATINGS))
        .xds(ads);
    let (server, addr, name) = start(builder).await;

    // Nothing from the control plane yet: not serving.
    let waiting = mode(&server, |m| not_serving(m).is_some()).await;
    assert!(
        not_serving(&waiting).unwrap().starts_with("waiting for"),
        "{waiting:?}"
    );
    assert!(closed_at_once(addr).await);
    assert_eq!(server.stats().not_serving_refused(), 1);

    // STRICT, and only reviews may call.
    set_listener(&cache, &name, addr, &from_reviews(), true);
    mode(&server, |m| *m == ServingMode::Serving).await;
    assert_eq!(server.policy().get().mtls, MtlsMode::Strict);
    let reviews = support::pki::client("ratings:9080", addr, Some((ca.identity(REVIEWS), RATINGS)));
    let productpage = support::pki::client(
        "ratings:9080",
        addr,
        Some((ca.identity(PRODUCTPAGE), RATINGS)),
    );
    let plain = support::pki::client("ratings:9080", addr, None);
    assert_eq!(get(&reviews).await, Ok((200, format!("hello {REVIEWS}"))));
    assert_eq!(
        get(&productpage).await,
        Ok((403, "RBAC: access denied".into()))
    );
    assert!(get(&plain).await.is_err());
    assert_eq!(server.stats().plaintext_refused(), 1);

    // An edit: plain text, and anyone.
    set_listener(&cache, &name, addr, &[], false);
    let edited = tokio::time::timeout(WAIT, async {
        while server.policy().get().mtls != MtlsMode::Disable {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    edited.await.expect("the edit applied");
    assert_eq!(get(&plain).await, Ok((200, "hello anonymous".into())));

    // Gone from the control plane: not serving, and the open connections
    // drained.
    cache.set(ResourceType::Listener, Vec::new());
    let gone = mode(&server, |m| not_serving(m).is_some()).await;
    assert_eq!(
        not_serving(&gone),
        Some(&*format!("the control plane has no listener {name:?}"))
    );
    let err = get(&plain).await.unwrap_err();
    assert!(closed_at_once(addr).await, "{err}");
    assert!(server.stats().not_serving_refused() >= 2);

    // Back: serving again.
    set_listener(&cache, &name, addr, &[], false);
    mode(&server, |m| *m == ServingMode::Serving).await;
    assert_eq!(get(&plain).await, Ok((200, "hello anonymous".into())));
}

#[tokio::test]
async fn a_listener_it_cannot_serve_by_is_the_reason_it_does_not() {
    let cache = ResourceCache::new();
    let ads = control_plane(&cache).await;
    // No identity in code, none in the bootstrap.
    let (server, addr, name) = start(MeshServer::builder().xds(ads)).await;

    let broken = envoy_types::pb::envoy::config::listener::v3::Listener {
        name: name.clone(),
        ..Default::default()
    };
    cache.set(
        ResourceType::Listener,
        vec![translate::entry(&name, &broken)],
    );
    let refused = mode(&server, |m| {
        not_serving(m).is_some_and(|r| r.contains("rejected"))
    })
    .await;
    assert_eq!(
        not_serving(&refused),
        Some(&*format!(
            "the control plane's listener {name:?} was rejected: Listener {name:?}: address: \
             a server listener needs a socket address"
        ))
    );

    set_listener(&cache, &name, addr, &[], true);
    let refused = mode(&server, |m| {
        not_serving(m).is_some_and(|r| r.contains("asks for mutual TLS"))
    })
    .await;
    assert_eq!(
        not_serving(&refused),
        Some(&*format!(
            "listener {name:?} asks for mutual TLS, and this server has no identity to present \
             (MeshServerBuilder::identity, or the bootstrap's certificate provider `default`)"
        ))
    );

    let elsewhere: SocketAddr = "127.0.0.1:1".parse().unwrap();
    set_listener(&cache, &name, elsewhere, &[], false);
    let refused = mode(&server, |m| {
        not_serving(m).is_some_and(|r| r.contains("is for"))
    })
    .await;
    assert_eq!(
        not_serving(&refused),
        Some(&*format!(
            "listener {name:?} is for {elsewhere}, and this server listens on {addr}"
        ))
    );

    set_listener(&cache, &name, addr, &[], false);
    mode(&server, |m| *m == ServingMode::Serving).await;
    let plain = support::pki::client("ratings:9080", addr, None);
    assert_eq!(get(&plain).await, Ok((200, "hello anonymous".into())));
}

/// `GET /` over TLS to `addr` with the server name `sni`, trusting `ca`:
/// the response's text, or why there is none.
async fn get_tls(addr: SocketAddr, sni: &str, ca: &Ca) -> Result<String, String> {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    use tokio::io::AsyncWriteExt;

    let mut roots = rustls::RootCertStore::empty();
    let root = CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap();
    roots.add(root).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let request = format!("GET / HTTP/1.1\r\nhost: {sni}\r\nconnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    Ok(response)
}

#[tokio::test]
async fn a_gateway_listener_terminates_tls_with_the_certificates_sds_sends() {
    use mesh_core::policy::{Pem, ServerTls};
    use mesh_xds::resource::XdsSecret;
    use rcgen::SanType;

    let ca = Ca::new();
    let (chain, key) = ca.leaf(&[SanType::DnsName("edge.example.com".try_into().unwrap())]);
    let tls = ServerTls {
        credential: Some("edge-cert".into()),
        certificate_chain: Pem::Inline(chain),
        private_key: Pem::Inline(key.serialize_pem()),
        ..ServerTls::default()
    };
    let server_names = vec!["edge.example.com".to_owned()];
    let cache = ResourceCache::new();
    let ads = control_plane(&cache).await;
    let builder = MeshServer::builder()
        .mtls(MtlsMode::Disable)
        .xds(ads.clone());
    let (server, addr, name) = start(builder).await;
    let chain = translate::EnvoyChain {
        routes: "https.443.edge.edge-gateway.istio-system",
        server_names: &server_names,
        tls: Some(&tls),
    };
    let listener = translate::envoy_listener_chains(&name, addr, "gateway", &[chain]);
    cache.set(
        ResourceType::Listener,
        vec![translate::entry(&name, &listener)],
    );

    // The listener names its certificate by SDS: not serving until it comes.
    let waiting = mode(&server, |m| {
        not_serving(m).is_some_and(|r| r.contains("secret"))
    })
    .await;
    assert!(
        not_serving(&waiting)
            .unwrap()
            .contains("waiting for secret \"kubernetes://edge-cert\""),
        "{waiting:?}"
    );
    let secrets = |tls: &ServerTls| {
        translate::server_tls_secrets(tls)
            .iter()
            .map(|s| translate::entry(&s.name, s))
            .collect()
    };
    cache.set(ResourceType::Secret, secrets(&tls));
    mode(&server, |m| *m == ServingMode::Serving).await;
    let response = get_tls(addr, "edge.example.com", &ca).await.unwrap();
    assert!(response.ends_with("hello anonymous"), "{response}");
    // A name no server takes is refused.
    assert!(get_tls(addr, "other.example.com", &ca).await.is_err());

    // A secret that does not parse leaves the last good certificate served.
    let broken = ServerTls {
        certificate_chain: Pem::Inline(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
        ),
        ..tls.clone()
    };
    let mut modes = server.serving_mode();
    modes.mark_unchanged();
    cache.set(ResourceType::Secret, secrets(&broken));
    let mut updates = ads.updates();
    let arrived = updates.wait_for(|view| {
        matches!(
            view.secrets.get("kubernetes://edge-cert").map(|s| &**s),
            Some(XdsSecret::Certificate { certificate_chain, .. }) if *certificate_chain == broken.certificate_chain
        )
    });
    tokio::time::timeout(WAIT, arrived).await.unwrap().unwrap();
    let changed = tokio::time::timeout(Duration::from_millis(200), modes.changed()).await;
    assert!(changed.is_err(), "{:?}", *modes.borrow());
    let response = get_tls(addr, "edge.example.com", &ca).await.unwrap();
    assert!(response.ends_with("hello anonymous"), "{response}");
}
