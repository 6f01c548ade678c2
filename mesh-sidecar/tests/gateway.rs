//! `mesh-sidecar gateway`: Istio's bookinfo Gateway and VirtualService
//! route `/productpage` to productpage and nothing else, read from a
//! directory or served by a control plane; an edit is followed, and one
//! that does not load leaves the last good configuration serving.

mod support;

use std::path::Path;

use support::{Sidecar, app, certificates, control_plane, eventually, free_port, get, service};

/// Bookinfo's Gateway on `port` and its VirtualService with `paths`
/// exact, and productpage's Service with one instance at `app`.
fn bookinfo(port: u16, paths: &[&str], app: std::net::SocketAddr) -> String {
    let matches: String = paths
        .iter()
        .map(|p| format!("    - uri: {{exact: {p}}}\n"))
        .collect();
    format!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: bookinfo-gateway}}\n\
         spec:\n  selector: {{istio: ingressgateway}}\n\
         \x20 servers:\n  - port: {{number: {port}, name: http, protocol: HTTP}}\n    hosts: ['*']\n\
         ---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: bookinfo}}\n\
         spec:\n  hosts: ['*']\n  gateways: [bookinfo-gateway]\n  http:\n  - match:\n{matches}\
         \x20   route:\n    - destination: {{host: productpage, port: {{number: 9080}}}}\n\
         ---\napiVersion: v1\nkind: Service\nmetadata: {{name: productpage}}\n\
         spec:\n  selector: {{app: productpage}}\n  ports: [{{name: http, port: 9080}}]\n\
         ---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: productpage-v1}}\n\
         spec: {{address: 127.0.0.1, ports: {{http: {}}}, labels: {{app: productpage}}}}\n",
        app.port()
    )
}

async fn gateway(dir: &Path, port: u16) -> Sidecar {
    let mut command = support::gateway_command(port);
    let config = dir.join("config");
    command.arg("--config").arg(config);
    Sidecar::launch(dir, "gateway", command).await
}

/// Waits until `GET path` through `gateway` answers `status`.
async fn until(gateway: &Sidecar, path: &str, status: u16) {
    let addr = gateway.listeners["gateway"];
    let uri = format!("http://bookinfo.example{path}");
    eventually(
        || async { get(addr, &uri, None).await.0 == status },
        || format!("{path} never answered {status}: {}", gateway.log()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_routes_bookinfo_and_follows_edits() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let productpage = app("productpage").await;
    let port = free_port();
    std::fs::write(
        config.join("bookinfo.yaml"),
        bookinfo(port, &["/productpage"], productpage),
    )
    .unwrap();
    let gateway = gateway(tmp.path(), port).await;
    let addr = gateway.listeners["gateway"];

    let (status, body) = get(addr, "http://bookinfo.example/productpage", None).await;
    assert_eq!(status, 200, "{body}\n{}", gateway.log());
    assert!(body.starts_with("productpage"), "{body}");
    let (status, body) = get(addr, "http://bookinfo.example/admin", None).await;
    assert_eq!(status, 404, "{body}");
    // No tunnel to an address no route names: the admin, say.
    let admin = gateway.admin;
    let connect = format!("CONNECT {admin} HTTP/1.1\r\nHost: {admin}\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(connect.as_bytes()).await.unwrap();
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 405");

    // An edit: /login joins.
    std::fs::write(
        config.join("bookinfo.yaml"),
        bookinfo(port, &["/productpage", "/login"], productpage),
    )
    .unwrap();
    until(&gateway, "/login", 200).await;

    // One that does not load: the last good configuration stays.
    std::fs::write(config.join("broken.yaml"), "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec: {hosts: 7}\n").unwrap();
    eventually(
        || async { gateway.log().contains("gateway configuration rejected") },
        || format!("the broken file was not seen: {}", gateway.log()),
    )
    .await;
    assert_eq!(
        get(addr, "http://bookinfo.example/login", None).await.0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_no_gateway_server_is_on_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let productpage = app("productpage").await;
    std::fs::write(
        config.join("bookinfo.yaml"),
        bookinfo(free_port(), &["/productpage"], productpage),
    )
    .unwrap();
    let out = support::gateway_command(free_port())
        .arg("--config")
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no server of the Gateways [\"default/bookinfo-gateway\"] is on port"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_https_redirect_answers_with_the_https_address() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let productpage = app("productpage").await;
    let port = free_port();
    let redirect = format!(
        "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: secure}}\n\
         spec:\n  selector: {{istio: ingressgateway}}\n\
         \x20 servers:\n  - port: {{number: {port}, name: http-secure, protocol: HTTP}}\n\
         \x20   hosts: [secure.example]\n    tls: {{httpsRedirect: true}}\n\
         ---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: secure}}\n\
         spec:\n  hosts: [secure.example]\n  gateways: [secure]\n\
         \x20 http:\n  - route: [{{destination: {{host: productpage, port: {{number: 9080}}}}}}]\n"
    );
    let yaml = bookinfo(port, &["/productpage"], productpage) + &redirect;
    std::fs::write(config.join("bookinfo.yaml"), yaml).unwrap();
    let gateway = gateway(tmp.path(), port).await;
    let addr = gateway.listeners["gateway"];
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::get(format!("http://{addr}/productpage?x=1"))
        .header("host", "secure.example")
        .body(Default::default())
        .unwrap();
    let res = client.request(req).await.unwrap();
    assert_eq!(res.status(), 301, "{}", gateway.log());
    assert_eq!(
        res.headers()["location"],
        "https://secure.example/productpage?x=1"
    );
    // Other hosts are still served in plain text.
    assert_eq!(
        get(addr, "http://bookinfo.example/productpage", None)
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_follows_a_control_plane() {
    let tmp = tempfile::tempdir().unwrap();
    let productpage = app("productpage").await;
    let port = free_port();
    let yaml = |paths: &[&str]| bookinfo(port, paths, productpage);
    let (plane, xds) = control_plane(&[("bookinfo.yaml", yaml(&["/productpage"]))]).await;
    let mut command = support::gateway_command(port);
    let xds = xds.to_string();
    command.args(["--xds", &xds]);
    let gateway = Sidecar::launch(tmp.path(), "gateway", command).await;
    gateway.ready().await;
    let addr = gateway.listeners["gateway"];

    let (status, body) = get(addr, "http://bookinfo.example/productpage", None).await;
    assert_eq!(status, 200, "{body}\n{}", gateway.log());
    assert!(body.starts_with("productpage"), "{body}");
    let (status, body) = get(addr, "http://bookinfo.example/admin", None).await;
    assert_eq!(status, 404, "{body}");

    let loaded = mesh_control::config_dir::load_texts(
        [(
            "bookinfo.yaml".to_owned(),
            yaml(&["/productpage", "/login"]),
        )],
        "cluster.local",
    )
    .unwrap();
    plane.apply(loaded);
    until(&gateway, "/login", 200).await;
    let status = plane.status();
    let node = status
        .nodes
        .iter()
        .find(|n| n.shape == "proxyless router")
        .unwrap_or_else(|| panic!("no proxyless router among {status:?}"));
    // Its route table, and its port's listener, for the address it
    // listens on and the Gateway's port.
    assert_eq!(
        node.requested,
        [
            format!("http.{port}"),
            format!("xds.istio.io/grpc/lds/inbound/127.0.0.1:{port}")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_dials_mutual_tls_with_its_own_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let gateway_id =
        "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account";
    certificates(
        tmp.path(),
        &[
            (
                "productpage",
                "spiffe://cluster.local/ns/default/sa/productpage",
            ),
            ("gateway", gateway_id),
        ],
    );
    // productpage behind a sidecar taking only mutual TLS.
    let (_plane, xds) = control_plane(&[("productpage.yaml", service("productpage"))]).await;
    let app_port = app("productpage").await.port();
    let productpage = Sidecar::workload(tmp.path(), xds, "productpage", "v1", Some(app_port)).await;
    productpage.ready().await;

    let config = tmp.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let port = free_port();
    let mtls = "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
                metadata: {name: productpage}\nspec:\n  host: productpage\n\
                \x20 trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n";
    let yaml = bookinfo(port, &["/productpage"], productpage.inbound()) + mtls;
    std::fs::write(config.join("bookinfo.yaml"), yaml).unwrap();
    let mut command = support::gateway_command(port);
    command.arg("--config").arg(&config);
    command.arg("--cert-dir").arg(tmp.path().join("gateway"));
    let gateway = Sidecar::launch(tmp.path(), "gateway", command).await;

    let (status, body) = get(
        gateway.listeners["gateway"],
        "http://bookinfo.example/productpage",
        None,
    )
    .await;
    assert_eq!(
        status,
        200,
        "{body}\n{}\n{}",
        gateway.log(),
        productpage.log()
    );
    // The sidecar saw the gateway's identity.
    assert!(body.contains(&format!("URI={gateway_id}")), "{body}");
}
