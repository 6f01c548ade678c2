//! `details` on its own: a plain hyper server, outside the mesh (put
//! `mesh-sidecar` in front of it to bring it in).

use std::net::SocketAddr;

use clap::Parser;

/// bookinfo's details service.
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
    let listener = bookinfo::alone::bind(args.listen).await?;
    bookinfo::alone::announce("details", &listener)?;
    tokio::select! {
        () = bookinfo::http::serve_plain(listener, tower::service_fn(bookinfo::details::handle)) => {}
        () = bookinfo::alone::ctrl_c() => {}
    }
    Ok(())
}
