//! mesh-echo: the mesh's mutual TLS by hand. A server that answers every
//! request with who called it, and a client that calls it through
//! `MeshClient`, both with the certificates `mesh-control ca issue` writes.
//!
//! ```text
//! mesh-echo server --listen ADDR [--certs DIR] [--mode strict|permissive|disable]
//!                  [--policy FILE] [--name NAME] [--namespace NS] [--admin-addr ADDR]
//!                  [--otlp URL [--otlp-protocol grpc|http/protobuf]]
//! mesh-echo client [--certs DIR] [--expect-id SPIFFE_ID] URL
//! ```
//!
//! The server answers `hello spiffe://… from NAME` to a caller over mutual
//! TLS and `hello anonymous from NAME` to one over plain text. `--policy`
//! is an Istio YAML file or directory whose PeerAuthentication and
//! AuthorizationPolicy apply to the server as the workload `app=NAME` in
//! `NS`; `--mode` overrides its mode (default `strict`). `--certs` may be
//! left out with `--mode disable`. With `--admin-addr` the server reports
//! Istio's request metrics as the workload `NAME` and serves them, with its
//! certificate, on an admin endpoint there (`/stats/prometheus`, `/certs`,
//! `/ready`, and `POST /logging?level=debug` to change the log level),
//! printing `admin ADDR` on stderr. With `--otlp` (and
//! `--admin-addr`) every request is traced (sampling 100 %) and its spans
//! sent over OTLP/gRPC to the collector at `URL` (`http://127.0.0.1:4317`),
//! or with `--otlp-protocol http/protobuf` posted to `URL`
//! (`http://127.0.0.1:4318/v1/traces`).
//!
//! The client sends one GET to `URL` (`http://HOST:PORT/path`): over the
//! mesh's mutual TLS with `--certs`, expecting the server to be
//! `--expect-id` when given (any identity the roots sign otherwise), and
//! in plain text without. It prints the body; a failure is reported with
//! its reason and a non-zero exit code.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::convert::Infallible;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use http_body_util::{BodyExt, Empty, Full};
use mesh_core::policy::UpstreamTls;
use mesh_core::security::{InboundPolicy, MtlsMode};
use mesh_core::telemetry::WorkloadMetadata;
use mesh_core::{Authority, ClusterPolicy, Endpoint, EndpointSet, StaticResolve};
use mesh_istio::Workload;
use mesh_tower::admin::{Admin, SetLogLevel};
use mesh_tower::metrics::IstioMetrics;
use mesh_tower::tls::{ClientIdentity, IdentityFiles, IdentitySource};
use mesh_tower::trace::{OtlpExporter, OtlpProtocol, Sampler};
use mesh_tower::{MeshClient, MeshServer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How often the certificate files are read again.
const REFRESH: Duration = Duration::from_secs(5);

#[derive(Debug, Parser)]
#[command(name = "mesh-echo", version, about = "The mesh's mutual TLS by hand")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Answer every request with the caller's identity.
    Server {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// The workload's certificates: cert-chain.pem, key.pem, root-cert.pem.
        #[arg(long, value_name = "DIR")]
        certs: Option<PathBuf>,
        /// How the port takes mutual TLS (default: the policy's, else strict).
        #[arg(long, value_enum)]
        mode: Option<Mode>,
        /// Istio YAML (a file or a directory) with PeerAuthentication and
        /// AuthorizationPolicy resources.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// The server's name, in its answers and as its `app` label.
        #[arg(long, default_value = "mesh-echo")]
        name: String,
        /// The server's namespace, for the policy.
        #[arg(long, default_value = "default")]
        namespace: String,
        /// Where to serve the admin endpoint (metrics, certificate); none
        /// without.
        #[arg(long, value_name = "ADDR")]
        admin_addr: Option<SocketAddr>,
        /// An OTLP collector to send every request's span to.
        #[arg(long, value_name = "URL", requires = "admin_addr")]
        otlp: Option<String>,
        /// How spans reach the collector: `grpc` or `http/protobuf`.
        #[arg(
            long,
            value_name = "PROTOCOL",
            default_value = "grpc",
            requires = "otlp"
        )]
        otlp_protocol: OtlpProtocol,
    },
    /// Call a mesh-echo server through MeshClient.
    Client {
        /// The client's certificates; plain text without.
        #[arg(long, value_name = "DIR")]
        certs: Option<PathBuf>,
        /// The SPIFFE id the server must present.
        #[arg(long, value_name = "SPIFFE_ID", requires = "certs")]
        expect_id: Option<String>,
        /// `http://HOST:PORT/path`.
        url: http::Uri,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    Strict,
    Permissive,
    Disable,
}

impl From<Mode> for MtlsMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Strict => MtlsMode::Strict,
            Mode::Permissive => MtlsMode::Permissive,
            Mode::Disable => MtlsMode::Disable,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .with_filter_reloading();
    let reload = logs.reload_handle();
    logs.init();
    // The admin's `POST /logging?level=…`.
    let set_level: SetLogLevel = Arc::new(move |level: &str| {
        let filter = tracing_subscriber::EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        reload.reload(filter).map_err(|e| e.to_string())
    });
    match Args::parse().command {
        Command::Server {
            listen,
            certs,
            mode,
            policy,
            name,
            namespace,
            admin_addr,
            otlp,
            otlp_protocol,
        } => {
            let who = Who { name, namespace };
            let telemetry = Telemetry {
                admin_addr,
                otlp: otlp.map(|url| (url, otlp_protocol)),
                set_level,
            };
            server(listen, certs, mode, policy, who, telemetry).await
        }
        Command::Client {
            certs,
            expect_id,
            url,
        } => client(certs, expect_id, url).await,
    }
}

fn identity(dir: PathBuf) -> anyhow::Result<IdentitySource> {
    let source = IdentitySource::from_files(IdentityFiles::in_dir(&dir))
        .with_context(|| format!("the certificates in {}", dir.display()))?;
    Ok(source.watch(REFRESH))
}

/// The server's workload.
struct Who {
    name: String,
    namespace: String,
}

/// Where the server's telemetry goes.
struct Telemetry {
    admin_addr: Option<SocketAddr>,
    otlp: Option<(String, OtlpProtocol)>,
    set_level: SetLogLevel,
}

async fn server(
    listen: SocketAddr,
    certs: Option<PathBuf>,
    mode: Option<Mode>,
    policy_file: Option<PathBuf>,
    who: Who,
    telemetry: Telemetry,
) -> anyhow::Result<()> {
    let Who { name, namespace } = who;
    let Telemetry {
        admin_addr,
        otlp,
        set_level,
    } = telemetry;
    let mut policy = InboundPolicy {
        mtls: MtlsMode::Strict,
        rbac: Vec::new(),
    };
    if let Some(file) = &policy_file {
        let workload = Workload {
            namespace: namespace.clone(),
            labels: [("app".to_owned(), name.clone())].into(),
            ..Workload::default()
        };
        let (read, warnings) = mesh_tower::istio::inbound_policy(file, &workload, listen.port())
            .with_context(|| format!("the policy in {}", file.display()))?;
        for w in warnings {
            eprintln!("warning: {w}");
        }
        policy = read;
    }
    if let Some(mode) = mode {
        policy.mtls = mode.into();
    }
    let mut builder = MeshServer::builder().policy(policy);
    let identity = certs.map(identity).transpose()?;
    if let Some(identity) = &identity {
        builder = builder.identity(identity.clone());
    }
    let mut admin = None;
    if let Some(addr) = admin_addr {
        let labels = [("app".to_owned(), name.clone())].into();
        let workload = WorkloadMetadata::from_labels(&name, &namespace, &name, &labels);
        let metrics = IstioMetrics::default();
        builder = builder.metrics(metrics.clone(), workload, None);
        if let Some((url, protocol)) = &otlp {
            builder = builder
                .sampling(Sampler::ratio(1.0))
                .spans(OtlpExporter::spawn_with(url, &name, *protocol)?);
        }
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        eprintln!("admin {}", listener.local_addr()?);
        let mut server_admin = Admin::builder(registry).logging(set_level);
        if let Some(identity) = &identity {
            server_admin = server_admin.identity(identity.clone());
        }
        admin = Some((server_admin, listener));
    }
    let server = builder.build()?;
    if let Some((admin, listener)) = admin {
        let admin = admin.server(&name, &server).build();
        admin.set_ready(true);
        tokio::spawn(admin.serve(listener));
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("listening on {}", listener.local_addr()?);
    let hello = tower::service_fn(move |req: http::Request<mesh_tower::server::Body>| {
        let caller = req
            .extensions()
            .get::<ClientIdentity>()
            .map_or_else(|| "anonymous".to_owned(), |c| c.0.to_string());
        let body = format!("hello {caller} from {name}\n");
        async move { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(body)))) }
    });
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    server.serve_with_shutdown(listener, hello, stop).await;
    Ok(())
}

async fn client(
    certs: Option<PathBuf>,
    expect_id: Option<String>,
    url: http::Uri,
) -> anyhow::Result<()> {
    if url.scheme_str() != Some("http") {
        bail!("{url}: the URL is http://HOST:PORT/…; --certs makes it mutual TLS");
    }
    let target: Authority = url
        .authority()
        .context("the URL has no HOST:PORT")?
        .as_str()
        .parse()?;
    let mut builder = match target.host().parse::<IpAddr>() {
        Ok(ip) => {
            let resolve = StaticResolve::default();
            let addr = SocketAddr::new(ip, target.port());
            resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
            MeshClient::builder(resolve)
        }
        Err(_) => MeshClient::builder(
            mesh_dns::DnsResolve::from_system().context("system DNS configuration")?,
        ),
    };
    if let Some(dir) = certs {
        let tls = UpstreamTls {
            subject_alt_names: expect_id.into_iter().map(Into::into).collect(),
            ..UpstreamTls::default()
        };
        let policy = ClusterPolicy {
            tls: Some(tls),
            ..ClusterPolicy::default()
        };
        builder = builder
            .identity(identity(dir)?)
            .cluster_policy(target, policy);
    }
    let client: MeshClient<Empty<Bytes>> = builder.build();
    let req = http::Request::get(url).body(Empty::new())?;
    let res = client
        .oneshot(req)
        .await
        .map_err(anyhow::Error::from_boxed)?;
    let status = res.status();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(anyhow::Error::from_boxed)?
        .to_bytes();
    std::io::stdout().write_all(&body)?;
    if !status.is_success() {
        bail!("the server answered {status}");
    }
    Ok(())
}
