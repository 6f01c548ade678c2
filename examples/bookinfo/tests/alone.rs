//! Each service as its own process (`cargo run -p bookinfo --bin
//! reviews -- --version v2`), without a control plane: the four wired by
//! their flags give the whole page.

mod support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The service binary `bin` with `args`, and where it said it listens.
async fn start(bin: &str, args: &[&str]) -> (Child, SocketAddr) {
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("GRPC_XDS_BOOTSTRAP")
        .env_remove("GRPC_XDS_BOOTSTRAP_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("it said where it listens")
        .unwrap()
        .expect("it said something");
    let addr = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    (child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_run_alone_wired_by_their_flags() {
    let (_ratings, ratings) = start(env!("CARGO_BIN_EXE_ratings"), &[]).await;
    let (_details, details) = start(env!("CARGO_BIN_EXE_details"), &[]).await;
    let ratings_at = ratings.to_string();
    let (_reviews, reviews) = start(
        env!("CARGO_BIN_EXE_reviews"),
        &[
            "--version",
            "v3",
            "--ratings",
            &ratings_at,
            "--pod",
            "reviews-v3-x",
        ],
    )
    .await;
    let urls = [details, reviews, ratings].map(|a| format!("http://{a}"));
    let (_page, page) = start(
        env!("CARGO_BIN_EXE_productpage"),
        &[
            "--details",
            &urls[0],
            "--reviews",
            &urls[1],
            "--ratings",
            &urls[2],
        ],
    )
    .await;
    let html = support::page(page, None).await;
    assert!(html.contains("Book Details"), "{html}");
    assert_eq!(
        support::stars(&html),
        [(5, "red".into()), (4, "red".into())]
    );
    assert_eq!(support::served_by(&html).as_deref(), Some("reviews-v3-x"));
}
