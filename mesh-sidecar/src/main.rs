//! `mesh-sidecar`: parses its flags and runs the mode asked for
//! ([`mesh_sidecar`]).

use clap::Parser;
use mesh_sidecar::cli::{Cli, Command};

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
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.concurrency.max(1))
                .enable_all()
                .build()?;
            runtime.block_on(mesh_sidecar::sidecar::run(args))?;
        }
    }
    Ok(())
}
