//! Heap allocations per request: a bare hyper-util client, `MeshClient`
//! and `MeshClient` with routes, each sending requests one at a time to a
//! loopback server in the same process (a counting global allocator sees
//! the server's allocations too; what the mesh adds is the difference from
//! the bare client); and what recording Istio's metrics for a request on a
//! label set already seen allocates. Run with `cargo bench -p mesh-tower
//! --bench allocations`.

#![allow(clippy::print_stdout)]

mod support;

use std::alloc::System;
use std::future::Future;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::ServiceExt;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Requests measured per client, after as many to warm up.
const REQUESTS: usize = 2_000;

/// Allocations per request of `send`, on warm connections.
async fn per_request<F, Fut>(send: F) -> f64
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..REQUESTS {
        send().await;
    }
    let region = Region::new(GLOBAL);
    for _ in 0..REQUESTS {
        send().await;
    }
    region.change().allocations as f64 / REQUESTS as f64
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addr = support::server().await;
        let bare: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let bare_uri: http::Uri = format!("http://{addr}/").parse().unwrap();
        let bare = per_request(|| async {
            let res = bare.get(bare_uri.clone()).await.unwrap();
            res.into_body().collect().await.unwrap();
        })
        .await;
        let mesh = support::mesh_client(addr);
        let routed = support::routed_client(addr);
        let through = |client: &mesh_tower::MeshClient<Empty<Bytes>>| {
            let client = client.clone();
            async move {
                let req = http::Request::get("http://svc/")
                    .body(Empty::new())
                    .unwrap();
                let res = client.oneshot(req).await.unwrap();
                res.into_body().collect().await.unwrap();
            }
        };
        let mesh = per_request(|| through(&mesh)).await;
        let routed = per_request(|| through(&routed)).await;
        println!("allocations per request (client and server, one at a time):");
        println!("  bare hyper_util client  {bare:6.1}");
        println!(
            "  MeshClient              {mesh:6.1}  (+{:.1})",
            mesh - bare
        );
        println!(
            "  MeshClient with routes  {routed:6.1}  (+{:.1})",
            routed - bare
        );
    });
    println!(
        "allocations per metrics record on a steady label set: {:.1}",
        metrics_record()
    );
}

/// Allocations of `IstioMetrics::record` per request, on a label set
/// already seen (the lookup, the counter, the three histograms).
fn metrics_record() -> f64 {
    use mesh_tower::metrics::{IstioMetrics, Peer, Recorded, Reporter, RequestLabels};
    let metrics = IstioMetrics::default();
    let labels = RequestLabels::edge(Reporter::Source, Peer::default(), Peer::default())
        .service("ratings.default.svc.cluster.local");
    metrics.record(&labels, Recorded::default());
    let region = Region::new(GLOBAL);
    for _ in 0..REQUESTS {
        metrics.record(&labels, Recorded::default());
    }
    region.change().allocations as f64 / REQUESTS as f64
}
