//! Balancer pick cost with 10, 1,000 and 100,000 endpoints: it must stay
//! flat (O(1)) in the number of endpoints, for every policy.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mesh_core::policy::LoadBalancer;
use mesh_core::{Authority, Endpoint, EndpointSet, Resolve, StaticResolve};
use mesh_tower::balance::Balance;
use tower::ServiceExt;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("balance_pick");
    for (name, policy) in [
        ("peak_ewma", LoadBalancer::default()),
        ("least_request", LoadBalancer::LeastRequest),
        ("round_robin", LoadBalancer::RoundRobin),
        ("random", LoadBalancer::Random),
    ] {
        for n in [10u32, 1_000, 100_000] {
            let target: Authority = "svc:80".parse().unwrap();
            let resolve = StaticResolve::default();
            // Mixed weights, so the weighted samplers are what is measured.
            let set: EndpointSet = (0..n)
                .map(|i| {
                    Endpoint::new(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 80).into())
                        .with_weight(1 + i % 3)
                })
                .collect();
            resolve.set(&target, set);
            let balance = rt.block_on(async {
                let b = Balance::new(
                    resolve.resolve(&target),
                    |e: Endpoint| {
                        tower::service_fn(move |_req: http::Request<()>| {
                            std::future::ready(Ok::<_, std::convert::Infallible>(e.addr))
                        })
                    },
                    policy,
                    None,
                );
                b.ready().await;
                b
            });
            group.bench_with_input(BenchmarkId::new(name, n), &balance, |b, balance| {
                b.to_async(&rt).iter(|| async {
                    black_box(
                        balance
                            .clone()
                            .oneshot(http::Request::new(()))
                            .await
                            .unwrap(),
                    )
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
