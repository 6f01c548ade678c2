//! `mesh-control`: the mesh's local control plane. `serve` serves ADS
//! from a directory of Istio YAML it follows, in plain text on loopback and,
//! with `--ca`, over mutual TLS to clients known by their certificates,
//! with admin endpoints beside;
//! `translate` prints what it would serve as JSON; `ca init` makes a root and `ca issue` writes a workload certificate in
//! Istio's layout.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use envoy_types::pb::envoy::config::core::v3::Node;
use mesh_control::ca::{Ca, SpiffeId, parse_ttl};
use mesh_control::secure::{self, ControlPlaneIdentity};
use mesh_control::{ControlPlane, MAX_NODE_CLASSES, admin, config_dir, watch};
use mesh_xds::json;
use mesh_xds::server::{AdsServer, ServerLimits};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(version, about = "The mesh's local control plane")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve ADS from every YAML file in a directory, following edits.
    Serve(ServeArgs),
    /// Print, as JSON, the xDS resources `serve` would serve a node for
    /// the configuration in a directory.
    Translate {
        /// The directory of Istio YAML.
        #[arg(long)]
        config: PathBuf,
        /// The node's id: Istio's `sidecar~IP~POD.NS~NS.svc.DOMAIN` gives
        /// its namespace (and, for Envoy, the IP its listeners bind).
        #[arg(long, default_value = "proxyless")]
        node: String,
        /// The node is Envoy: a sidecar, or a gateway when its id starts
        /// `router~`. Without it the node is a proxyless client.
        #[arg(long)]
        envoy: bool,
        /// A label of the node (KEY=VALUE), as Istio's agent sends the
        /// pod's; a gateway is matched to Gateways by them.
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// The services' DNS domain.
        #[arg(long, default_value = "cluster.local")]
        cluster_domain: String,
    },
    /// The certificate authority.
    #[command(subcommand)]
    Ca(CaCommand),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The directory of Istio YAML (VirtualService, DestinationRule,
    /// ServiceEntry, WorkloadEntry, Kubernetes Service).
    #[arg(long)]
    config: PathBuf,
    /// Where ADS is served in plain text, to whoever reaches it, every
    /// node as it says it is and never a Secret: keep it on loopback.
    #[arg(long, default_value = "127.0.0.1:15010")]
    xds_addr: SocketAddr,
    /// Where ADS is served over mutual TLS (with `--ca`), each client
    /// known by its certificate, as istiod's 15012.
    #[arg(long, default_value = "127.0.0.1:15012")]
    xds_tls_addr: SocketAddr,
    /// The CA directory (`mesh-control ca init`) whose root clients of
    /// the mutual TLS port must chain to, and which issues the control
    /// plane's own certificate. Without it that port is not served.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Where the admin endpoints are served.
    #[arg(long, default_value = "127.0.0.1:15000")]
    admin_addr: SocketAddr,
    /// The services' DNS domain.
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// ADS streams served at once; more are refused (RESOURCE_EXHAUSTED).
    #[arg(long, default_value_t = ServerLimits::default().max_streams)]
    max_streams: usize,
    /// Names one stream may subscribe to; a stream asking for more is
    /// ended (RESOURCE_EXHAUSTED).
    #[arg(long, default_value_t = ServerLimits::default().max_subscriptions)]
    max_subscriptions: usize,
    /// Kinds of node (namespace, labels, shape) served at once; a stream
    /// of one more is refused (RESOURCE_EXHAUSTED).
    #[arg(long, default_value_t = MAX_NODE_CLASSES)]
    max_node_classes: usize,
}

#[derive(Subcommand)]
enum CaCommand {
    /// Make a self-signed root in DIR (root-cert.pem, root-key.pem).
    Init {
        /// Where the root is kept.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Issue a workload certificate into OUT (cert-chain.pem, key.pem,
    /// root-cert.pem), replacing any there.
    Issue {
        /// Where the root is kept.
        #[arg(long)]
        dir: PathBuf,
        /// spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT
        #[arg(long, value_parser = parse_identity)]
        identity: SpiffeId,
        /// Where the workload's files go.
        #[arg(long)]
        out: PathBuf,
        /// How long the certificate is valid: 24h, 90m, 3600s, 1h30m.
        #[arg(long, default_value = "24h", value_parser = parse_ttl)]
        ttl: Duration,
    },
}

/// A SPIFFE id, checked when the arguments are.
fn parse_identity(s: &str) -> Result<SpiffeId, String> {
    s.parse::<SpiffeId>().map_err(|e| e.to_string())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => serve(args)?,
        Command::Translate {
            config,
            node,
            envoy,
            labels,
            cluster_domain,
        } => {
            let labels: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let node = mesh_control::node::node(&node, envoy, &labels);
            translate(&config, &node, &cluster_domain)?
        }
        Command::Ca(CaCommand::Init { dir }) => {
            Ca::init(&dir)?;
            eprintln!("root written to {}", dir.display());
        }
        Command::Ca(CaCommand::Issue {
            dir,
            identity,
            out,
            ttl,
        }) => {
            let ca = Ca::load(&dir).context("could not load the root")?;
            let cert = ca.issue(&identity.to_string(), ttl)?;
            cert.write(&out)?;
            eprintln!("{} written to {}", cert.identity(), out.display());
        }
    }
    Ok(())
}

/// `KEY=VALUE`.
fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

/// Prints what `node` would be served if it asked for every service.
fn translate(config: &Path, node: &Node, cluster_domain: &str) -> anyhow::Result<()> {
    let loaded = config_dir::load(config, cluster_domain).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the configuration does not load:\n{}", lines.join("\n"))
    })?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let plane = ControlPlane::new(cluster_domain);
    plane.apply(loaded);
    let resources = plane.resources_for(node).map_err(anyhow::Error::msg)?;
    let out = json::resources_json(&resources)?;
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, &out)?;
    writeln!(stdout)?;
    Ok(())
}

/// Serves until killed. The addresses bound are printed on stdout, one
/// line each (`xds 127.0.0.1:15010`, `xds-tls 127.0.0.1:15012` with a
/// CA, `admin 127.0.0.1:15000`), so that a caller that asked for port 0
/// learns them.
fn serve(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let (config, xds_addr, admin_addr) = (&args.config, args.xds_addr, args.admin_addr);
    std::fs::read_dir(config).with_context(|| format!("cannot read {}", config.display()))?;
    let ca = match &args.ca {
        Some(dir) => Some(
            Ca::load(dir).with_context(|| format!("cannot load the CA in {}", dir.display()))?,
        ),
        None => {
            tracing::warn!(
                "no --ca: ADS is not served over mutual TLS, and no gateway is served its Secrets"
            );
            None
        }
    };
    if !xds_addr.ip().is_loopback() {
        tracing::warn!(%xds_addr, "plain-text ADS off loopback: whoever reaches it is served any namespace's configuration");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let xds = TcpListener::bind(xds_addr)
            .await
            .with_context(|| format!("cannot listen on {xds_addr}"))?;
        let xds_tls = match ca {
            Some(ca) => {
                let addr = args.xds_tls_addr;
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}"))?;
                let identity = ControlPlaneIdentity::new(ca, &args.cluster_domain, addr)
                    .into_source()
                    .context("cannot issue the control plane's certificate")?;
                Some((listener, identity))
            }
            None => None,
        };
        let admin = TcpListener::bind(admin_addr)
            .await
            .with_context(|| format!("cannot listen on {admin_addr}"))?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "xds {}", xds.local_addr()?)?;
        if let Some((listener, _)) = &xds_tls {
            writeln!(out, "xds-tls {}", listener.local_addr()?)?;
        }
        writeln!(out, "admin {}", admin.local_addr()?)?;
        drop(out);
        let plane =
            ControlPlane::new(&args.cluster_domain).with_max_node_classes(args.max_node_classes);
        let server = AdsServer::new(plane.clone()).with_limits(ServerLimits {
            max_streams: args.max_streams,
            max_subscriptions: args.max_subscriptions,
        });
        // Nothing is answered before the first load: a client served an
        // empty view would take its listeners to be gone.
        watch::load_into(&plane, &args.config).await;
        tokio::spawn(watch::watch(plane.clone(), args.config));
        if let Some((listener, identity)) = xds_tls {
            let server = server.clone();
            tokio::spawn(async move {
                if let Err(e) = secure::serve(listener, identity, server).await {
                    tracing::error!(error = %e, "ADS over mutual TLS stopped");
                }
            });
        }
        tokio::spawn(admin::admin(plane, server.clone()).serve(admin));
        // Keepalives find clients that vanished without closing.
        tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .add_service(server.into_service())
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(xds))
            .await
            .context("the xDS server stopped")
    })
}
