//! Heap memory an ADS client holds for a snapshot of 10,000 clusters with
//! 100,000 endpoints: per virtual host, per cluster and per endpoint,
//! counted by an instrumented allocator as each type is applied (net bytes
//! still allocated after each response, decoding freed).
//!
//! `cargo bench -p mesh-xds --bench snapshot_memory`

#![allow(clippy::print_stdout)]

mod mesh;

use std::alloc::System;
use std::time::Instant;

use mesh::{LISTENER, Mesh, node};
use mesh_xds::ads::{AdsState, AdsView};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not freed since `region` began.
fn held(region: &Region<'_, System>) -> isize {
    let c = region.change();
    c.bytes_allocated as isize - c.bytes_deallocated as isize
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let (clusters, per_cluster) = (10_000, 10);
    let endpoints = clusters * per_cluster;
    let mesh = Mesh::new(clusters, per_cluster);
    let responses = mesh.sotw_responses();
    drop(mesh);

    let region = Region::new(GLOBAL);
    let mut state = AdsState::new(&node());
    let now = Instant::now();
    state.subscribe_listener(LISTENER, now);
    state.on_stream_start(now);
    let mut steps = vec![held(&region)];
    for response in &responses {
        state.handle_response(response, now);
        steps.push(held(&region));
    }
    let view = AdsView::new(&state, true);
    let with_view = held(&region);
    let step = |i: usize| steps[i + 1] - steps[i];
    println!("snapshot of {clusters} clusters with {endpoints} endpoints, bytes held:");
    println!("  per virtual host (RDS): {}", step(1) / clusters as isize);
    println!("  per cluster (CDS):      {}", step(2) / clusters as isize);
    println!("  per endpoint (EDS):     {}", step(3) / endpoints as isize);
    println!("  total:                  {}", steps[4] - steps[0]);
    println!("  a published view:       {}", with_view - steps[4]);
    drop(view);
}
