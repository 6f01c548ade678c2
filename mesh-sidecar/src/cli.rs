//! The command line: every flag also an environment variable `MESH_*`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::iptables::Backend;

/// The mesh's sidecar.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "The mesh's sidecar: outbound and inbound listeners around an application, and an admin port"
)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The sidecar's modes.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Outbound and inbound listeners for one application.
    Sidecar(Box<SidecarArgs>),
    /// The ingress gateway: Istio's Gateways and the VirtualServices bound
    /// to them.
    Gateway(Box<GatewayArgs>),
    /// Installs (or, with `--clean`, removes) the rules that redirect the
    /// pod's TCP through the sidecar, as Istio's init container does.
    Iptables(IptablesArgs),
}

/// `mesh-sidecar gateway`.
#[derive(Clone, Debug, Args)]
pub struct GatewayArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub source: SourceArgs,
    /// The xDS node id; Istio's gateway form
    /// `router~IP~istio-ingressgateway.NAMESPACE~NAMESPACE.svc.DOMAIN`
    /// unless given.
    #[arg(long, env = "MESH_NODE_ID")]
    pub node_id: Option<String>,
    /// Where the gateway listens; its port picks the Gateway servers
    /// unless `--server-port` does.
    #[arg(long, env = "MESH_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// The port of the Gateway servers served, when it is not the one
    /// listened on (as a Kubernetes Service's port maps to the gateway
    /// pod's `8080`).
    #[arg(long, env = "MESH_SERVER_PORT")]
    pub server_port: Option<u16>,
    /// The gateway's namespace.
    #[arg(long, env = "MESH_NAMESPACE", default_value = "istio-system")]
    pub namespace: String,
    /// The gateway's labels, which Gateways select, `KEY=VALUE`; repeated.
    #[arg(long = "label", env = "MESH_LABELS", value_delimiter = ',', value_parser = parse_label, default_value = "istio=ingressgateway")]
    pub labels: Vec<(String, String)>,
    /// The cluster's DNS domain.
    #[arg(long, env = "MESH_CLUSTER_DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,
    /// The gateway's certificates in Istio's layout (`cert-chain.pem`,
    /// `key.pem`, `root-cert.pem`), with which it dials the mesh's mutual
    /// TLS, rotated as they change.
    #[arg(long, env = "MESH_CERT_DIR")]
    pub cert_dir: Option<PathBuf>,
    /// The admin port.
    #[arg(long, env = "MESH_ADMIN_ADDR", default_value = "127.0.0.1:15000")]
    pub admin_addr: SocketAddr,
    /// Worker threads.
    #[arg(long, env = "MESH_CONCURRENCY", default_value_t = 2)]
    pub concurrency: usize,
    /// How long a connection has for each request head.
    #[arg(long, env = "MESH_HEADER_READ_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// How long open connections have to finish at shutdown.
    #[arg(long, env = "MESH_DRAIN_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
}

/// `mesh-sidecar iptables`.
#[derive(Clone, Debug, Args)]
pub struct IptablesArgs {
    /// The sidecar's user id, whose connections are not redirected.
    #[arg(long, env = "MESH_PROXY_UID", required_unless_present = "clean")]
    pub proxy_uid: Option<u32>,
    /// The outbound listener's port.
    #[arg(long, env = "MESH_OUTBOUND_PORT", default_value_t = 15001)]
    pub outbound_port: u16,
    /// The inbound listener's port.
    #[arg(long, env = "MESH_INBOUND_PORT", default_value_t = 15006)]
    pub inbound_port: u16,
    /// Inbound ports redirected, comma-separated; `*` (the default) for all.
    #[arg(long, env = "MESH_INBOUND_PORTS", default_value = "*", value_parser = parse_ports)]
    pub inbound_ports: Ports,
    /// Inbound ports left alone.
    #[arg(long, env = "MESH_EXCLUDE_INBOUND_PORTS", value_delimiter = ',')]
    pub exclude_inbound_ports: Vec<u16>,
    /// Outbound destination ports left alone.
    #[arg(long, env = "MESH_EXCLUDE_OUTBOUND_PORTS", value_delimiter = ',')]
    pub exclude_outbound_ports: Vec<u16>,
    /// Outbound destinations left alone.
    #[arg(long, env = "MESH_EXCLUDE_OUTBOUND_IPS", value_delimiter = ',')]
    pub exclude_outbound_ips: Vec<IpAddr>,
    /// What installs them: `iptables`, `nft`, or `auto` (iptables if the
    /// machine has it, else nft).
    #[arg(long, env = "MESH_IPTABLES_BACKEND", value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Prints the rules instead of installing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Removes the rules.
    #[arg(long)]
    pub clean: bool,
}

/// Which tool installs the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// iptables if the machine has it, else nft.
    Auto,
    /// `iptables`.
    Iptables,
    /// `nft`.
    Nft,
}

impl BackendChoice {
    /// The backend this choice stands for on this machine.
    pub fn backend(self) -> Backend {
        match self {
            BackendChoice::Auto => Backend::detect(),
            BackendChoice::Iptables => Backend::Iptables,
            BackendChoice::Nft => Backend::Nft,
        }
    }
}

/// A list of ports; empty for every port (`*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ports(pub Vec<u16>);

fn parse_ports(s: &str) -> Result<Ports, String> {
    if s.trim() == "*" {
        return Ok(Ports::default());
    }
    s.split(',')
        .map(|p| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| format!("{p:?} is not a port"))
        })
        .collect::<Result<_, _>>()
        .map(Ports)
}

/// Where the configuration comes from: exactly one of the three.
#[derive(Clone, Debug, Args)]
#[group(required = true, multiple = false)]
pub struct SourceArgs {
    /// A gRPC xDS bootstrap file, as Istio's agent writes it.
    #[arg(long, env = "MESH_BOOTSTRAP")]
    pub bootstrap: Option<PathBuf>,
    /// A control plane's ADS address (plain text); the node is
    /// `--node-id`, else Istio's id for the workload flags.
    #[arg(long, env = "MESH_XDS")]
    pub xds: Option<String>,
    /// A file or directory of Istio YAML, followed on change: no control
    /// plane needed.
    #[arg(long, env = "MESH_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Who the workload is, for a node the sidecar describes itself (`--xds`,
/// `--config`).
#[derive(Clone, Debug, Args)]
pub struct WorkloadArgs {
    /// The xDS node id; Istio's form
    /// `sidecar~IP~WORKLOAD.NAMESPACE~NAMESPACE.svc.DOMAIN` unless given.
    #[arg(long, env = "MESH_NODE_ID")]
    pub node_id: Option<String>,
    /// The workload's namespace.
    #[arg(long, env = "MESH_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// The workload's name (a pod's deployment).
    #[arg(long, env = "MESH_WORKLOAD", default_value = "app")]
    pub workload: String,
    /// A label of the workload, `KEY=VALUE`; repeated.
    #[arg(long = "label", env = "MESH_LABELS", value_delimiter = ',', value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// The workload's address, as its endpoints name it.
    #[arg(long, env = "MESH_INSTANCE_IP", default_value = "127.0.0.1")]
    pub instance_ip: IpAddr,
    /// The cluster's DNS domain.
    #[arg(long, env = "MESH_CLUSTER_DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,
    /// The workload's certificates in Istio's layout (`cert-chain.pem`,
    /// `key.pem`, `root-cert.pem`), rotated as they change.
    #[arg(long, env = "MESH_CERT_DIR")]
    pub cert_dir: Option<PathBuf>,
}

/// `mesh-sidecar sidecar`.
#[derive(Clone, Debug, Args)]
pub struct SidecarArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub source: SourceArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub workload: WorkloadArgs,
    /// Where the application sends its requests out.
    #[arg(long, env = "MESH_OUTBOUND_ADDR", default_value = "127.0.0.1:15001")]
    pub outbound_addr: SocketAddr,
    /// Where the mesh's requests for the application come in.
    #[arg(long, env = "MESH_INBOUND_ADDR", default_value = "0.0.0.0:15006")]
    pub inbound_addr: SocketAddr,
    /// The application's port on 127.0.0.1.
    #[arg(long, env = "MESH_APP_PORT")]
    pub app_port: u16,
    /// The admin port.
    #[arg(long, env = "MESH_ADMIN_ADDR", default_value = "127.0.0.1:15000")]
    pub admin_addr: SocketAddr,
    /// Take connections iptables redirected to the outbound listener by
    /// their original destination (`mesh-sidecar iptables`).
    #[arg(long, env = "MESH_INTERCEPT")]
    pub intercept: bool,
    /// Worker threads.
    #[arg(long, env = "MESH_CONCURRENCY", default_value_t = 2)]
    pub concurrency: usize,
    /// How long a connection has for its TLS handshake and each request
    /// head before it is closed (slow clients, slowloris).
    #[arg(long, env = "MESH_HEADER_READ_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// Writes a line per request to this file (`/dev/stdout`, as Istio's
    /// `accessLogFile`), in Envoy's text format or JSON.
    #[arg(long, env = "MESH_ACCESS_LOG")]
    pub access_log: Option<PathBuf>,
    /// The access log's format: `text` (Envoy's default) or `json`.
    #[arg(long, env = "MESH_ACCESS_LOG_FORMAT", default_value = "text", value_parser = parse_format)]
    pub access_log_format: mesh_tower::access_log::Format,
    /// How long open connections have to finish at shutdown (`5s`, `500ms`).
    #[arg(long, env = "MESH_DRAIN_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

fn parse_format(s: &str) -> Result<mesh_tower::access_log::Format, String> {
    match s {
        "text" => Ok(mesh_tower::access_log::Format::Text),
        "json" => Ok(mesh_tower::access_log::Format::Json),
        _ => Err(format!("{s:?} is not an access log format: text or json")),
    }
}

/// A duration as Istio's YAML writes one: `5s`, `500ms`, `1m30s`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    s.parse::<mesh_istio::Duration>()
        .map(mesh_istio::Duration::get)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_labels_read_as_istio_writes_them() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
        assert_eq!(
            parse_label("app=reviews"),
            Ok(("app".into(), "reviews".into()))
        );
        assert!(parse_label("app").is_err());
    }

    #[test]
    fn exactly_one_source_is_taken() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from([&["mesh-sidecar", "sidecar", "--app-port", "9080"], args].concat())
        };
        assert!(parse(&[]).is_err());
        assert!(parse(&["--config", "d", "--xds", "127.0.0.1:1", "--node-id", "n"]).is_err());
        assert!(parse(&["--xds", "127.0.0.1:1"]).is_ok());
        assert!(parse(&["--xds", "127.0.0.1:1", "--node-id", "n"]).is_ok());
        assert!(parse(&["--config", "d"]).is_ok());
    }
}
