//! `mesh-control`: the mesh's local control plane. Now its certificate
//! authority: `ca init` makes a root, `ca issue` writes a workload
//! certificate in Istio's layout.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mesh_control::ca::{Ca, SpiffeId, parse_ttl};

#[derive(Parser)]
#[command(version, about = "The mesh's local control plane")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The certificate authority.
    #[command(subcommand)]
    Ca(CaCommand),
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
