//! `bookinfo`: Istio's bookinfo in one process, on the mesh
//! ([`bookinfo::launch`]). Prints the page's address and each workload's
//! admin, then each workload as it becomes ready; Ctrl-C stops it.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

/// Istio's bookinfo on the mesh.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The ingress gateway's port on 127.0.0.1.
    #[arg(long, env = "BOOKINFO_PORT", default_value_t = 8080)]
    port: u16,
    /// The Istio YAML served; a copy of it is followed (the path is
    /// printed: copy a file in to apply it).
    #[arg(long, env = "BOOKINFO_CONFIG", default_value = bookinfo::launch::CONFIG)]
    config: PathBuf,
    /// One of `scenarios/` (Istio's task files) applied from the start:
    /// `virtual-service-reviews-test-v2`, say.
    #[arg(long, env = "BOOKINFO_SCENARIO")]
    scenario: Option<String>,
    /// Plain text between the services instead of mutual TLS.
    #[arg(long, env = "BOOKINFO_NO_MTLS")]
    no_mtls: bool,
}

/// How long a workload has to become ready before it is reported late.
const READY_WAIT: Duration = Duration::from_secs(30);

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let state = tempfile::tempdir().context("cannot make a directory for the certificates")?;
    let scenario = args
        .scenario
        .as_deref()
        .map(bookinfo::launch::scenario)
        .transpose()?;
    let options = bookinfo::launch::Options {
        port: args.port,
        config: args.config,
        scenario,
        mtls: !args.no_mtls,
        state: state.path().to_owned(),
    };
    let running = bookinfo::launch::start(&options).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "bookinfo http://{}/productpage", running.gateway)?;
        writeln!(out, "config {}", running.config.display())?;
        for w in &running.workloads {
            writeln!(out, "admin {} http://{}/", w.name, w.admin)?;
        }
    }
    let mut late = Vec::new();
    for w in &running.workloads {
        let ready = bookinfo::launch::Running::ready(w, READY_WAIT).await;
        let mut out = std::io::stdout().lock();
        if ready {
            writeln!(out, "ready {}", w.name)?;
        } else {
            writeln!(out, "not ready {} after {READY_WAIT:?}", w.name)?;
            late.push(w.name.as_str());
        }
    }
    if late.is_empty() {
        writeln!(std::io::stdout().lock(), "ready bookinfo")?;
    } else {
        let late = late.join(", ");
        writeln!(std::io::stdout().lock(), "not ready bookinfo: {late}")?;
    }
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    tracing::info!("stopping");
    running.shutdown().await;
    Ok(())
}
