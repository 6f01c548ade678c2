//! `mesh-sidecar`: parses its flags and runs the mode asked for
//! ([`mesh_sidecar`]).

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use mesh_sidecar::cli::{Cli, Command, IptablesArgs};
use mesh_sidecar::iptables::{self, Backend, Rules};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match cli.command {
        Command::Sidecar(args) => {
            runtime(args.concurrency)?.block_on(mesh_sidecar::sidecar::run(*args))?
        }
        Command::Gateway(args) => {
            runtime(args.concurrency)?.block_on(mesh_sidecar::gateway::run(*args))?
        }
        Command::Iptables(args) => iptables(&args)?,
    }
    Ok(())
}

/// A runtime of `workers` threads (at least one).
fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
}

fn iptables(args: &IptablesArgs) -> anyhow::Result<()> {
    let backend = args.backend.backend();
    if args.clean {
        iptables::clean(backend);
        return Ok(());
    }
    let rules = Rules {
        proxy_uid: args.proxy_uid.context("--proxy-uid is needed")?,
        outbound_port: args.outbound_port,
        inbound_port: args.inbound_port,
        inbound_ports: args.inbound_ports.0.clone(),
        exclude_inbound_ports: args.exclude_inbound_ports.clone(),
        exclude_outbound_ports: args.exclude_outbound_ports.clone(),
        exclude_outbound_ips: args.exclude_outbound_ips.clone(),
    };
    if args.dry_run {
        let mut out = std::io::stdout().lock();
        match backend {
            Backend::Iptables => {
                for rule in rules.commands() {
                    writeln!(out, "iptables {}", rule.join(" "))?;
                }
            }
            Backend::Nft => write!(out, "{}", rules.nft_script())?,
        }
        return Ok(());
    }
    rules.install(backend)?;
    Ok(())
}
