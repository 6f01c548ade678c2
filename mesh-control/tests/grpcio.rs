//! grpcio (gRPC's C core under Python) as a proxyless client and server
//! of `mesh-control serve`:
//! - as a client, asking for `xds:///greeter…:50051`, it ACKs every
//!   resource and routes as the YAML says: `end-user: jason` to v3, the
//!   rest 20/80 to v1 and v2 (the mesh and the checks are
//!   `support/proxyless.rs`'s, shared with grpc-js's test);
//! - as an xDS-enabled server (gRFC A36), it takes its inbound listener by
//!   the name Istio's bootstrap template gives, enforces the
//!   AuthorizationPolicy in it as RBAC (A41), and, once a
//!   PeerAuthentication turns STRICT, refuses plain text and serves mutual
//!   TLS with certificates from the mesh's CA through its `file_watcher`
//!   certificate provider (A29);
//! - as both, a whole proxyless mesh speaking mutual TLS because the
//!   DestinationRule says so.
//! - as the client of a `MeshServer` built from the same bootstrap
//!   (`Mesh::builder().bootstrap(..)`), which takes STRICT mutual TLS and
//!   the AuthorizationPolicy from its listener as grpcio's server does.
//!
//! The interpreter is [`grpcio`]'s: when it cannot import `grpc` and
//! `grpc_health` a test says why and passes, unless `MESH_REQUIRE_PEERS`
//! is set.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use mesh_control::ca::Ca;
use support::TempDir;
use support::control::{Control, ReservedPort, WAIT};
use support::grpc::mtls_channel;
use support::proxyless::{Mesh, grpcio, grpcio_script};
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const DAY: Duration = Duration::from_secs(24 * 3600);
const RATINGS_ID: &str = "spiffe://cluster.local/ns/default/sa/ratings";
const PRODUCTPAGE_ID: &str = "spiffe://cluster.local/ns/default/sa/productpage";

/// Denies requests from the user `blocked` to ratings.
const DENY_BLOCKED: &str = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
    metadata: {name: no-blocked, namespace: default}\n\
    spec:\n  selector: {matchLabels: {app: ratings}}\n  action: DENY\n\
    \x20 rules:\n  - when: [{key: 'request.headers[x-user]', values: [blocked]}]\n";

/// Mutual TLS only, for ratings.
const STRICT: &str = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n\
    metadata: {name: ratings, namespace: default}\n\
    spec:\n  selector: {matchLabels: {app: ratings}}\n  mtls: {mode: STRICT}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_accepts_what_mesh_control_serves_and_routes_as_the_yaml_says() {
    let Some(python) = grpcio().await else {
        return;
    };
    let version = tokio::process::Command::new(&python)
        .args(["-c", "import grpc; print('grpcio', grpc.__version__)"])
        .output()
        .await
        .unwrap();
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let mesh = Mesh::start("grpcio-split").await;
    let mut script = tokio::process::Command::new(&python);
    script.arg(grpcio_script("split.py"));
    mesh.check_routing(&version, script).await;
}

/// The gRPC bootstrap of workload `app` (v1 in `default`): Istio's
/// proxyless shape, with its certificates from `certs`.
fn bootstrap(xds: SocketAddr, app: &str, certs: &Path) -> serde_json::Value {
    let file = |name: &str| certs.join(name).display().to_string();
    serde_json::json!({
        "xds_servers": [{
            "server_uri": xds.to_string(),
            "channel_creds": [{"type": "insecure"}],
            "server_features": ["xds_v3"],
        }],
        "node": {
            "id": format!("sidecar~127.0.0.1~{app}-v1.default~default.svc.cluster.local"),
            "metadata": {
                "GENERATOR": "grpc",
                "NAMESPACE": "default",
                "LABELS": {"app": app, "version": "v1"},
            },
            "locality": {},
        },
        "server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%s",
        "certificate_providers": {"default": {
            "plugin_name": "file_watcher",
            "config": {
                "certificate_file": file("cert-chain.pem"),
                "private_key_file": file("key.pem"),
                "ca_certificate_file": file("root-cert.pem"),
                "refresh_interval": "1s",
            },
        }},
    })
}

/// grpcio's xDS server on 127.0.0.1:`port` with `bootstrap`, started;
/// killed when dropped.
async fn start_server(python: &Path, bootstrap: &Path, port: u16) -> tokio::process::Child {
    let mut server = tokio::process::Command::new(python)
        .arg(grpcio_script("xds_server.py"))
        .arg(port.to_string())
        .env("GRPC_XDS_BOOTSTRAP", bootstrap)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the grpcio server starts");
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let started = tokio::time::timeout(WAIT, lines.next_line()).await;
    assert!(
        matches!(started, Ok(Ok(Some(_)))),
        "the grpcio server did not start: {started:?}"
    );
    server
}

/// One health check as `user`: its status code.
async fn check(channel: Channel, user: &str) -> Code {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request
        .metadata_mut()
        .insert("x-user", user.parse().unwrap());
    match HealthClient::new(channel).check(request).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// A plain-text channel to `addr`, if one connects.
async fn plaintext(addr: SocketAddr) -> Option<Channel> {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .ok()
}

/// Retries `attempt` until it gives `want`, within [`WAIT`].
async fn eventually<F, Fut>(what: &str, want: Code, attempt: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Code>,
{
    let mut last = Code::Unknown;
    let reached = tokio::time::timeout(WAIT, async {
        loop {
            last = attempt().await;
            if last == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "{what}: wanted {want:?}, last {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_xds_server_enforces_authorization_and_strict_mtls() {
    let Some(python) = grpcio().await else {
        return;
    };
    let tmp = TempDir::new("grpcio-server");
    let ca = Ca::init(tmp.join("ca")).unwrap();
    ca.issue(RATINGS_ID, DAY)
        .unwrap()
        .write(tmp.join("ratings"))
        .unwrap();
    ca.issue(PRODUCTPAGE_ID, DAY)
        .unwrap()
        .write(tmp.join("productpage"))
        .unwrap();
    let config = tmp.join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("authz.yaml"), DENY_BLOCKED).unwrap();
    let control = Control::start(&config);
    let bootstrap_file = tmp.join("bootstrap.json");
    std::fs::write(
        &bootstrap_file,
        bootstrap(control.xds, "ratings", &tmp.join("ratings")).to_string(),
    )
    .unwrap();
    let reserved = ReservedPort::new();
    let port = reserved.port();
    let _server = start_server(&python, &bootstrap_file, port).await;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    // It serves once its listener arrives, with the DENY policy in it.
    let plain = || async {
        match plaintext(addr).await {
            Some(channel) => check(channel, "alice").await,
            None => Code::Unavailable,
        }
    };
    eventually("plain text before STRICT", Code::Ok, plain).await;
    let channel = plaintext(addr).await.unwrap();
    assert_eq!(
        check(channel.clone(), "blocked").await,
        Code::PermissionDenied
    );
    assert_eq!(check(channel, "alice").await, Code::Ok);
    let dump = control.config_dump().await;
    assert_eq!(dump["nacks"], serde_json::json!([]), "{dump:#}");

    // STRICT: plain text is refused, mutual TLS with the CA's files
    // serves, and the policy still holds.
    std::fs::write(config.join("peer.yaml"), STRICT).unwrap();
    let mtls = || async {
        match mtls_channel(&tmp.join("productpage"), RATINGS_ID, addr).await {
            Ok(channel) => check(channel, "alice").await,
            Err(_) => Code::Unavailable,
        }
    };
    eventually("mutual TLS under STRICT", Code::Ok, mtls).await;
    assert_ne!(
        plain().await,
        Code::Ok,
        "plain text is refused under STRICT"
    );
    let channel = mtls_channel(&tmp.join("productpage"), RATINGS_ID, addr)
        .await
        .unwrap();
    assert_eq!(check(channel, "blocked").await, Code::PermissionDenied);
    let dump = control.config_dump().await;
    assert_eq!(dump["nacks"], serde_json::json!([]), "{dump:#}");
}

/// ratings on `port`: a Service, its one instance on 127.0.0.1 running as
/// the service account `account`; its clients use the mesh's mutual TLS
/// and expect the server to be who its instances run as; the server takes
/// nothing else, and only from productpage.
fn mtls_mesh(port: u16, account: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: ratings, namespace: default}}\n\
         spec:\n  selector: {{app: ratings}}\n  ports: [{{name: grpc, port: {port}}}]\n\
         ---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
         metadata: {{name: ratings-v1, namespace: default}}\n\
         spec: {{address: 127.0.0.1, labels: {{app: ratings, version: v1}}, serviceAccount: {account}}}\n\
         ---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
         metadata: {{name: ratings, namespace: default}}\n\
         spec:\n  host: ratings\n  trafficPolicy:\n    tls: {{mode: ISTIO_MUTUAL}}\n\
         ---\n{STRICT}\
         ---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
         metadata: {{name: from-productpage, namespace: default}}\n\
         spec:\n  selector: {{matchLabels: {{app: ratings}}}}\n\
         \x20 rules:\n  - from: [{{source: {{principals: [cluster.local/ns/default/sa/productpage]}}}}]\n"
    )
}

/// [`mtls_mesh`] served by `mesh-control`, ratings' port reserved, and
/// certificates from the mesh's CA for ratings, productpage and reviews.
struct MtlsMesh {
    tmp: TempDir,
    reserved: ReservedPort,
    config: std::path::PathBuf,
    control: Control,
}

impl MtlsMesh {
    fn start(name: &str) -> Self {
        let tmp = TempDir::new(name);
        let ca = Ca::init(tmp.join("ca")).unwrap();
        for (name, id) in [
            ("ratings", RATINGS_ID),
            ("productpage", PRODUCTPAGE_ID),
            ("reviews", "spiffe://cluster.local/ns/default/sa/reviews"),
        ] {
            ca.issue(id, DAY).unwrap().write(tmp.join(name)).unwrap();
        }
        let reserved = ReservedPort::new();
        let config = tmp.join("config");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(
            config.join("mesh.yaml"),
            mtls_mesh(reserved.port(), "ratings"),
        )
        .unwrap();
        let control = Control::start(&config);
        Self {
            tmp,
            reserved,
            config,
            control,
        }
    }

    fn port(&self) -> u16 {
        self.reserved.port()
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port()))
    }

    fn bootstrap(&self, app: &str) -> serde_json::Value {
        bootstrap(self.control.xds, app, &self.tmp.join(app))
    }

    /// `app`'s bootstrap, written to a file.
    fn bootstrap_file(&self, app: &str) -> std::path::PathBuf {
        let file = self.tmp.join(&format!("{app}-bootstrap.json"));
        std::fs::write(&file, self.bootstrap(app).to_string()).unwrap();
        file
    }

    /// productpage's grpcio proxyless client calling ratings with `args`:
    /// whether it succeeded, and what it printed.
    async fn productpage_calls(&self, python: &Path, args: &[&str]) -> (bool, String) {
        let client = tokio::process::Command::new(python)
            .arg(grpcio_script("xds_client.py"))
            .arg(format!("xds:///ratings:{}", self.port()))
            .args(args)
            .env("GRPC_XDS_BOOTSTRAP", self.bootstrap_file("productpage"))
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(60), client)
            .await
            .expect("the client finishes")
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success(), stdout)
    }

    /// A health check of ratings over `channel`, a `MeshClient`'s: the
    /// serving status, or the error's chain.
    async fn mesh_client_checks(
        &self,
        channel: &mesh_tower::MeshChannel<tonic::body::Body>,
    ) -> Result<i32, String> {
        let mut health = HealthClient::new(channel.clone());
        let check = health.check(HealthCheckRequest {
            service: String::new(),
        });
        match tokio::time::timeout(WAIT, check).await {
            Ok(Ok(res)) => Ok(res.into_inner().status),
            Ok(Err(status)) => {
                let mut chain = status.message().to_owned();
                let mut source = std::error::Error::source(&status);
                while let Some(e) = source {
                    chain = format!("{chain}: {e}");
                    source = e.source();
                }
                Err(chain)
            }
            Err(_) => Err("no answer in time".into()),
        }
    }

    /// Ratings refuses plain text, denies reviews by the policy, and
    /// nothing was NACKed.
    async fn assert_only_productpage_over_mtls(&self) {
        let plain = match plaintext(self.addr()).await {
            Some(channel) => check(channel, "alice").await,
            None => Code::Unavailable,
        };
        assert_ne!(plain, Code::Ok);
        let reviews = mtls_channel(&self.tmp.join("reviews"), RATINGS_ID, self.addr())
            .await
            .unwrap();
        assert_eq!(check(reviews, "alice").await, Code::PermissionDenied);
        let dump = self.control.config_dump().await;
        assert_eq!(dump["nacks"], serde_json::json!([]), "{dump:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_client_and_server_speak_mutual_tls_as_the_control_plane_says() {
    let Some(python) = grpcio().await else {
        return;
    };
    let mesh = MtlsMesh::start("grpcio-mtls");
    let _server = start_server(&python, &mesh.bootstrap_file("ratings"), mesh.port()).await;

    // productpage, a proxyless client asking by short name (completed in
    // its namespace, as istiod does), dials mutual TLS because the
    // DestinationRule says so, checks the server is ratings, and is let in.
    let ok = (true, r#"{"ok": 20}"#.to_owned());
    assert_eq!(mesh.productpage_calls(&python, &["20"]).await, ok);

    // Plain text is refused; another identity is denied by the policy.
    mesh.assert_only_productpage_over_mtls().await;

    // MeshClient, from the same bootstrap, dials grpcio's server the same
    // way: mutual TLS, ratings' identity checked.
    let bootstrap = mesh.bootstrap("productpage").to_string();
    let bootstrap = mesh_xds::Bootstrap::from_json("productpage's bootstrap", &bootstrap).unwrap();
    let productpage = mesh_tower::Mesh::builder()
        .bootstrap(bootstrap)
        .build()
        .unwrap();
    let target = format!("xds:///ratings:{}", mesh.port());
    let channel = productpage.channel(&target).unwrap();
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    assert_eq!(mesh.mesh_client_checks(&channel).await, Ok(serving));

    // Once the registry says ratings runs as another account, the client
    // refuses the server it reaches: its certificate is ratings'.
    let impostor = mtls_mesh(mesh.port(), "impostor");
    std::fs::write(mesh.config.join("mesh.yaml"), impostor).unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let (ok, stdout) = mesh.productpage_calls(&python, &["1", "fail-fast"]).await;
            if !ok {
                return stdout;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the client refuses a server that is not who the registry says");
    assert!(refused.contains("UNAVAILABLE"), "{refused}");
    let impostor = "where spiffe://cluster.local/ns/default/sa/impostor was expected";
    let mut last = Ok(0);
    let refused = tokio::time::timeout(WAIT, async {
        loop {
            last = mesh.mesh_client_checks(&channel).await;
            if matches!(&last, Err(e) if e.contains(impostor)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        refused.is_ok(),
        "MeshClient never refused the impostor: {last:?}"
    );
}

/// ratings as a `MeshServer` built from the same bootstrap a grpcio
/// server reads, on `port` (joining the reserved port, as gRPC's servers
/// bind).
async fn start_mesh_server(bootstrap: &serde_json::Value, port: u16) -> mesh_tower::MeshServer {
    let bootstrap =
        mesh_xds::Bootstrap::from_json("ratings' bootstrap", &bootstrap.to_string()).unwrap();
    let mesh = mesh_tower::Mesh::builder()
        .bootstrap(bootstrap)
        .build()
        .unwrap();
    let server = mesh.server().build().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseport(true).unwrap();
    socket.bind(([127, 0, 0, 1], port).into()).unwrap();
    let listener = socket.listen(128).unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let serving = server.clone();
    tokio::spawn(async move { serving.serve(listener, health).await });
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpcio_client_calls_a_mesh_server_whose_mtls_and_rbac_come_from_mesh_control() {
    let Some(python) = grpcio().await else {
        return;
    };
    let mesh = MtlsMesh::start("grpcio-mesh-server");
    let server = start_mesh_server(&mesh.bootstrap("ratings"), mesh.port()).await;
    let mut modes = server.serving_mode();
    tokio::time::timeout(
        WAIT,
        modes.wait_for(|m| *m == mesh_tower::server::ServingMode::Serving),
    )
    .await
    .expect("the MeshServer serves by its listener from mesh-control")
    .unwrap();

    // productpage, grpcio's proxyless client, dials mutual TLS as the
    // DestinationRule says, checks the server is ratings, and the
    // MeshServer lets it in: STRICT and the AuthorizationPolicy, from
    // mesh-control.
    let ok = (true, r#"{"ok": 20}"#.to_owned());
    assert_eq!(mesh.productpage_calls(&python, &["20"]).await, ok);
    assert!(server.stats().mtls_connections() >= 1);

    // Plain text is refused; reviews is denied by the policy.
    mesh.assert_only_productpage_over_mtls().await;
}
