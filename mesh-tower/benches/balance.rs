//! Balancer pick cost with 10, 1,000 and 100,000 endpoints: it must stay
//! flat (O(1)) in the number of endpoints, for every policy (O(log n) for
//! ring hash). The hash policies get a different `RequestHash` per request.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mesh_core::policy::{LoadBalancer, Maglev, RingHash};
use mesh_core::{Authority, Endpoint, EndpointSet, Resolve, StaticResolve};
use mesh_tower::balance::{Balance, RequestHash};
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
        ("ring_hash", LoadBalancer::RingHash(RingHash::default())),
        ("maglev", LoadBalancer::Maglev(Maglev::default())),
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
            let key = std::cell::Cell::new(0u64);
            group.bench_with_input(BenchmarkId::new(name, n), &balance, |b, balance| {
                b.to_async(&rt).iter(|| async {
                    let mut req = http::Request::new(());
                    if policy.is_consistent_hash() {
                        key.set(key.get().wrapping_add(0x9e37_79b9_7f4a_7c15));
                        req.extensions_mut().insert(RequestHash(key.get()));
                    }
                    black_box(balance.clone().oneshot(req).await.unwrap())
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
