//! mesh-curl: curl through the mesh. Sends requests with a `MeshClient`
//! whose routes, clusters and endpoints come from an xDS control plane, for
//! people debugging their routing and for tests.
//!
//! ```text
//! mesh-curl [--bootstrap FILE | --xds ADDR --node-id ID] [--delta]
//!           [-H 'k: v']... [-X METHOD] [-d DATA] [-n N]
//!           [--connect-timeout SECS] [--max-time SECS] URL
//! ```
//!
//! `URL` is `http://HOST[:PORT]/path`; `HOST[:PORT]`, as written, is the
//! target `xds:///HOST[:PORT]` (`http://echo/x` asks for listener `echo`).
//! Without `--bootstrap` or `--xds` the bootstrap comes from
//! `GRPC_XDS_BOOTSTRAP` or `GRPC_XDS_BOOTSTRAP_CONFIG`, as gRPC reads it.
//! One request prints the response body; `-n N` sends N one after another
//! and prints how many each cluster and endpoint served. The exit code is
//! non-zero, with the reason on stderr, when the configuration cannot be
//! had or a request fails without a response.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use mesh_dns::DnsResolve;
use mesh_tower::MeshClient;
use mesh_tower::endpoint::UpstreamHost;
use mesh_tower::split::SelectedCluster;
use mesh_xds::Bootstrap;
use mesh_xds::ads::{AdsClient, Protocol};
use tower::ServiceExt;

/// curl through the mesh's xDS client.
#[derive(Debug, Parser)]
#[command(name = "mesh-curl", version)]
struct Args {
    /// A gRPC xDS bootstrap file (default: GRPC_XDS_BOOTSTRAP or
    /// GRPC_XDS_BOOTSTRAP_CONFIG).
    #[arg(long, value_name = "FILE", conflicts_with = "xds")]
    bootstrap: Option<PathBuf>,
    /// The control plane, `host:port` or `unix:///path`, in plain text.
    #[arg(long, value_name = "ADDR", requires = "node_id")]
    xds: Option<String>,
    /// The node id to present with `--xds`, e.g.
    /// `sidecar~10.0.0.1~app.default~default.svc.cluster.local`.
    #[arg(long, value_name = "ID", requires = "xds")]
    node_id: Option<String>,
    /// Speak the incremental (delta) xDS protocol.
    #[arg(long)]
    delta: bool,
    /// A request header, `name: value`; repeatable.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// The request method (default GET, or POST with `-d`).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    method: Option<String>,
    /// A request body.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    data: Option<String>,
    /// Requests to send; more than one prints a tally instead of bodies.
    #[arg(short = 'n', default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    count: u32,
    /// How long to wait for a stream to the control plane, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    connect_timeout: f64,
    /// The longest the whole run may take, in seconds.
    #[arg(long, value_name = "SECS")]
    max_time: Option<f64>,
    /// `http://HOST[:PORT]/path`.
    url: String,
}

/// Where responses came from, and how they ended.
#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, u32>,
    clusters: BTreeMap<String, BTreeMap<String, u32>>,
    errors: BTreeMap<String, u32>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let run = run(&args);
    let result = match args.max_time.map(Duration::try_from_secs_f64) {
        Some(Ok(max)) => match tokio::time::timeout(max, run).await {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!("gave up after --max-time {max:?}")),
        },
        Some(Err(e)) => Err(anyhow::anyhow!("--max-time: {e}")),
        None => run.await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesh-curl: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let uri: http::Uri = args.url.parse().context("URL")?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        bail!("URL {:?}: expected http://HOST[:PORT]/path", args.url);
    }
    let request = request(args, &uri)?;
    let bootstrap = match (&args.bootstrap, &args.xds, &args.node_id) {
        (Some(path), _, _) => Bootstrap::from_file(path)?,
        (None, Some(addr), Some(id)) => Bootstrap::insecure(addr, id.as_str())?,
        _ => Bootstrap::from_env()?,
    };
    let protocol = match args.delta {
        true => Protocol::Delta,
        false => Protocol::StateOfTheWorld,
    };
    let ads = AdsClient::new(&bootstrap).with_protocol(protocol).spawn()?;
    let connect = Duration::try_from_secs_f64(args.connect_timeout).context("--connect-timeout")?;
    let mut updates = ads.updates();
    if tokio::time::timeout(connect, updates.wait_for(|v| v.connected))
        .await
        .is_err()
    {
        let server = bootstrap.xds_servers.first().map(|s| s.uri.to_string());
        bail!(
            "cannot reach the xDS server {} within {connect:?}",
            server.unwrap_or_default()
        );
    }
    let dns = DnsResolve::from_system().context("system DNS configuration")?;
    let client: MeshClient<Full<Bytes>> = MeshClient::builder(dns).xds(ads).build();

    if args.count <= 1 {
        let res = client
            .oneshot(request())
            .await
            .map_err(anyhow::Error::from_boxed)?;
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(anyhow::Error::from_boxed)?;
        std::io::stdout().write_all(&body.to_bytes())?;
        return Ok(());
    }
    let mut tally = Tally::default();
    for i in 0..args.count {
        match client.clone().oneshot(request()).await {
            Ok(res) => {
                let cluster = res.extensions().get::<SelectedCluster>();
                let cluster = cluster.map_or("(unrouted)".to_owned(), |c| c.0.to_string());
                let host = res.extensions().get::<UpstreamHost>();
                let host = host.map_or("(local reply)".to_owned(), |h| h.0.to_string());
                *tally.statuses.entry(res.status().as_u16()).or_default() += 1;
                *tally
                    .clusters
                    .entry(cluster)
                    .or_default()
                    .entry(host)
                    .or_default() += 1;
                // Drain the body so the connection is reused.
                let _ = res.into_body().collect().await;
            }
            // The first request fails alone when there is no configuration.
            Err(e) if i == 0 => return Err(anyhow::Error::from_boxed(e)),
            Err(e) => *tally.errors.entry(e.to_string()).or_default() += 1,
        }
    }
    print!("{}", tally.report(args.count));
    Ok(())
}

/// Makes the request `args` describe, once per send.
fn request(
    args: &Args,
    uri: &http::Uri,
) -> anyhow::Result<impl Fn() -> http::Request<Full<Bytes>>> {
    let method = match (&args.method, &args.data) {
        (Some(m), _) => m.parse().with_context(|| format!("method {m:?}"))?,
        (None, Some(_)) => http::Method::POST,
        (None, None) => http::Method::GET,
    };
    let mut headers = http::HeaderMap::new();
    for h in &args.headers {
        let Some((name, value)) = h.split_once(':') else {
            bail!("header {h:?}: expected 'name: value'");
        };
        let name: http::HeaderName = name
            .trim()
            .parse()
            .with_context(|| format!("header {h:?}"))?;
        let value: http::HeaderValue = value
            .trim()
            .parse()
            .with_context(|| format!("header {h:?}"))?;
        headers.append(name, value);
    }
    let body = Bytes::from(args.data.clone().unwrap_or_default());
    let uri = uri.clone();
    Ok(move || {
        let mut req = http::Request::new(Full::new(body.clone()));
        *req.method_mut() = method.clone();
        *req.uri_mut() = uri.clone();
        *req.headers_mut() = headers.clone();
        req
    })
}

impl Tally {
    /// The tally as text: statuses, then each cluster with its endpoints.
    fn report(&self, sent: u32) -> String {
        let mut out = format!("{sent} requests\n");
        for (status, n) in &self.statuses {
            out += &format!("status {status}: {n}\n");
        }
        for (cluster, hosts) in &self.clusters {
            let total: u32 = hosts.values().sum();
            out += &format!("cluster {cluster}: {total}\n");
            for (host, n) in hosts {
                out += &format!("  endpoint {host}: {n}\n");
            }
        }
        for (error, n) in &self.errors {
            out += &format!("error {error}: {n}\n");
        }
        out
    }
}
