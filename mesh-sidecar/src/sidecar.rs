//! `mesh-sidecar sidecar`: the outbound and inbound listeners and the
//! admin of one application, from the library's parts.

use std::net::SocketAddr;

use mesh_core::security::MtlsMode;
use mesh_core::telemetry::WorkloadMetadata;
use mesh_tower::access_log::AccessLog;
use mesh_tower::admin::Lifecycle;
use mesh_tower::proxy::{Inbound, Outbound};
use mesh_tower::server::{Body, ServerError, ServingMode};
use mesh_tower::{Mesh, MeshError, MeshServer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cli::{SidecarArgs, WorkloadArgs};
use crate::lifecycle::{BindError, announce, bind, on_signals, reached};
use crate::source::{self, SourceError};

/// Why the sidecar could not start.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// A listener's address is taken or not allowed.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The configuration source cannot be used.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The mesh cannot be set up from it.
    #[error(transparent)]
    Mesh(#[from] MeshError),
    /// A listener's server cannot be built.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The access log cannot be opened.
    #[error("cannot open the access log {path}: {source}")]
    AccessLog {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The listeners' addresses could not be written out.
    #[error("cannot write the listeners' addresses: {0}")]
    Announce(std::io::Error),
}

/// The sidecar's listeners, bound.
#[derive(Debug)]
pub struct Listeners {
    /// Where the application sends its requests out.
    pub outbound: TcpListener,
    /// Where the mesh's requests for the application come in.
    pub inbound: TcpListener,
    /// The admin.
    pub admin: TcpListener,
}

impl Listeners {
    /// The listeners `args` name, bound.
    pub async fn bind(args: &SidecarArgs) -> Result<Self, BindError> {
        Ok(Self {
            outbound: bind("outbound listener", args.outbound_addr).await?,
            inbound: bind("inbound listener", args.inbound_addr).await?,
            admin: bind("admin", args.admin_addr).await?,
        })
    }
}

/// Runs the sidecar until it is told to quit (SIGTERM, SIGINT,
/// `POST /quitquitquit`) and has drained. Writes each listener's address
/// on standard output once bound (`outbound 127.0.0.1:15001`, `inbound …`,
/// `admin …`).
pub async fn run(args: SidecarArgs) -> Result<(), SidecarError> {
    let listeners = Listeners::bind(&args).await?;
    announce(&[
        ("outbound", &listeners.outbound),
        ("inbound", &listeners.inbound),
        ("admin", &listeners.admin),
    ])
    .map_err(SidecarError::Announce)?;
    let (lifecycle, _) = watch::channel(Lifecycle::Running);
    on_signals(lifecycle.clone());
    serve(args, listeners, lifecycle).await
}

/// Serves on `listeners` until `lifecycle` (which the admin's
/// `POST /quitquitquit` also moves) reaches quitting, draining first:
/// the sidecar inside another process, which owns its signals.
pub async fn serve(
    args: SidecarArgs,
    listeners: Listeners,
    lifecycle: watch::Sender<Lifecycle>,
) -> Result<(), SidecarError> {
    let bootstrap = source::bootstrap(&args.source, &args.workload).await?;
    let mut mesh = Mesh::builder()
        .bootstrap(bootstrap)
        .workload(workload(&args.workload));
    if let Some(path) = &args.access_log {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| SidecarError::AccessLog {
                path: path.clone(),
                source,
            })?;
        mesh = mesh.access_log(AccessLog::new(args.access_log_format, file));
    }
    let mesh = mesh.build()?;

    let client = mesh.client();
    let mut outbound = MeshServer::builder();
    if args.intercept {
        outbound = outbound.connection_filter(mesh_tower::proxy::intercept::filter());
    }
    let outbound = outbound
        .mtls(MtlsMode::Disable)
        .header_read_timeout(args.header_read_timeout)
        .drain_timeout(args.drain_timeout)
        .build()?;
    // The control plane knows the application by its own port.
    let known_as = SocketAddr::new(args.workload.instance_ip, args.app_port);
    let inbound = mesh
        .server()
        .xds_address(known_as)
        .header_read_timeout(args.header_read_timeout)
        .drain_timeout(args.drain_timeout)
        .build()?;
    let own_id = mesh
        .identity()
        .and_then(|identity| identity.current())
        .map(|identity| identity.id().to_string());
    let app = SocketAddr::from(([127, 0, 0, 1], args.app_port));

    let serving = inbound.serving_mode();
    let admin = mesh
        .admin(Registry::default())
        .client("outbound", &client)
        .server("inbound", &inbound)
        .server("outbound", &outbound)
        .lifecycle(lifecycle.clone())
        .ready_when(move || *serving.borrow() == ServingMode::Serving)
        .build();
    tokio::spawn(admin.serve(listeners.admin));

    let draining = || reached(lifecycle.subscribe(), Lifecycle::Draining);
    tokio::join!(
        outbound.serve_with_shutdown(
            listeners.outbound,
            mesh.reported(Outbound::new(client)),
            draining()
        ),
        inbound.serve_with_shutdown(
            listeners.inbound,
            Inbound::<Body>::new(app, own_id.as_deref()),
            draining()
        ),
    );
    tracing::info!("listeners drained");
    reached(lifecycle.subscribe(), Lifecycle::Quitting).await;
    Ok(())
}

/// The workload's metadata, for its peers and its metrics' labels.
fn workload(w: &WorkloadArgs) -> WorkloadMetadata {
    let labels = w.labels.iter().cloned().collect();
    WorkloadMetadata::from_labels(&w.workload, &w.namespace, &w.workload, &labels)
}
