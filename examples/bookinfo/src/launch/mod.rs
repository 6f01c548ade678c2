//! The launcher: all of bookinfo in one process, as Istio runs it in a
//! cluster. An embedded control plane serves `config/` and `mtls/` (Istio
//! YAML, copied into the state directory, whose copy is followed on
//! change) over ADS on 127.0.0.1; its CA issues every workload a SPIFFE
//! certificate, and every call between services is mutual TLS (`STRICT`;
//! `plaintext/` instead turns it off). The workloads:
//!
//! - `productpage` v1 and `reviews` v1, v2, v3 (two instances each) link
//!   the library: the [`Mesh`](mesh_tower::Mesh) handle's client and
//!   server; reviews asks ratings over gRPC through
//!   `xds:///ratings.default.svc.cluster.local:9080`;
//! - `ratings` v1 links it too, HTTP and gRPC on one port;
//! - `details` v1 does not: a plain hyper server behind `mesh-sidecar`;
//! - the ingress gateway (`mesh-sidecar gateway`) on `127.0.0.1:PORT`,
//!   routing Istio's `bookinfo-gateway` (port 8080) to productpage.
//!
//! Each workload gets a free port of 127.0.0.1 and is registered with the
//! control plane as an instance of its service.

mod workload;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mesh_control::ControlPlane;
use mesh_control::ca::Ca;
use mesh_tower::admin::Lifecycle;
use mesh_tower::server::ServingMode;
use mesh_xds::server::AdsServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::productpage::{Productpage, Upstreams};
use crate::ratings::{Ratings, RatingsClient};
use crate::reviews::{Reviews, Version};
pub use workload::Spec;

/// The Gateway servers' port in bookinfo's Gateway.
const GATEWAY_SERVER_PORT: u16 = 8080;

/// The ingress gateway's identity, as Istio's chart names its account.
const GATEWAY_ID: &str =
    "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account";

/// How the launcher runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the gateway listens on 127.0.0.1 (0 for any free port).
    pub port: u16,
    /// The Istio YAML the control plane serves: copied into the state
    /// directory's `config/`, which is followed on change; an edit of a
    /// file here is copied there again.
    pub config: PathBuf,
    /// A scenario's Istio YAML, copied in beside it.
    pub scenario: Option<PathBuf>,
    /// Whether the services take and dial only mutual TLS ([`MTLS`]), or
    /// plain text ([`PLAINTEXT`]).
    pub mtls: bool,
    /// Where the CA, the workloads' certificates and the followed
    /// configuration are written.
    pub state: PathBuf,
}

/// The scenarios that come with bookinfo: Istio's task files.
pub const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");

/// The configuration that comes with bookinfo: its Services, and the
/// Gateway and VirtualService of its ingress.
pub const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config");

/// Mutual TLS everywhere: the DestinationRules dialling it
/// (`ISTIO_MUTUAL`) and a `STRICT` PeerAuthentication for the mesh.
pub const MTLS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/mtls");

/// Plain text everywhere: the DestinationRules without TLS and a
/// `DISABLE` PeerAuthentication.
pub const PLAINTEXT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/plaintext");

/// The scenario `name` (`virtual-service-reviews-test-v2`) of
/// [`SCENARIOS`], or why there is none: the names there are.
pub fn scenario(name: &str) -> Result<PathBuf, LaunchError> {
    let path = Path::new(SCENARIOS).join(format!("{name}.yaml"));
    if path.is_file() {
        return Ok(path);
    }
    let mut known: Vec<String> = std::fs::read_dir(SCENARIOS)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".yaml")
                .map(str::to_owned)
        })
        .collect();
    known.sort();
    Err(LaunchError::NoScenario {
        name: name.to_owned(),
        known: known.join(", "),
    })
}

/// Copies the YAML files of the directories `dirs` (not below them) and
/// `extra` into `to`.
fn copy_config(dirs: &[&Path], extra: Option<&Path>, to: &Path) -> Result<(), LaunchError> {
    let fail = |path: &Path, e: std::io::Error| LaunchError::Copy(path.to_owned(), e.to_string());
    std::fs::create_dir_all(to).map_err(|e| fail(to, e))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for from in dirs {
        for entry in std::fs::read_dir(from).map_err(|e| fail(from, e))? {
            let path = entry.map_err(|e| fail(from, e))?.path();
            let yaml = matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            );
            if yaml && path.is_file() {
                files.push(path);
            }
        }
    }
    files.extend(extra.map(Path::to_owned));
    for file in files {
        let Some(name) = file.file_name() else {
            continue;
        };
        std::fs::copy(&file, to.join(name)).map_err(|e| fail(&file, e))?;
    }
    Ok(())
}

/// Copies the YAML files of `from` into `to` again whenever they change
/// (as the control plane follows `to`), so that an edit of the
/// configuration given applies as one of its copy does; never returns.
async fn mirror_edits(from: PathBuf, to: PathBuf) {
    let seen = mesh_control::config_dir::fingerprint(&from).ok();
    let changed = || {
        let (from, to) = (from.clone(), to.clone());
        async move {
            if let Err(error) = copy_config(&[&from], None, &to) {
                tracing::error!(%error, "the edited configuration was not copied");
            }
        }
    };
    let unreadable = |error: mesh_control::config_dir::LoadError| {
        tracing::error!(%error, "cannot read the configuration given");
    };
    mesh_control::watch::follow(from.clone(), seen, changed, unreadable).await;
}

/// Why bookinfo could not start.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A port cannot be listened on.
    #[error("cannot listen on {addr} for {what}: {source}")]
    Bind {
        /// What would have listened.
        what: String,
        /// Where.
        addr: SocketAddr,
        /// Why (taken, say).
        source: std::io::Error,
    },
    /// The configuration does not load.
    #[error("the configuration in {dir} does not load:\n{errors}")]
    Config {
        /// The directory.
        dir: PathBuf,
        /// Each error, a line each.
        errors: String,
    },
    /// The CA cannot be set up.
    #[error("the CA in {0}: {1}")]
    Ca(PathBuf, String),
    /// A workload's certificate cannot be issued.
    #[error("the certificate of {0}: {1}")]
    Certificate(String, String),
    /// A workload's bootstrap cannot be made.
    #[error(transparent)]
    Source(#[from] mesh_sidecar::source::SourceError),
    /// A workload's mesh cannot be set up.
    #[error(transparent)]
    Mesh(#[from] mesh_tower::MeshError),
    /// A workload's server cannot be built.
    #[error(transparent)]
    Server(#[from] mesh_tower::server::ServerError),
    /// A gRPC target is not one.
    #[error(transparent)]
    Target(#[from] mesh_tower::client::InvalidTarget),
    /// No scenario has the name asked for.
    #[error("no scenario {name}: there are {known}")]
    NoScenario {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: String,
    },
    /// The configuration cannot be copied.
    #[error("cannot copy {0}: {1}")]
    Copy(PathBuf, String),
}

/// A workload that is running: its name, its admin, and how it says it
/// is ready.
#[derive(Debug)]
pub struct Started {
    /// The pod's name (`reviews-v2-1`), or `istio-ingressgateway`.
    pub name: String,
    /// Where its service is reached (details: its sidecar's inbound
    /// listener).
    pub addr: SocketAddr,
    /// Its admin's address.
    pub admin: SocketAddr,
    ready: Ready,
    /// Its server's task.
    task: tokio::task::AbortHandle,
    /// Its instance, while it is registered (the gateway has none).
    instance: Option<mesh_core::registry::Instance>,
}

/// How a workload says it is ready.
#[derive(Debug)]
enum Ready {
    /// Its server serves.
    Serving(watch::Receiver<ServingMode>),
    /// Its admin's `/ready` answers `200`.
    Admin,
}

/// bookinfo, running.
#[derive(Debug)]
pub struct Running {
    /// The gateway's address.
    pub gateway: SocketAddr,
    /// The configuration followed: copy a file in to apply it.
    pub config: PathBuf,
    /// The control plane.
    pub plane: ControlPlane,
    /// Every workload, in the order started.
    pub workloads: Vec<Started>,
    shutdown: watch::Sender<bool>,
    lifecycles: Vec<watch::Sender<Lifecycle>>,
    /// The workloads' servers, which end once drained.
    servers: JoinSet<()>,
    /// The control plane, admins and plain servers, which never end.
    tasks: JoinSet<()>,
}

/// Every workload but the gateway, in the order they start.
pub const WORKLOADS: [Spec; 9] = [
    Spec {
        app: "ratings",
        version: "v1",
        instance: 0,
    },
    Spec {
        app: "reviews",
        version: "v1",
        instance: 0,
    },
    Spec {
        app: "reviews",
        version: "v1",
        instance: 1,
    },
    Spec {
        app: "reviews",
        version: "v2",
        instance: 0,
    },
    Spec {
        app: "reviews",
        version: "v2",
        instance: 1,
    },
    Spec {
        app: "reviews",
        version: "v3",
        instance: 0,
    },
    Spec {
        app: "reviews",
        version: "v3",
        instance: 1,
    },
    Spec {
        app: "details",
        version: "v1",
        instance: 0,
    },
    Spec {
        app: "productpage",
        version: "v1",
        instance: 0,
    },
];

async fn bind(what: &str, addr: SocketAddr) -> Result<TcpListener, LaunchError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| LaunchError::Bind {
            what: what.to_owned(),
            addr,
            source,
        })
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Starts bookinfo as `options` say; it runs until
/// [`shutdown`](Running::shutdown).
pub async fn start(options: &Options) -> Result<Running, LaunchError> {
    let gateway_listener = bind("the gateway", loopback(options.port)).await?;
    let gateway = gateway_listener
        .local_addr()
        .map_err(|source| LaunchError::Bind {
            what: "the gateway".into(),
            addr: loopback(options.port),
            source,
        })?;

    let config = options.state.join("config");
    let security = Path::new(if options.mtls { MTLS } else { PLAINTEXT });
    copy_config(
        &[options.config.as_path(), security],
        options.scenario.as_deref(),
        &config,
    )?;
    let plane = ControlPlane::new("cluster.local");
    let loaded = mesh_control::config_dir::load(&config, "cluster.local").map_err(|errors| {
        LaunchError::Config {
            dir: config.clone(),
            errors: errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        }
    })?;
    for warning in &loaded.warnings {
        tracing::info!(%warning, "configuration");
    }
    plane.apply(loaded);
    let mut tasks = JoinSet::new();
    tasks.spawn(mesh_control::watch::watch(plane.clone(), config.clone()));
    tasks.spawn(mirror_edits(options.config.clone(), config.clone()));
    let xds_listener = bind("the control plane", loopback(0)).await?;
    let xds = xds_listener
        .local_addr()
        .map_err(|source| LaunchError::Bind {
            what: "the control plane".into(),
            addr: loopback(0),
            source,
        })?;
    let ads = tonic::transport::Server::builder()
        .add_service(AdsServer::new(plane.clone()).into_service())
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(xds_listener));
    tasks.spawn(async move {
        if let Err(error) = ads.await {
            tracing::error!(%error, "the control plane stopped");
        }
    });

    let ca_dir = options.state.join("ca");
    let ca = Ca::init(&ca_dir).map_err(|e| LaunchError::Ca(ca_dir.clone(), e.to_string()))?;
    let (shutdown, _) = watch::channel(false);
    let mut running = Running {
        gateway,
        config,
        plane: plane.clone(),
        workloads: Vec::new(),
        shutdown,
        lifecycles: Vec::new(),
        servers: JoinSet::new(),
        tasks,
    };
    for spec in WORKLOADS {
        let certs = spec.certify(&ca, &options.state)?;
        let (mut started, addr) = running.workload(spec, xds, &certs).await?;
        started.instance = Some(spec.instance(addr));
        running.workloads.push(started);
    }
    running.register();
    let gateway_certs = options.state.join("istio-ingressgateway");
    ca.issue(GATEWAY_ID, Duration::from_secs(24 * 3600))
        .and_then(|cert| cert.write(&gateway_certs))
        .map_err(|e| LaunchError::Certificate("istio-ingressgateway".into(), e.to_string()))?;
    let started = running
        .gateway(gateway_listener, xds, &gateway_certs)
        .await?;
    running.workloads.push(started);
    Ok(running)
}

impl Running {
    /// Starts the workload `spec`, following the control plane at `xds`
    /// with its certificates in `certs`: it, and the address its service
    /// is reached at.
    async fn workload(
        &mut self,
        spec: Spec,
        xds: SocketAddr,
        certs: &Path,
    ) -> Result<(Started, SocketAddr), LaunchError> {
        if spec.app == "details" {
            return self.details(spec, xds, certs).await;
        }
        let mesh = spec.mesh(xds, certs).await?;
        let listener = bind(&spec.pod(), loopback(0)).await?;
        let admin_listener = bind(&format!("the admin of {}", spec.pod()), loopback(0)).await?;
        let (addr, admin) = (local(&listener)?, local(&admin_listener)?);
        let server = mesh.server().build()?;
        let mut admin_page = mesh
            .admin(prometheus_client::registry::Registry::default())
            .server("inbound", &server);
        let stop = self.stopping();
        let task = match spec.app {
            "ratings" => self
                .servers
                .spawn(serve(server.clone(), listener, Ratings, stop)),
            "reviews" => {
                let version = match spec.version {
                    "v1" => Version::V1,
                    "v2" => Version::V2,
                    _ => Version::V3,
                };
                let channel = mesh.channel("xds:///ratings.default.svc.cluster.local:9080")?;
                let reviews =
                    Reviews::new(version, &spec.pod(), "null", RatingsClient::new(channel));
                self.servers
                    .spawn(serve(server.clone(), listener, reviews, stop))
            }
            _ => {
                let client = mesh.client();
                admin_page = admin_page.client("outbound", &client);
                let page = Productpage::new(mesh.reported(client), Upstreams::default());
                self.servers
                    .spawn(serve(server.clone(), listener, page, stop))
            }
        };
        self.tasks.spawn(admin_page.build().serve(admin_listener));
        let started = Started {
            name: spec.pod(),
            addr,
            admin,
            ready: Ready::Serving(server.serving_mode()),
            task,
            instance: None,
        };
        Ok((started, addr))
    }

    /// details: a plain server on a free port, behind `mesh-sidecar`.
    async fn details(
        &mut self,
        spec: Spec,
        xds: SocketAddr,
        certs: &Path,
    ) -> Result<(Started, SocketAddr), LaunchError> {
        let app = bind(&spec.pod(), loopback(0)).await?;
        let app_port = local(&app)?.port();
        self.tasks.spawn(crate::http::serve_plain(
            app,
            tower::service_fn(crate::details::handle),
        ));
        // Built whole, so that no MESH_* of the launcher's environment
        // reaches it.
        let (source, workload) = spec.source_and_workload(xds, certs);
        let args = mesh_sidecar::cli::SidecarArgs {
            source,
            workload,
            outbound_addr: loopback(0),
            inbound_addr: loopback(0),
            app_port,
            admin_addr: loopback(0),
            intercept: false,
            concurrency: 1,
            header_read_timeout: mesh_tower::server::DEFAULT_HEADER_READ_TIMEOUT,
            access_log: None,
            access_log_format: mesh_tower::access_log::Format::Text,
            drain_timeout: mesh_tower::server::DEFAULT_DRAIN_TIMEOUT,
        };
        let listeners = mesh_sidecar::sidecar::Listeners::bind(&args)
            .await
            .map_err(|e| LaunchError::Bind {
                what: format!("the sidecar of {}: {}", spec.pod(), e.what),
                addr: e.addr,
                source: e.source,
            })?;
        let (inbound, admin) = (local(&listeners.inbound)?, local(&listeners.admin)?);
        let lifecycle = self.lifecycle();
        let name = spec.pod();
        let task = self.servers.spawn(async move {
            if let Err(error) = mesh_sidecar::sidecar::serve(args, listeners, lifecycle).await {
                tracing::error!(%error, workload = name, "the sidecar stopped");
            }
        });
        let started = Started {
            name: spec.pod(),
            addr: inbound,
            admin,
            ready: Ready::Admin,
            task,
            instance: None,
        };
        Ok((started, inbound))
    }

    /// The ingress gateway on `listener`, with its certificates in
    /// `certs`.
    async fn gateway(
        &mut self,
        listener: TcpListener,
        xds: SocketAddr,
        certs: &Path,
    ) -> Result<Started, LaunchError> {
        let addr = local(&listener)?;
        let args = mesh_sidecar::cli::GatewayArgs {
            source: mesh_sidecar::cli::SourceArgs {
                bootstrap: None,
                xds: Some(xds.to_string()),
                config: None,
            },
            node_id: None,
            listen: addr,
            server_port: Some(GATEWAY_SERVER_PORT),
            namespace: "istio-system".into(),
            labels: vec![("istio".into(), "ingressgateway".into())],
            cluster_domain: "cluster.local".into(),
            cert_dir: Some(certs.to_owned()),
            admin_addr: loopback(0),
            concurrency: 1,
            header_read_timeout: mesh_tower::server::DEFAULT_HEADER_READ_TIMEOUT,
            drain_timeout: mesh_tower::server::DEFAULT_DRAIN_TIMEOUT,
        };
        let admin_listener = bind("the gateway's admin", loopback(0)).await?;
        let admin = local(&admin_listener)?;
        let listeners = mesh_sidecar::gateway::Listeners {
            gateway: listener,
            admin: admin_listener,
        };
        let lifecycle = self.lifecycle();
        let task = self.servers.spawn(async move {
            if let Err(error) = mesh_sidecar::gateway::serve(args, listeners, lifecycle).await {
                tracing::error!(%error, "the gateway stopped");
            }
        });
        Ok(Started {
            name: "istio-ingressgateway".into(),
            addr,
            admin,
            ready: Ready::Admin,
            task,
            instance: None,
        })
    }

    /// A signal the library's servers stop on.
    fn stopping(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut down = self.shutdown.subscribe();
        async move {
            let _ = down.wait_for(|down| *down).await;
        }
    }

    /// A lifecycle the launcher moves at shutdown.
    fn lifecycle(&mut self) -> watch::Sender<Lifecycle> {
        let (lifecycle, _) = watch::channel(Lifecycle::Running);
        self.lifecycles.push(lifecycle.clone());
        lifecycle
    }

    /// Waits until `workload` says it is ready, for at most `wait`:
    /// whether it did.
    pub async fn ready(workload: &Started, wait: Duration) -> bool {
        let check = async {
            match &workload.ready {
                Ready::Serving(mode) => {
                    let mut mode = mode.clone();
                    mode.wait_for(|m| *m == ServingMode::Serving).await.is_ok()
                }
                Ready::Admin => loop {
                    if admin_ready(workload.admin).await {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                },
            }
        };
        tokio::time::timeout(wait, check).await.unwrap_or(false)
    }

    /// Registers every workload's instance with the control plane, as
    /// Kubernetes' endpoints have each ready pod.
    fn register(&self) {
        let instances = self.workloads.iter().filter_map(|w| w.instance.clone());
        self.plane.set_instances("bookinfo", instances.collect());
    }

    /// Kills the workload `name` (`reviews-v2-0`) as a crashing pod dies:
    /// its listener and every connection closed at once, nothing drained;
    /// then its instance is unregistered, as Kubernetes drops a dead pod's
    /// endpoint. Whether there was one of that name.
    pub fn kill(&mut self, name: &str) -> bool {
        let Some(workload) = self.workloads.iter_mut().find(|w| w.name == name) else {
            return false;
        };
        workload.task.abort();
        workload.instance = None;
        self.register();
        true
    }

    /// Stops every workload, letting what is in flight finish, and the
    /// control plane.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        for lifecycle in &self.lifecycles {
            Lifecycle::advance(lifecycle, Lifecycle::Quitting);
        }
        // Each server drains within its drain timeout; then the control
        // plane and the admins go.
        while self.servers.join_next().await.is_some() {}
        self.tasks.shutdown().await;
    }
}

/// Serves `service` on `listener` with `server` until `stop`.
async fn serve<S, B>(
    server: mesh_tower::MeshServer,
    listener: TcpListener,
    service: S,
    stop: impl std::future::Future<Output = ()>,
) where
    S: tower::Service<http::Request<mesh_tower::server::Body>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<mesh_tower::BoxError>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<mesh_tower::BoxError>,
{
    server.serve_with_shutdown(listener, service, stop).await;
}

fn local(listener: &TcpListener) -> Result<SocketAddr, LaunchError> {
    listener.local_addr().map_err(|source| LaunchError::Bind {
        what: "a listener".into(),
        addr: loopback(0),
        source,
    })
}

/// Whether the admin at `addr` answers `/ready` with `200`.
async fn admin_ready(addr: SocketAddr) -> bool {
    use http_body_util::Empty;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let Ok(uri) = format!("http://{addr}/ready").parse::<http::Uri>() else {
        return false;
    };
    matches!(client.get(uri).await, Ok(res) if res.status() == http::StatusCode::OK)
}
