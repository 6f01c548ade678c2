//! The cost of a large mesh in the ADS client: applying a snapshot of
//! 10,000 clusters with 100,000 endpoints; one EDS update to one cluster
//! in meshes of 1,000 and 10,000 clusters, which should cost the same in
//! both; and a state-of-the-world CDS response of 10,000 clusters with
//! one changed, where only the changed one should be decoded. Memory is
//! measured by the `snapshot_memory` bench.
//!
//! `cargo bench -p mesh-xds --bench snapshot`

mod mesh;

use std::time::Instant;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mesh::{Mesh, Resource, delta, delta_client, sotw, sotw_client, sotw_client_of};
use mesh_xds::ads::{AdsView, ResourceType};

fn benches(c: &mut Criterion) {
    let big = Mesh::new(10_000, 10);
    let mut group = c.benchmark_group("apply snapshot");
    group.sample_size(10);
    // Decoding, checking and converting every resource; the responses
    // are encoded beforehand.
    let responses = big.sotw_responses();
    group.bench_function("10k clusters, 100k endpoints, state of the world", |b| {
        b.iter_batched(
            || (),
            |()| AdsView::new(&sotw_client_of(&responses), true),
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("one EDS update");
    for clusters in [1_000, 10_000] {
        let mesh = Mesh::new(clusters, 10);
        let updates: Vec<Resource> = (0..64).map(|v| mesh.update(clusters / 2, v)).collect();

        let mut state = sotw_client(&mesh);
        let mut version = 1;
        group.bench_function(format!("state of the world, {clusters} clusters"), |b| {
            b.iter(|| {
                version += 1;
                let update = &updates[version as usize % updates.len()];
                let response = sotw(
                    ResourceType::LoadAssignment,
                    version,
                    std::slice::from_ref(update),
                );
                state.handle_response(&response, Instant::now());
                AdsView::new(&state, true)
            })
        });

        let mut state = delta_client(&mesh);
        group.bench_function(format!("delta, {clusters} clusters"), |b| {
            b.iter(|| {
                version += 1;
                let update = &updates[version as usize % updates.len()];
                let response = delta(
                    ResourceType::LoadAssignment,
                    version,
                    std::slice::from_ref(update),
                );
                state.handle_response(&response, Instant::now());
                AdsView::new(state.state(), true)
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("one CDS change, all resent");
    let mesh = Mesh::new(10_000, 10);
    let clusters = &mesh
        .responses
        .iter()
        .find(|(kind, _)| *kind == ResourceType::Cluster)
        .expect("the mesh's clusters")
        .1;
    let changed = |v: u16| {
        let mut all = clusters.clone();
        let name = &mesh.names[5_000];
        all[5_000] =
            mesh::support::resources::logical_dns_cluster(name, "svc.mesh.local", 1000 + v);
        all
    };
    let responses: Vec<Vec<Resource>> = (0..64).map(changed).collect();
    let mut state = sotw_client(&mesh);
    let mut version = 1;
    group.bench_function("state of the world, 10000 clusters", |b| {
        b.iter(|| {
            version += 1;
            let all = &responses[version as usize % responses.len()];
            let response = sotw(ResourceType::Cluster, version, all);
            state.handle_response(&response, Instant::now());
            AdsView::new(&state, true)
        })
    });
    group.finish();
}

criterion_group!(snapshot, benches);
criterion_main!(snapshot);
