//! `ratings` on its own: HTTP and gRPC on one port, served by the mesh of
//! its environment ([`bookinfo::alone`]).

use std::net::SocketAddr;

use clap::Parser;

/// bookinfo's ratings service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where it listens.
    #[arg(long, env = "BOOKINFO_LISTEN", default_value = "127.0.0.1:9080")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (_mesh, server) = bookinfo::alone::mesh()?;
    let listener = bookinfo::alone::bind(args.listen).await?;
    bookinfo::alone::announce("ratings", &listener)?;
    server
        .serve_with_shutdown(
            listener,
            bookinfo::ratings::Ratings,
            bookinfo::alone::ctrl_c(),
        )
        .await;
    Ok(())
}
