//! `mesh-sidecar gateway`: the ingress gateway, as Istio's
//! `istio-ingressgateway` is one. The Gateways its labels select
//! (`istio: ingressgateway` by default) and the VirtualServices bound to
//! them decide host and path, through the same conversion a control
//! plane serves Envoy gateways ([`mesh_istio::Resources::gateway_ports`]):
//! a request is matched against the route table of the Gateway server on
//! the port it listens on (`http.8080`), and goes to its destination over
//! the mesh's client; what no route takes is `404`. A port whose servers
//! terminate TLS (`SIMPLE`, `MUTUAL`) takes TLS only, each connection
//! served by the server its SNI chooses and routed by that server's table
//! ([`mesh_tower::tls::TlsTermination`]).
//!
//! The configuration comes from a directory of Istio YAML (`--config`),
//! followed on change: an edit that does not load, or whose certificates
//! cannot be read, is logged and the last good configuration stays. The
//! certificate files a server names are read when the directory loads: a
//! certificate renewed on disk is served from the next edit of the
//! directory on. Or
//! from a control plane (`--xds`, `--bootstrap`): the gateway is a
//! proxyless `router~` node, and asks for its port's route table by name
//! (`http.8080`) as a listener, which `mesh-control` serves from the same
//! conversion it serves Envoy gateways (the same route configuration,
//! clusters and endpoints). Its server follows the port's listener, asked
//! for as a proxyless server asks for its own
//! (`xds.istio.io/grpc/lds/inbound/IP:PORT`, the listen address's IP and
//! the Gateway's port), which `mesh-control` serves as the listener an
//! Envoy gateway gets for the port: a TLS server's certificate comes in it
//! (files) or by SDS (a `credentialName` Secret, sent only to a gateway
//! that proves its identity: `--cert-dir`). It is ready once the port's
//! listener and its route table have come.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mesh_core::cluster::Cluster;
use mesh_core::{Authority, MeshConfig, StaticResolve};
use mesh_istio::{Resources, Workload};
use mesh_tower::tls::TlsTermination;

/// What a gateway routes by, read from a directory.
#[derive(Debug)]
pub struct GatewayConfig {
    /// The client's configuration.
    pub config: MeshConfig,
    /// The TLS the port terminates, when its servers do.
    pub termination: Option<TlsTermination>,
    /// The endpoints of every service, by `host:port`.
    pub endpoints: Vec<(Authority, mesh_core::EndpointSet)>,
}

/// Why a directory gives no gateway configuration.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// It does not load.
    #[error(transparent)]
    Load(#[from] mesh_tower::istio::LoadError),
    /// A resource cannot be honoured.
    #[error(transparent)]
    Istio(#[from] mesh_istio::IstioError),
    /// No Gateway selects this gateway's labels.
    #[error("no Gateway selects the labels {0:?}")]
    NoGateway(BTreeMap<String, String>),
    /// No Gateway server is on the port listened on.
    #[error("no server of the Gateways {gateways:?} is on port {port}")]
    NoServer {
        /// The Gateways.
        gateways: Vec<String>,
        /// The port.
        port: u16,
    },
    /// A listener cannot be bound.
    #[error(transparent)]
    Bind(#[from] crate::lifecycle::BindError),
    /// The control plane's bootstrap cannot be used.
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// Its server cannot be built.
    #[error(transparent)]
    Server(#[from] mesh_tower::server::ServerError),
    /// The mesh cannot be set up.
    #[error(transparent)]
    Mesh(#[from] mesh_tower::MeshError),
    /// The listeners' addresses could not be written out.
    #[error("cannot write the listeners' addresses: {0}")]
    Announce(std::io::Error),
    /// A server's TLS cannot be set up.
    #[error(transparent)]
    Termination(#[from] mesh_tower::tls::TerminationError),
    /// The gateway's own certificates (`--cert-dir`) cannot be read.
    #[error(transparent)]
    Identity(#[from] mesh_tower::tls::IdentityError),
}

/// The configuration of a gateway with `labels` in `namespace`, serving
/// `port`, from the Istio YAML in `dir`.
pub fn load(
    dir: &Path,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    port: u16,
    cluster_domain: &str,
) -> Result<GatewayConfig, GatewayError> {
    let (resources, warnings) = mesh_tower::istio::read_resources(dir)?;
    for warning in &warnings {
        tracing::warn!(%warning, "configuration");
    }
    let gateways: Vec<String> = resources
        .gateways_for(labels)
        .iter()
        .map(|g| g.resource.qualified_name())
        .collect();
    if gateways.is_empty() {
        return Err(GatewayError::NoGateway(labels.clone()));
    }
    let workload = Workload {
        namespace: namespace.to_owned(),
        cluster_domain: cluster_domain.to_owned(),
        labels: labels.clone(),
        gateways: gateways.clone(),
    };
    let ports = resources.gateway_ports(&workload)?;
    let servers = ports
        .iter()
        .find(|p| p.number == port)
        .map_or(&[][..], |p| p.servers.as_slice());
    if servers.is_empty() {
        return Err(GatewayError::NoServer { gateways, port });
    }
    // A port is plain text or TLS, never both (as istiod merges servers).
    let termination = if servers.iter().any(|s| s.tls.is_some()) {
        Some(TlsTermination::new(servers)?)
    } else {
        None
    };
    let (config, more) = resources.convert(&workload)?;
    for warning in &more {
        tracing::warn!(%warning, "configuration");
    }
    Ok(GatewayConfig {
        config,
        termination,
        endpoints: endpoints(&resources, cluster_domain)?,
    })
}

/// Every port of every service of `resources`' registry, with its
/// endpoints.
fn endpoints(
    resources: &Resources,
    cluster_domain: &str,
) -> Result<Vec<(Authority, mesh_core::EndpointSet)>, GatewayError> {
    let registry = resources.registry(cluster_domain)?;
    let mut all = Vec::new();
    for service in registry.services() {
        for port in &service.ports {
            let Ok(authority) = Authority::new(&service.hostname, port.number) else {
                continue;
            };
            let whole = Cluster::service(&authority);
            all.push((
                authority.clone(),
                registry.endpoints(&service.hostname, port.number, &whole),
            ));
        }
    }
    Ok(all)
}

/// Puts `loaded` where the gateway's client, resolver and server read
/// it.
pub fn apply<B>(
    loaded: GatewayConfig,
    client: &mesh_tower::MeshClient<B>,
    resolve: &StaticResolve,
    server: &mesh_tower::MeshServer,
) where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<mesh_tower::BoxError>,
{
    for (authority, endpoints) in loaded.endpoints {
        resolve.set(&authority, endpoints);
    }
    server.set_tls_termination(loaded.termination);
    client.set_config(loaded.config);
}

/// Loads `dir` again whenever its files change (as a control plane
/// follows its directory, [`mesh_control::watch::follow`]) and hands each
/// configuration that loads to `apply`, from the fingerprint `seen` it
/// was first loaded at; never returns.
pub async fn follow<R, A>(dir: PathBuf, seen: Option<u64>, reload: R, apply: A)
where
    R: Fn() -> Result<GatewayConfig, GatewayError> + Clone + Send + 'static,
    A: Fn(GatewayConfig),
{
    let changed = || {
        let reload = reload.clone();
        let apply = &apply;
        let dir = &dir;
        async move {
            match tokio::task::spawn_blocking(reload).await {
                Ok(Ok(loaded)) => {
                    tracing::info!(dir = %dir.display(), "gateway configuration applied");
                    apply(loaded);
                }
                Ok(Err(error)) => tracing::error!(
                    %error,
                    "gateway configuration rejected; the last good one is still served"
                ),
                Err(error) => tracing::error!(%error, "loading the gateway configuration failed"),
            }
        }
    };
    let unreadable = |error: mesh_control::config_dir::LoadError| {
        tracing::error!(%error, "cannot read the gateway configuration; the last good one is still served");
    };
    mesh_control::watch::follow(dir.clone(), seen, changed, unreadable).await;
}

/// The gateway's listeners, bound.
#[derive(Debug)]
pub struct Listeners {
    /// Where it takes requests.
    pub gateway: tokio::net::TcpListener,
    /// The admin.
    pub admin: tokio::net::TcpListener,
}

impl Listeners {
    /// The listeners `args` name, bound.
    pub async fn bind(args: &crate::cli::GatewayArgs) -> Result<Self, crate::lifecycle::BindError> {
        use crate::lifecycle::bind;
        Ok(Self {
            gateway: bind("gateway listener", args.listen).await?,
            admin: bind("admin", args.admin_addr).await?,
        })
    }
}

/// Runs the gateway until it is told to quit and has drained. Writes
/// each listener's address on standard output (`gateway …`, `admin …`).
pub async fn run(args: crate::cli::GatewayArgs) -> Result<(), GatewayError> {
    use crate::lifecycle::{announce, on_signals};
    let listeners = Listeners::bind(&args).await?;
    announce(&[("gateway", &listeners.gateway), ("admin", &listeners.admin)])
        .map_err(GatewayError::Announce)?;
    let (lifecycle, _) = tokio::sync::watch::channel(mesh_tower::admin::Lifecycle::Running);
    on_signals(lifecycle.clone());
    serve(args, listeners, lifecycle).await
}

/// Serves on `listeners` until `lifecycle` (which the admin's
/// `POST /quitquitquit` also moves) reaches quitting, draining first:
/// the gateway inside another process, which owns its signals. Its port
/// is the one `args` names, else the listener's.
pub async fn serve(
    args: crate::cli::GatewayArgs,
    listeners: Listeners,
    lifecycle: tokio::sync::watch::Sender<mesh_tower::admin::Lifecycle>,
) -> Result<(), GatewayError> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use mesh_core::security::MtlsMode;
    use mesh_tower::admin::Lifecycle;
    use mesh_tower::proxy::Outbound;
    use mesh_tower::route::ForListener;

    use crate::lifecycle::reached;

    let Listeners {
        gateway: listener,
        admin: admin_listener,
    } = listeners;
    let labels: BTreeMap<String, String> = args.labels.iter().cloned().collect();
    let port = match (args.server_port, listener.local_addr()) {
        (Some(port), _) => port,
        (None, Ok(addr)) => addr.port(),
        (None, Err(_)) => args.listen.port(),
    };
    let workload = mesh_core::telemetry::WorkloadMetadata::from_labels(
        "istio-ingressgateway",
        &args.namespace,
        "istio-ingressgateway",
        &labels,
    );
    let server = mesh_tower::MeshServer::builder()
        .mtls(MtlsMode::Disable)
        .header_read_timeout(args.header_read_timeout)
        .drain_timeout(args.drain_timeout);
    // Plain-text connections are routed by the port's table; TLS ones by
    // their server's, which their connection gives them.
    let routes = mesh_core::gateway::http_routes(port);
    let ready = Arc::new(AtomicBool::new(false));

    let node_id = args.node_id.clone().unwrap_or_else(|| {
        format!(
            "router~{}~istio-ingressgateway.{ns}~{ns}.svc.{}",
            args.listen.ip(),
            args.cluster_domain,
            ns = args.namespace
        )
    });
    let bootstrap = crate::source::gateway_bootstrap(
        &args.source,
        &node_id,
        &args.namespace,
        &args.labels,
        args.cert_dir.as_deref(),
    )?;
    let (mesh, client, server) = match (bootstrap, &args.source.config) {
        (Some(bootstrap), _) => {
            let mesh = mesh_tower::Mesh::builder()
                .bootstrap(bootstrap)
                .workload(workload)
                .build()?;
            let client = mesh.client();
            // The port's listener, named by the Gateway's port.
            let known_as = std::net::SocketAddr::new(args.listen.ip(), port);
            let server = match mesh.ads() {
                Some(ads) => {
                    let routed = until_routed(client.clone(), ads.clone(), known_as, ready.clone());
                    tokio::spawn(routed);
                    server.xds(ads.clone()).xds_address(known_as)
                }
                None => server,
            };
            (mesh, client, server.build()?)
        }
        (None, Some(dir)) => {
            let resolve = StaticResolve::default();
            let mut mesh = mesh_tower::Mesh::builder()
                .resolve(resolve.clone())
                .workload(workload);
            if let Some(certs) = &args.cert_dir {
                let files = mesh_tower::tls::IdentityFiles::in_dir(certs);
                let identity = mesh_tower::tls::IdentitySource::from_files(files)?;
                mesh = mesh.identity(identity.watch(crate::source::CERT_REFRESH));
            }
            let mesh = mesh.build()?;
            let client = mesh.client();
            let server = server.build()?;
            let reload = {
                let (dir, namespace, domain) = (
                    dir.clone(),
                    args.namespace.clone(),
                    args.cluster_domain.clone(),
                );
                move || load(&dir, &namespace, &labels, port, &domain)
            };
            // Taken before the first load, so that an edit made during it
            // is loaded again.
            let seen = mesh_control::config_dir::fingerprint(dir).ok();
            apply(reload()?, &client, &resolve, &server);
            ready.store(true, Ordering::Release);
            let (following, applied) = (client.clone(), server.clone());
            tokio::spawn(follow(dir.clone(), seen, reload, move |loaded| {
                apply(loaded, &following, &resolve, &applied)
            }));
            (mesh, client, server)
        }
        (None, None) => return Err(crate::source::SourceError::Missing.into()),
    };

    let admin = mesh
        .admin(prometheus_client::registry::Registry::default())
        .client("gateway", &client)
        .server("gateway", &server)
        .lifecycle(lifecycle.clone())
        .ready_when({
            let serving = server.serving_mode();
            move || {
                ready.load(Ordering::Acquire)
                    && *serving.borrow() == mesh_tower::server::ServingMode::Serving
            }
        })
        .build();
    tokio::spawn(admin.serve(admin_listener));
    let service = mesh.reported(Outbound::ingress(ForListener::new(client, &routes)));
    server
        .serve_with_shutdown(
            listener,
            service,
            reached(lifecycle.subscribe(), Lifecycle::Draining),
        )
        .await;
    reached(lifecycle.subscribe(), Lifecycle::Quitting).await;
    Ok(())
}

/// How long a gateway whose routes did not come waits before asking
/// again.
const ROUTES_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits for the listener of the gateway's port (on `known_as`) from
/// `ads`, then asks `client`'s control plane for each of its servers'
/// route tables until they come; then marks the gateway `ready`.
async fn until_routed<B>(
    client: mesh_tower::MeshClient<B>,
    ads: mesh_xds::ads::AdsHandle,
    known_as: std::net::SocketAddr,
    ready: std::sync::Arc<std::sync::atomic::AtomicBool>,
) where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<mesh_tower::BoxError>,
{
    let name = ads.bootstrap().server_listener_name(known_as);
    let mut updates = ads.updates();
    let tables = loop {
        let tables = updates
            .borrow_and_update()
            .listeners
            .get(&name)
            .and_then(|l| l.gateway.as_ref())
            .map(|g| {
                g.servers
                    .iter()
                    .map(|s| s.routes.clone())
                    .collect::<Vec<_>>()
            });
        if let Some(tables) = tables {
            break tables;
        }
        if updates.changed().await.is_err() {
            return;
        }
    };
    for routes in tables {
        while let Err(error) = client.ready(&routes).await {
            tracing::warn!(%error, routes, "the gateway's routes have not come; asking again");
            tokio::time::sleep(ROUTES_RETRY).await;
        }
        tracing::info!(routes, "gateway routes arrived");
    }
    ready.store(true, std::sync::atomic::Ordering::Release);
}
