//! `mesh-sidecar gateway` terminating TLS: on one port a `SIMPLE` server
//! with certificate files and a `MUTUAL` one with a Kubernetes Secret,
//! each chosen by SNI and routed by its own VirtualService; plain text,
//! a name no server takes and a client without a certificate are
//! refused; a certificate that cannot be read is named, and the last good
//! configuration keeps serving. The same port from a control plane: the
//! files' server in the port's listener, the Secret's by SDS to a gateway
//! that proved its identity over mutual TLS.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use support::{Sidecar, app, eventually, free_port, get};

/// A root, and leaves it signs.
struct Ca(rcgen::CertifiedIssuer<'static, rcgen::KeyPair>);

/// A certificate and its key, as PEM.
struct Leaf {
    cert: String,
    key: String,
}

impl Ca {
    fn new() -> Self {
        let mut root = rcgen::CertificateParams::default();
        root.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        Self(rcgen::CertifiedIssuer::self_signed(root, key).unwrap())
    }

    fn leaf(&self, name: &str) -> Leaf {
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.0).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// `text` as a YAML block scalar's lines, indented by `indent`.
fn block(text: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// The Gateway on `port`: `bookinfo.example.com` with the files in
/// `certs`, `secure.example.com` with the Secret `secure` checking
/// clients against `clients`; each host's VirtualService to its service.
fn gateways(port: u16, certs: &Path, secure: &Leaf, clients: &Ca) -> String {
    let (crt, key) = (certs.join("bookinfo.crt"), certs.join("bookinfo.key"));
    format!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: bookinfo-gateway}}\n\
         spec:\n  selector: {{istio: ingressgateway}}\n  servers:\n\
         \x20 - port: {{number: {port}, name: https, protocol: HTTPS}}\n\
         \x20   hosts: [bookinfo.example.com]\n\
         \x20   tls: {{mode: SIMPLE, serverCertificate: {}, privateKey: {}}}\n\
         \x20 - port: {{number: {port}, name: https-secure, protocol: HTTPS}}\n\
         \x20   hosts: [secure.example.com]\n\
         \x20   tls: {{mode: MUTUAL, credentialName: secure-credential}}\n\
         ---\napiVersion: v1\nkind: Secret\n\
         metadata: {{name: secure-credential, namespace: istio-system}}\n\
         type: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}  ca.crt: |\n{}\
         {}{}",
        crt.display(),
        key.display(),
        block(&secure.cert, 4),
        block(&secure.key, 4),
        block(&clients.0.pem(), 4),
        route("bookinfo", "bookinfo.example.com", "productpage"),
        route("secure", "secure.example.com", "details"),
    )
}

fn route(name: &str, host: &str, service: &str) -> String {
    format!(
        "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}}}\n\
         spec:\n  hosts: [{host}]\n  gateways: [bookinfo-gateway]\n\
         \x20 http:\n  - route: [{{destination: {{host: {service}, port: {{number: 9080}}}}}}]\n"
    )
}

/// `service`'s Service and one instance of it at `addr`.
fn service(service: &str, addr: SocketAddr) -> String {
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {service}}}\n\
         spec:\n  selector: {{app: {service}}}\n  ports: [{{name: http, port: 9080}}]\n\
         ---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: {service}-v1}}\n\
         spec: {{address: 127.0.0.1, ports: {{http: {}}}, labels: {{app: {service}}}}}\n",
        addr.port()
    )
}

/// `GET https://SNI/productpage` on `addr`, trusting `ca`, presenting
/// `client`, over HTTP/2 when `h2`: the status and body, or why it
/// failed.
async fn https(
    addr: SocketAddr,
    sni: &str,
    ca: &Ca,
    client: Option<&Leaf>,
    h2: bool,
) -> Result<(u16, String), String> {
    https_for(addr, sni, sni, ca, client, h2).await
}

/// As [`https`], asking for `host` on a connection made for `sni`.
async fn https_for(
    addr: SocketAddr,
    sni: &str,
    host: &str,
    ca: &Ca,
    client: Option<&Leaf>,
    h2: bool,
) -> Result<(u16, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.0.pem().as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(mesh_tower::tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(leaf.cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![if h2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let io = TokioIo::new(tls);
    let req = http::Request::get(format!("https://{host}/productpage"));
    let res = if h2 {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| format!("h2: {e}"))?;
        tokio::spawn(conn);
        send.send_request(req.body(Full::<Bytes>::default()).unwrap())
            .await
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("http/1.1: {e}"))?;
        tokio::spawn(conn);
        let req = http::Request::get("/productpage").header("host", host);
        send.send_request(req.body(Full::<Bytes>::default()).unwrap())
            .await
    }
    .map_err(|e| format!("request: {e:?}"))?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.map_err(|e| e.to_string())?;
    Ok((
        status,
        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_terminates_tls_by_server_name() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let (ca, clients) = (Ca::new(), Ca::new());
    let bookinfo = ca.leaf("bookinfo.example.com");
    std::fs::write(tmp.path().join("bookinfo.crt"), &bookinfo.cert).unwrap();
    std::fs::write(tmp.path().join("bookinfo.key"), &bookinfo.key).unwrap();
    let secure = ca.leaf("secure.example.com");
    let (productpage, details) = (app("productpage").await, app("details").await);
    let port = free_port();
    let yaml = gateways(port, tmp.path(), &secure, &clients)
        + &service("productpage", productpage)
        + &service("details", details);
    std::fs::write(config.join("gateway.yaml"), &yaml).unwrap();

    let mut command = support::gateway_command(port);
    command.arg("--config").arg(&config);
    let gateway = Sidecar::launch(tmp.path(), "gateway", command).await;
    let addr = gateway.listeners["gateway"];

    // SIMPLE, by its name, over HTTP/2 and HTTP/1.1.
    for h2 in [true, false] {
        let (status, body) = https(addr, "bookinfo.example.com", &ca, None, h2)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log()));
        assert_eq!(status, 200, "{body}\n{}", gateway.log());
        assert!(body.starts_with("productpage"), "{body}");
    }
    // MUTUAL, routed by its own server's table.
    let client = clients.leaf("client.example.com");
    let (status, body) = https(addr, "secure.example.com", &ca, Some(&client), false)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log()));
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("details"), "{body}");
    // A connection is routed by its own server's table: secure's host
    // on bookinfo's connection (no client certificate asked) is no route.
    let (status, body) = https_for(
        addr,
        "bookinfo.example.com",
        "secure.example.com",
        &ca,
        None,
        false,
    )
    .await
    .unwrap();
    assert_eq!(status, 404, "{body}\n{}", gateway.log());
    let anonymous = https(addr, "secure.example.com", &ca, None, false).await;
    assert!(anonymous.is_err(), "{anonymous:?}");
    let stranger = Ca::new().leaf("client.example.com");
    let refused = https(addr, "secure.example.com", &ca, Some(&stranger), false).await;
    assert!(refused.is_err(), "{refused:?}");
    // A name no server takes, and plain text.
    let unknown = https(addr, "other.example.com", &ca, None, false).await;
    assert!(unknown.unwrap_err().starts_with("handshake"));
    let (status, _) = get(addr, "http://bookinfo.example.com/productpage", None).await;
    assert_eq!(status, 0, "plain text is not answered");

    // A certificate that cannot be read: named, and the last good
    // configuration keeps serving.
    std::fs::write(
        config.join("gateway.yaml"),
        yaml.replace("bookinfo.key", "missing.key"),
    )
    .unwrap();
    eventually(
        || async { gateway.log().contains("gateway configuration rejected") },
        || format!("the edit was not seen: {}", gateway.log()),
    )
    .await;
    let log = gateway.log();
    assert!(
        log.contains("privateKey:") && log.contains("missing.key"),
        "{log}"
    );
    let (status, _) = https(addr, "bookinfo.example.com", &ca, None, false)
        .await
        .unwrap();
    assert_eq!(status, 200);
}

/// A bootstrap dialling the ADS server at `xds` over mutual TLS with the
/// certificates in `certs` (Istio's layout), as the ingress gateway.
fn tls_bootstrap(xds: SocketAddr, certs: &Path) -> String {
    let file = |name: &str| certs.join(name).display().to_string();
    serde_json::json!({
        "xds_servers": [{
            "server_uri": xds.to_string(),
            "channel_creds": [{"type": "tls", "config": {
                "certificate_file": file("cert-chain.pem"),
                "private_key_file": file("key.pem"),
                "ca_certificate_file": file("root-cert.pem"),
            }}],
            "server_features": ["xds_v3"],
        }],
        "node": {
            "id": "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local",
            "metadata": {"NAMESPACE": "istio-system", "LABELS": {"istio": "ingressgateway"}},
        },
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_terminates_tls_from_a_control_plane() {
    use mesh_control::ControlPlane;
    use mesh_control::secure::{self, ControlPlaneIdentity};

    let tmp = tempfile::tempdir().unwrap();
    let gateway_id =
        "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account";
    support::certificates(tmp.path(), &[("gateway", gateway_id)]);
    let (ca, clients) = (Ca::new(), Ca::new());
    let bookinfo = ca.leaf("bookinfo.example.com");
    std::fs::write(tmp.path().join("bookinfo.crt"), &bookinfo.cert).unwrap();
    std::fs::write(tmp.path().join("bookinfo.key"), &bookinfo.key).unwrap();
    let secure = ca.leaf("secure.example.com");
    let (productpage, details) = (app("productpage").await, app("details").await);
    let port = free_port();
    let yaml = gateways(port, tmp.path(), &secure, &clients)
        + &service("productpage", productpage)
        + &service("details", details);

    // The control plane, over mutual TLS only.
    let plane = ControlPlane::new("cluster.local");
    let loaded =
        mesh_control::config_dir::load_texts([("gateway.yaml".into(), yaml)], "cluster.local")
            .unwrap();
    plane.apply(loaded);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let xds = listener.local_addr().unwrap();
    let root = mesh_control::ca::Ca::load(tmp.path().join("ca")).unwrap();
    let identity = ControlPlaneIdentity::new(root, "cluster.local", xds)
        .into_source()
        .unwrap();
    let server = mesh_xds::server::AdsServer::new(plane.clone());
    tokio::spawn(secure::serve(listener, identity, server));

    let bootstrap = tmp.path().join("bootstrap.json");
    std::fs::write(&bootstrap, tls_bootstrap(xds, &tmp.path().join("gateway"))).unwrap();
    let mut command = support::gateway_command(port);
    command.arg("--bootstrap").arg(&bootstrap);
    let gateway = Sidecar::launch(tmp.path(), "gateway", command).await;
    gateway.ready().await;
    let addr = gateway.listeners["gateway"];

    // The files' server, from the port's listener.
    let (status, body) = https(addr, "bookinfo.example.com", &ca, None, true)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log()));
    assert_eq!(status, 200, "{body}\n{}", gateway.log());
    assert!(body.starts_with("productpage"), "{body}");
    // The Secret's, MUTUAL, its certificate and client roots by SDS.
    let client = clients.leaf("client.example.com");
    let (status, body) = https(addr, "secure.example.com", &ca, Some(&client), false)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log()));
    assert_eq!(status, 200, "{body}\n{}", gateway.log());
    assert!(body.starts_with("details"), "{body}");
    let anonymous = https(addr, "secure.example.com", &ca, None, false).await;
    assert!(anonymous.is_err(), "{anonymous:?}");
    let (status, _) = get(addr, "http://bookinfo.example.com/productpage", None).await;
    assert_eq!(status, 0, "plain text is not answered");

    // What it holds shows the secrets without their keys.
    let (status, dump) = gateway.admin("/config_dump").await;
    assert_eq!(status, 200);
    assert!(dump.contains("kubernetes://secure-credential"), "{dump}");
    let key_line = secure.key.lines().nth(1).unwrap();
    assert!(!dump.contains(key_line), "a private key in /config_dump");
    let log = gateway.log();
    assert!(!log.contains(key_line), "a private key in the log");
}
