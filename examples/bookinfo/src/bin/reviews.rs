//! `reviews` on its own (`--version v2`), asking ratings over gRPC
//! through the mesh of its environment ([`bookinfo::alone`]).

use std::net::SocketAddr;

use bookinfo::ratings::RatingsClient;
use bookinfo::reviews::{Reviews, Version};
use clap::Parser;

/// bookinfo's reviews service.
#[derive(Debug, Parser)]
// `--version` is the service's, as Istio's task docs write it.
#[command(about)]
struct Args {
    /// Where it listens.
    #[arg(long, env = "BOOKINFO_LISTEN", default_value = "127.0.0.1:9080")]
    listen: SocketAddr,
    /// Which version: v1 (no stars), v2 (black), v3 (red).
    #[arg(long, env = "BOOKINFO_VERSION", value_enum, default_value = "v1")]
    version: Version,
    /// Where ratings is: `xds:///HOST:PORT` with a control plane,
    /// `HOST:PORT` without.
    #[arg(
        long,
        env = "BOOKINFO_RATINGS",
        default_value = "xds:///ratings.default.svc.cluster.local:9080"
    )]
    ratings: String,
    /// The pod's name its answers carry (`podname`), as Kubernetes sets
    /// `HOSTNAME`.
    #[arg(long, env = "HOSTNAME", default_value = "reviews")]
    pod: String,
    /// The cluster's name its answers carry (`clustername`).
    #[arg(long, env = "CLUSTER_NAME", default_value = "null")]
    cluster: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (mesh, server) = bookinfo::alone::mesh()?;
    let ratings = RatingsClient::new(mesh.channel(&args.ratings)?);
    let reviews = Reviews::new(args.version, &args.pod, &args.cluster, ratings);
    let listener = bookinfo::alone::bind(args.listen).await?;
    bookinfo::alone::announce("reviews", &listener)?;
    server
        .serve_with_shutdown(listener, reviews, bookinfo::alone::ctrl_c())
        .await;
    Ok(())
}
