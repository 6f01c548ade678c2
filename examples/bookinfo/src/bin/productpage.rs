//! `productpage` on its own, calling details and reviews through the
//! mesh of its environment ([`bookinfo::alone`]).

use std::net::SocketAddr;

use bookinfo::productpage::{Productpage, Upstreams};
use clap::Parser;

/// bookinfo's productpage.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where it listens.
    #[arg(long, env = "BOOKINFO_LISTEN", default_value = "127.0.0.1:9080")]
    listen: SocketAddr,
    /// details.
    #[arg(long, env = "BOOKINFO_DETAILS", default_value = "http://details:9080")]
    details: String,
    /// reviews.
    #[arg(long, env = "BOOKINFO_REVIEWS", default_value = "http://reviews:9080")]
    reviews: String,
    /// ratings (the API's `/api/v1/products/<id>/ratings`).
    #[arg(long, env = "BOOKINFO_RATINGS", default_value = "http://ratings:9080")]
    ratings: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (mesh, server) = bookinfo::alone::mesh()?;
    let upstreams = Upstreams {
        details: args.details,
        reviews: args.reviews,
        ratings: args.ratings,
    };
    let page = Productpage::new(mesh.reported(mesh.client()), upstreams);
    let listener = bookinfo::alone::bind(args.listen).await?;
    bookinfo::alone::announce("productpage", &listener)?;
    server
        .serve_with_shutdown(listener, page, bookinfo::alone::ctrl_c())
        .await;
    Ok(())
}
