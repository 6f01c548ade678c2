//! A real Envoy as a sidecar and as an ingress gateway of `mesh-control
//! serve`: it takes each shape over ADS (listeners with filter chains,
//! routes by port or by Gateway server, EDS clusters), routes by header or
//! path and splits by weight as bookinfo's YAML says, and follows an edit.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use support::TempDir;
use support::control::{Control, ReservedPort, WAIT, http_get, upstream};
use support::envoy::Envoy;
use support::mesh::bookinfo;

const NODE: &str = "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local";

/// The Service `app` on `port` and a WorkloadEntry per version.
fn registry(app: &str, port: u16, upstreams: &[(&str, SocketAddr)]) -> String {
    let mut yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {app}, namespace: default}}\n\
         spec:\n  selector: {{app: {app}}}\n  ports: [{{name: http, port: {port}}}]\n"
    );
    for (version, addr) in upstreams {
        yaml.push_str(&format!(
            "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
             metadata: {{name: {app}-{version}, namespace: default}}\n\
             spec:\n  address: {}\n  ports: {{http: {}}}\n  labels: {{app: {app}, version: {version}}}\n",
            addr.ip(),
            addr.port()
        ));
    }
    yaml
}

/// Three reviews upstreams, v1 to v3.
async fn reviews_upstreams() -> [(&'static str, SocketAddr); 3] {
    [
        ("v1", upstream("v1").await),
        ("v2", upstream("v2").await),
        ("v3", upstream("v3").await),
    ]
}

/// Asserts that about `share` of `n` requests through `listener` as
/// `host` go to `version` (within 4σ), and the rest to one other.
async fn assert_split(listener: SocketAddr, host: &str, version: &str, share: f64) {
    let n = 500;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..n {
        let (status, body) = http_get(listener, host, "/reviews/0", &[]).await.unwrap();
        assert_eq!(status, 200, "{body}");
        *counts.entry(body).or_default() += 1;
    }
    let got = counts.get(version).copied().unwrap_or(0) as f64;
    let sigma = (n as f64 * share * (1.0 - share)).sqrt();
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!((got - share * n as f64).abs() <= 4.0 * sigma, "{counts:?}");
}

/// A request through the sidecar's listener for reviews: which version
/// answered.
async fn get(listener: SocketAddr, user: Option<&str>) -> Result<String, String> {
    let headers: Vec<(&str, &str)> = user.map(|u| ("end-user", u)).into_iter().collect();
    let host = format!("reviews:{}", listener.port());
    match http_get(listener, &host, "/reviews/0", &headers).await {
        Ok((200, body)) => Ok(body),
        Ok((status, body)) => Err(format!("{status}: {body}")),
        Err(e) => Err(e.to_string()),
    }
}

async fn wait_until(listener: SocketAddr, what: &str, want: impl Fn(&str) -> bool) {
    let reached = tokio::time::timeout(WAIT, async {
        loop {
            if get(listener, None).await.is_ok_and(|v| want(&v)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let last = get(listener, None).await;
    assert!(reached.is_ok(), "Envoy never routed {what}; last: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_as_a_sidecar_routes_splits_and_follows_an_edit() {
    let upstreams = reviews_upstreams().await;
    // The listener's port is the service port, which Envoy binds.
    let reserved = ReservedPort::new();
    let port = reserved.port();
    let dir = TempDir::new("envoy-sidecar");
    std::fs::write(
        dir.join("registry.yaml"),
        registry("reviews", port, &upstreams),
    )
    .unwrap();
    std::fs::write(
        dir.join("destination-rules.yaml"),
        bookinfo("destination-rule-all.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("reviews.yaml"),
        bookinfo("virtual-service-reviews-test-v2.yaml"),
    )
    .unwrap();
    let control = Control::start(dir.path());
    let Some(_envoy) = Envoy::start(control.xds, NODE, &[("app", "productpage")]) else {
        return;
    };
    let listener: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_until(listener, "to v1", |v| v == "v1").await;

    // reviews-test-v2: jason to v2, everyone else to v1.
    assert_eq!(get(listener, Some("jason")).await.unwrap(), "v2");
    for _ in 0..20 {
        assert_eq!(get(listener, None).await.unwrap(), "v1");
    }
    // Envoy ACKed everything: no NACK is recorded.
    let dump = control.config_dump().await;
    assert_eq!(dump["nacks"], serde_json::json!([]), "{dump:#}");
    let sidecar = dump["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["shape"] == "sidecar")
        .expect("the sidecar's class");
    assert!(
        sidecar["resources"]["LDS"]
            .as_object()
            .unwrap()
            .contains_key(&format!("127.0.0.1_{port}")),
        "{sidecar:#}"
    );

    // The edit: reviews 80/20, v1/v2.
    std::fs::write(
        dir.join("reviews.yaml"),
        bookinfo("virtual-service-reviews-80-20.yaml"),
    )
    .unwrap();
    wait_until(listener, "to v2 after the edit", |v| v == "v2").await;
    let n = 500;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..n {
        *counts
            .entry(get(listener, None).await.unwrap())
            .or_default() += 1;
    }
    let v2 = counts.get("v2").copied().unwrap_or(0) as f64;
    let expected = 0.2 * n as f64;
    let sigma = (n as f64 * 0.2 * 0.8).sqrt();
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!((v2 - expected).abs() <= 4.0 * sigma, "{counts:?}");
    let dump = control.config_dump().await;
    assert_eq!(dump["nacks"], serde_json::json!([]), "{dump:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_splits_by_locality_as_a_distribute_rule_says() {
    let reserved = ReservedPort::new();
    let port = reserved.port();
    let dir = TempDir::new("envoy-locality");
    let mut yaml = registry("reviews", port, &[]);
    for (zone, version) in [("a", "v1"), ("b", "v2"), ("c", "v3")] {
        let addr = upstream(version).await;
        yaml.push_str(&format!(
            "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
             metadata: {{name: reviews-{zone}, namespace: default}}\n\
             spec:\n  address: {}\n  ports: {{http: {}}}\n  labels: {{app: reviews}}\n  locality: us-east/{zone}\n",
            addr.ip(),
            addr.port()
        ));
    }
    yaml.push_str(
        "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
         metadata: {name: reviews, namespace: default}\nspec:\n  host: reviews\n  trafficPolicy:\n\
         \x20   loadBalancer:\n      localityLbSetting:\n\
         \x20       distribute: [{from: us-east/a/*, to: {us-east/a: 80, us-east/b: 20}}]\n",
    );
    std::fs::write(dir.join("reviews.yaml"), yaml).unwrap();
    let control = Control::start(dir.path());
    let node = support::envoy::Node {
        id: NODE,
        labels: &[("app", "productpage")],
        locality: Some(("us-east", "a")),
        ..Default::default()
    };
    let Some(_envoy) = Envoy::launch(control.xds, &node) else {
        return;
    };
    let listener: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_until(listener, "to zone b", |v| v == "v2").await;
    // Zone a's share and zone b's, none for zone c, which no share names.
    assert_split(listener, &format!("reviews:{port}"), "v2", 0.2).await;
    let dump = control.config_dump().await;
    assert_eq!(dump["nacks"], serde_json::json!([]), "{dump:#}");
}

/// A VirtualService bound to bookinfo's Gateway: `reviews.example.com`
/// split 80/20 between reviews v1 and v2.
const REVIEWS_AT_THE_EDGE: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
    metadata: {name: reviews-edge}\nspec:\n  hosts: [reviews.example.com]\n  gateways: [bookinfo-gateway]\n\
    \x20 http:\n  - route:\n    - {destination: {host: reviews, subset: v1}, weight: 80}\n\
    \x20   - {destination: {host: reviews, subset: v2}, weight: 20}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_as_an_ingress_gateway_routes_bookinfo_and_splits() {
    let productpage = [("v1", upstream("productpage").await)];
    let reviews = reviews_upstreams().await;
    // The Gateway's server port, which Envoy binds.
    let reserved = ReservedPort::new();
    let port = reserved.port();
    let dir = TempDir::new("envoy-gateway");
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
    write(
        "productpage.yaml",
        registry("productpage", 9080, &productpage),
    );
    write("reviews.yaml", registry("reviews", 9080, &reviews));
    write("rules.yaml", bookinfo("destination-rule-all.yaml"));
    write(
        "gateway.yaml",
        bookinfo("bookinfo-gateway.yaml").replace("number: 8080", &format!("number: {port}")),
    );
    write("edge.yaml", REVIEWS_AT_THE_EDGE.to_owned());
    let control = Control::start(dir.path());
    let node =
        "router~127.0.0.1~istio-ingressgateway-1.istio-system~istio-system.svc.cluster.local";
    let Some(_envoy) = Envoy::start(control.xds, node, &[("istio", "ingressgateway")]) else {
        return;
    };
    let listener: SocketAddr = ([127, 0, 0, 1], port).into();
    let page = || http_get(listener, "bookinfo.example.com", "/productpage", &[]);
    let ready = tokio::time::timeout(WAIT, async {
        loop {
            if matches!(page().await, Ok((200, _))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        ready.is_ok(),
        "the gateway never served /productpage: {:?}",
        page().await
    );

    // bookinfo's VirtualService: its paths to productpage, nothing else.
    assert_eq!(page().await.unwrap(), (200, "productpage".to_owned()));
    let (status, _) = http_get(listener, "bookinfo.example.com", "/api/v1/products", &[])
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, _) = http_get(listener, "bookinfo.example.com", "/nope", &[])
        .await
        .unwrap();
    assert_eq!(status, 404);
    // The second VirtualService: its host split 80/20.
    assert_split(listener, "reviews.example.com", "v2", 0.2).await;
    let dump = control.config_dump().await;
    assert_eq!(dump["nacks"], serde_json::json!([]), "{dump:#}");
    let router = dump["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["shape"] == "router")
        .expect("the gateway's class");
    assert!(
        router["resources"]["RDS"]
            .as_object()
            .unwrap()
            .contains_key(&format!("http.{port}")),
        "{router:#}"
    );
}

/// A TLS connection to `addr` asking for `server_name`, trusting the
/// roots in the PEM file `roots`, presenting the workload certificate in
/// the directory `client` when given, offering the application protocols
/// `alpn`.
async fn tls_connect(
    addr: SocketAddr,
    server_name: &str,
    roots: &std::path::Path,
    client: Option<&std::path::Path>,
    alpn: &[&str],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

    let mut store = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(roots).unwrap() {
        store.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(dir) => {
            let chain = CertificateDer::pem_file_iter(dir.join("cert-chain.pem"))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    let mut config = config;
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    connector.connect(name, tcp).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_as_a_gateway_terminates_tls_and_redirects_to_https() {
    let tmp = TempDir::new("envoy-gateway-tls");
    // app.example.com's own certificate, and the mesh's for clients.
    let app = rcgen::generate_simple_self_signed(vec!["app.example.com".into()]).unwrap();
    let (cert, key) = (tmp.join("app.pem"), tmp.join("app.key"));
    std::fs::write(&cert, app.cert.pem()).unwrap();
    std::fs::write(&key, app.signing_key.serialize_pem()).unwrap();
    // other.example.com's, in a Kubernetes secret in the gateway's
    // namespace, as an Istio Gateway's credentialName names it.
    let other = rcgen::generate_simple_self_signed(vec!["other.example.com".into()]).unwrap();
    let other_cert = tmp.join("other.pem");
    std::fs::write(&other_cert, other.cert.pem()).unwrap();
    let b64 = |text: String| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(text)
    };
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: other-credential, namespace: istio-system}}\n\
         type: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
        b64(other.cert.pem()),
        b64(other.signing_key.serialize_pem()),
    );
    let ca = mesh_control::ca::Ca::init(tmp.join("ca")).unwrap();
    let day = Duration::from_secs(24 * 3600);
    for (dir, sa) in [("client", "client"), ("stranger", "stranger")] {
        let id = format!("spiffe://cluster.local/ns/default/sa/{sa}");
        ca.issue(&id, day).unwrap().write(tmp.join(dir)).unwrap();
    }
    // The gateway's own, with which it dials the control plane's mutual
    // TLS port and is served its Secret there by SDS.
    let gateway_sa =
        "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account";
    ca.issue(gateway_sa, day)
        .unwrap()
        .write(tmp.join("gateway"))
        .unwrap();
    let clients_root = tmp.join("client").join("root-cert.pem");

    let reserved = [(); 3].map(|()| ReservedPort::new());
    let [plain, https, mtls] = reserved.each_ref().map(ReservedPort::port);
    let gateway = format!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: edge, namespace: default}}\n\
         spec:\n  selector: {{istio: ingressgateway}}\n  servers:\n\
         \x20 - port: {{number: {plain}, name: http, protocol: HTTP}}\n    hosts: [app.example.com]\n    tls: {{httpsRedirect: true}}\n\
         \x20 - port: {{number: {plain}, name: http-plain, protocol: HTTP}}\n    hosts: [plain.example.com]\n\
         \x20 - port: {{number: {https}, name: https, protocol: HTTPS}}\n    hosts: [app.example.com]\n\
         \x20   tls: {{mode: SIMPLE, serverCertificate: {}, privateKey: {}}}\n\
         \x20 - port: {{number: {https}, name: https-other, protocol: HTTPS}}\n    hosts: [other.example.com]\n\
         \x20   tls: {{mode: SIMPLE, credentialName: other-credential}}\n\
         \x20 - port: {{number: {mtls}, name: mtls, protocol: HTTPS}}\n    hosts: ['*']\n\
         \x20   tls:\n      mode: MUTUAL\n      serverCertificate: {}\n      privateKey: {}\n      caCertificates: {}\n\
         \x20     subjectAltNames: [spiffe://cluster.local/ns/default/sa/client]\n      minProtocolVersion: TLSV1_2\n\
         ---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: app, namespace: default}}\n\
         spec:\n  hosts: [app.example.com, plain.example.com]\n  gateways: [edge]\n\
         \x20 http:\n  - route: [{{destination: {{host: reviews, subset: v1}}}}]\n\
         ---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: other, namespace: default}}\n\
         spec:\n  hosts: [other.example.com]\n  gateways: [edge]\n\
         \x20 http:\n  - route: [{{destination: {{host: reviews, subset: v2}}}}]\n",
        cert.display(),
        key.display(),
        cert.display(),
        key.display(),
        clients_root.display(),
    );
    let dir = tmp.join("config");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
    write(
        "reviews.yaml",
        registry("reviews", 9080, &reviews_upstreams().await),
    );
    write("rules.yaml", bookinfo("destination-rule-all.yaml"));
    write("gateway.yaml", gateway);
    write("secret.yaml", secret);
    let ca_dir = tmp.join("ca");
    let control = Control::start_with(
        &dir,
        &[
            "--ca",
            ca_dir.to_str().unwrap(),
            "--xds-tls-addr",
            "127.0.0.1:0",
        ],
    );
    let node = support::envoy::Node {
        id: "router~127.0.0.1~istio-ingressgateway-1.istio-system~istio-system.svc.cluster.local",
        labels: &[("istio", "ingressgateway")],
        xds_certs: Some(&tmp.join("gateway")),
        ..Default::default()
    };
    let Some(_envoy) = Envoy::launch(control.xds_tls.unwrap(), &node) else {
        return;
    };
    let at = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let ready = tokio::time::timeout(WAIT, async {
        loop {
            if matches!(
                http_get(at(plain), "plain.example.com", "/", &[]).await,
                Ok((200, _))
            ) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(ready.is_ok(), "the gateway never served plain text");

    // Plain text: one host served, the other redirected to HTTPS.
    let stream = tokio::net::TcpStream::connect(at(plain)).await.unwrap();
    let (status, head, _) = support::control::exchange(stream, "app.example.com", "/a?b=c", &[])
        .await
        .unwrap();
    assert_eq!(status, 301, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("location: https://app.example.com"),
        "{head}"
    );
    // TLS with the server's own certificate, chosen by the name asked for.
    let tls = tls_connect(at(https), "app.example.com", &cert, None, &[])
        .await
        .unwrap();
    let (status, _, body) = support::control::exchange(tls, "app.example.com", "/", &[])
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "v1"));
    // Another server on that port, with the certificate of its Secret.
    let tls = tls_connect(at(https), "other.example.com", &other_cert, None, &[])
        .await
        .unwrap();
    let (status, _, body) = support::control::exchange(tls, "other.example.com", "/", &[])
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "v2"));
    // HTTP/2, agreed by ALPN, as a gRPC client asks for it.
    let tls = tls_connect(
        at(https),
        "app.example.com",
        &cert,
        None,
        &["h2", "http/1.1"],
    )
    .await
    .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut h2, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get("https://app.example.com/")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = h2.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(body, "v1");
    // Mutual TLS: the identity the server names is let in, another is
    // not, nor a client without a certificate.
    let tls = tls_connect(
        at(mtls),
        "app.example.com",
        &cert,
        Some(&tmp.join("client")),
        &[],
    )
    .await
    .unwrap();
    let (status, _, body) = support::control::exchange(tls, "app.example.com", "/", &[])
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "v1"));
    for client in [Some(tmp.join("stranger")), None] {
        let refused =
            match tls_connect(at(mtls), "app.example.com", &cert, client.as_deref(), &[]).await {
                Err(_) => true,
                Ok(tls) => support::control::exchange(tls, "app.example.com", "/", &[])
                    .await
                    .is_err(),
            };
        assert!(refused, "{client:?} was let in");
    }
    let dump = control.config_dump().await;
    assert_eq!(dump["nacks"], serde_json::json!([]), "{dump:#}");
    // Known by its certificate, served the secret by SDS.
    let gateway = &dump["nodes"][0];
    assert_eq!(gateway["identity"], gateway_sa, "{dump:#}");
    let secrets = &gateway["resources"]["SDS"];
    assert!(
        secrets.get("kubernetes://other-credential").is_some(),
        "{dump:#}"
    );
}

/// Envoy reaching an upstream that takes only mutual TLS (reviews, with a
/// certificate from the mesh's CA), told how by the DestinationRule `rule`
/// (given the directory of productpage's certificate files), with those
/// files named in its node metadata when `mounted`.
async fn envoy_reaches_an_mtls_only_upstream(
    rule: impl Fn(&std::path::Path) -> String,
    mounted: bool,
) {
    let tmp = TempDir::new("envoy-mtls");
    let ca = mesh_control::ca::Ca::init(tmp.join("ca")).unwrap();
    let day = Duration::from_secs(24 * 3600);
    for (dir, id) in [
        ("reviews", "spiffe://cluster.local/ns/default/sa/reviews"),
        (
            "productpage",
            "spiffe://cluster.local/ns/default/sa/productpage",
        ),
    ] {
        ca.issue(id, day).unwrap().write(tmp.join(dir)).unwrap();
    }
    let upstream = support::control::mtls_upstream(
        "v1-over-mtls",
        &tmp.join("reviews"),
        "spiffe://cluster.local/ns/default/sa/productpage",
    )
    .await;
    let reserved = ReservedPort::new();
    let port = reserved.port();
    let dir = tmp.join("config");
    std::fs::create_dir_all(&dir).unwrap();
    let registry = registry("reviews", port, &[("v1", upstream)]).replace(
        "labels: {app: reviews, version: v1}",
        "labels: {app: reviews, version: v1}\n  serviceAccount: reviews",
    );
    std::fs::write(dir.join("registry.yaml"), registry).unwrap();
    std::fs::write(dir.join("rule.yaml"), rule(&tmp.join("productpage"))).unwrap();
    let control = Control::start(&dir);
    let file = |name: &str| tmp.join("productpage").join(name).display().to_string();
    let (chain, key, root) = (
        file("cert-chain.pem"),
        file("key.pem"),
        file("root-cert.pem"),
    );
    let mut metadata = vec![];
    if mounted {
        metadata = vec![
            ("TLS_CLIENT_CERT_CHAIN", chain.as_str()),
            ("TLS_CLIENT_KEY", key.as_str()),
            ("TLS_CLIENT_ROOT_CERT", root.as_str()),
        ];
    }
    let Some(_envoy) = Envoy::start_with(control.xds, NODE, &[("app", "productpage")], &metadata)
    else {
        return;
    };
    let listener: SocketAddr = ([127, 0, 0, 1], port).into();
    // The upstream is a MeshServer refusing plain text and any caller
    // but productpage: an answer means Envoy dialled mutual TLS,
    // presenting productpage's certificate, and MeshServer read its
    // SPIFFE id.
    wait_until(listener, "over mutual TLS", |v| v == "v1-over-mtls").await;
    let dump = control.config_dump().await;
    assert_eq!(dump["nacks"], serde_json::json!([]), "{dump:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_dials_the_meshs_mutual_tls_with_mounted_certificates() {
    let rule = |_: &std::path::Path| {
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\n\
         spec:\n  host: reviews\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n"
            .to_owned()
    };
    envoy_reaches_an_mtls_only_upstream(rule, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_dials_mutual_tls_with_the_files_a_rule_names() {
    let rule = |certs: &std::path::Path| {
        let file = |name: &str| certs.join(name).display().to_string();
        format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews}}\n\
             spec:\n  host: reviews\n  trafficPolicy:\n    tls:\n      mode: MUTUAL\n\
             \x20     clientCertificate: {}\n      privateKey: {}\n      caCertificates: {}\n\
             \x20     subjectAltNames: [spiffe://cluster.local/ns/default/sa/reviews]\n",
            file("cert-chain.pem"),
            file("key.pem"),
            file("root-cert.pem")
        )
    };
    envoy_reaches_an_mtls_only_upstream(rule, false).await;
}

/// The status of `GET /reviews/0` from a `MeshClient` with the workload
/// certificate in `certs`, dialling `host` at `addr` over the mesh's
/// mutual TLS and expecting reviews' identity; or the error.
async fn mesh_client_status(
    certs: &std::path::Path,
    addr: SocketAddr,
    host: &str,
) -> Result<u16, String> {
    use http_body_util::Empty;
    use mesh_core::policy::UpstreamTls;
    use mesh_core::{Authority, ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
    use mesh_tower::MeshClient;
    use mesh_tower::tls::{IdentityFiles, IdentitySource};
    use tower::ServiceExt;

    let identity = IdentitySource::from_files(IdentityFiles::in_dir(certs)).unwrap();
    let target: Authority = host.parse().unwrap();
    let resolve = StaticResolve::default();
    resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
    let tls = UpstreamTls {
        subject_alt_names: vec!["spiffe://cluster.local/ns/default/sa/reviews".into()],
        ..UpstreamTls::default()
    };
    let client: MeshClient<Empty<bytes::Bytes>> = MeshClient::builder(resolve)
        .identity(identity)
        .cluster_policy(
            target,
            ClusterPolicy {
                tls: Some(tls),
                ..ClusterPolicy::default()
            },
        )
        .build();
    let req = http::Request::get(format!("http://{host}/reviews/0"))
        .body(Empty::new())
        .unwrap();
    match tokio::time::timeout(WAIT, client.oneshot(req)).await {
        Ok(Ok(res)) => Ok(res.status().as_u16()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer in time".into()),
    }
}

/// Files of the mesh's CA in `tmp` for the workload `sa`: its node
/// metadata naming them, as Istio's mounted certificates.
fn mounted(tmp: &TempDir, sa: &str) -> Vec<(&'static str, String)> {
    let file = |name: &str| tmp.join(sa).join(name).display().to_string();
    vec![
        ("TLS_CLIENT_CERT_CHAIN", file("cert-chain.pem")),
        ("TLS_CLIENT_KEY", file("key.pem")),
        ("TLS_CLIENT_ROOT_CERT", file("root-cert.pem")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_sidecars_take_mutual_tls_and_authorize_on_the_inbound_side() {
    let tmp = TempDir::new("envoy-inbound");
    let ca = mesh_control::ca::Ca::init(tmp.join("ca")).unwrap();
    let day = Duration::from_secs(24 * 3600);
    for sa in ["productpage", "reviews"] {
        let id = format!("spiffe://cluster.local/ns/default/sa/{sa}");
        ca.issue(&id, day).unwrap().write(tmp.join(sa)).unwrap();
    }
    // reviews' application, reached only through its sidecar at
    // 127.0.0.2, which takes the service port.
    let app = upstream("v1").await;
    let reserved = ReservedPort::new();
    let port = reserved.port();
    let peer_authentication = |mode: &str| {
        format!(
            "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n\
             metadata: {{name: reviews, namespace: default}}\n\
             spec:\n  selector: {{matchLabels: {{app: reviews}}}}\n  mtls: {{mode: {mode}}}\n"
        )
    };
    let config = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: reviews, namespace: default}}\n\
         spec:\n  selector: {{app: reviews}}\n  ports: [{{name: http, port: {port}}}]\n\
         ---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
         metadata: {{name: reviews-v1, namespace: default}}\n\
         spec:\n  address: 127.0.0.2\n  labels: {{app: reviews, version: v1}}\n  serviceAccount: reviews\n\
         ---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
         metadata: {{name: reviews, namespace: default}}\n\
         spec:\n  host: reviews\n  trafficPolicy: {{tls: {{mode: ISTIO_MUTUAL}}}}\n\
         ---\napiVersion: networking.istio.io/v1\nkind: Sidecar\n\
         metadata: {{name: reviews, namespace: default}}\n\
         spec:\n  workloadSelector: {{labels: {{app: reviews}}}}\n\
         \x20 ingress:\n  - port: {{number: {port}, protocol: HTTP, name: http}}\n\
         \x20   defaultEndpoint: 127.0.0.1:{}\n    captureMode: NONE\n\
         \x20 egress:\n  - hosts: [\"~/*\"]\n\
         ---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
         metadata: {{name: reviews, namespace: default}}\n\
         spec:\n  selector: {{matchLabels: {{app: reviews}}}}\n  action: ALLOW\n\
         \x20 rules:\n  - from: [{{source: {{principals: [cluster.local/ns/default/sa/productpage]}}}}]\n\
         \x20   to: [{{operation: {{paths: [/reviews/*]}}}}]\n",
        app.port()
    );
    let dir = tmp.join("config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("reviews.yaml"), config).unwrap();
    std::fs::write(dir.join("mtls.yaml"), peer_authentication("STRICT")).unwrap();
    let control = Control::start(&dir);
    let start = |id: &'static str, app: &'static str, sa: &str| {
        let metadata = mounted(&tmp, sa);
        let metadata: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Envoy::start_with(control.xds, id, &[("app", app)], &metadata)
    };
    let Some(_productpage) = start(NODE, "productpage", "productpage") else {
        return;
    };
    let reviews_node = "sidecar~127.0.0.2~reviews-v1.default~default.svc.cluster.local";
    let _reviews = start(reviews_node, "reviews", "reviews").expect("Envoy, as above");
    let outbound: SocketAddr = ([127, 0, 0, 1], port).into();
    let inbound: SocketAddr = ([127, 0, 0, 2], port).into();
    let host = format!("reviews:{port}");

    // productpage's sidecar dials mutual TLS; reviews' takes it, checks
    // the policy and hands the request to the application.
    wait_until(outbound, "through both sidecars", |v| v == "v1").await;
    let (status, body) = http_get(outbound, &host, "/ratings", &[]).await.unwrap();
    assert_eq!(status, 403, "a path the policy does not allow: {body}");
    // STRICT: plain text straight to reviews' sidecar is refused.
    let direct = http_get(inbound, &host, "/reviews/0", &[]).await;
    assert!(
        matches!(direct, Err(_) | Ok((0, _))),
        "plain text had an answer: {direct:?}"
    );
    // MeshClient dials the same sidecar over the mesh's mutual TLS: as
    // productpage it is let through, as reviews the policy refuses it.
    for (sa, want) in [("productpage", 200), ("reviews", 403)] {
        let status = mesh_client_status(&tmp.join(sa), inbound, &host).await;
        assert_eq!(status, Ok(want), "as {sa}");
    }

    // PERMISSIVE takes plain text too, but the policy wants productpage's
    // identity, which a plain-text client has not shown.
    std::fs::write(dir.join("mtls.yaml"), peer_authentication("PERMISSIVE")).unwrap();
    let denied = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok((403, _)) = http_get(inbound, &host, "/reviews/0", &[]).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(denied.is_ok(), "plain text never reached the policy");
    assert_eq!(get(outbound, None).await.unwrap(), "v1");
    let dump = control.config_dump().await;
    assert_eq!(dump["nacks"], serde_json::json!([]), "{dump:#}");
}
