//! Route lookup with 10, 1,000 and 10,000 virtual hosts of 50 routes each:
//! the time per lookup must stay flat in the number of virtual hosts
//! (domains are hash lookups; only the matched host's routes are walked).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::HeaderName;
use mesh_core::route::{
    Forward, HeaderMatch, HeaderMatcher, PathMatch, Route, RouteMatch, StringMatch, VirtualHost,
};
use mesh_core::{Authority, RouteTable};

fn table(hosts: usize) -> RouteTable {
    let vhosts = (0..hosts)
        .map(|h| {
            let routes = (0..50)
                .map(|r| {
                    Route::forward(Forward::to(format!("svc{h}-r{r}").as_str())).when(RouteMatch {
                        path: PathMatch {
                            kind: StringMatch::Prefix(format!("/api/v{r}/")),
                            ignore_case: false,
                        },
                        headers: vec![HeaderMatcher {
                            name: HeaderName::from_static("end-user"),
                            kind: HeaderMatch::Value(StringMatch::Exact(format!("user{r}"))),
                            invert: false,
                        }],
                        ..Default::default()
                    })
                })
                .collect();
            VirtualHost::new(
                format!("svc{h}"),
                [
                    format!("svc{h}"),
                    format!("svc{h}.default.svc.cluster.local"),
                    format!("svc{h}.default.svc.cluster.local:80"),
                ],
                routes,
            )
        })
        .collect();
    RouteTable::new(vhosts).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_lookup");
    for hosts in [10usize, 1_000, 10_000] {
        let table = table(hosts);
        let target: Authority = format!("svc{}.default.svc.cluster.local:80", hosts / 2)
            .parse()
            .unwrap();
        // Matches the 25th of 50 routes: half the list is walked.
        let req = http::Request::get("http://svc/api/v25/items")
            .header("end-user", "user25")
            .body(())
            .unwrap();
        assert!(table.find(&target, &req).is_some());
        group.bench_with_input(BenchmarkId::from_parameter(hosts), &hosts, |b, _| {
            b.iter(|| black_box(table.find(black_box(&target), black_box(&req))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
