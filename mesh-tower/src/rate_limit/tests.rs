use std::time::Duration;

use http::Request;
use mesh_core::policy::{Limit, Override};
use mesh_core::route::{Forward, Route};
use tower::{Layer, ServiceBuilder, ServiceExt};

use super::*;
use crate::route::RouteLayer;
use crate::test_support::{config, config_of, echo};

fn limit(n: u32) -> Option<Limit> {
    Some(Limit {
        requests_per_second: n,
    })
}

fn get(identity: Option<&str>) -> Request<()> {
    let mut req = Request::get("http://reviews:9080/").body(()).unwrap();
    if let Some(id) = identity {
        req.extensions_mut().insert(ClientIdentity(id.into()));
    }
    req
}

async fn admitted<S>(svc: &S, n: usize, identity: Option<&str>) -> usize
where
    S: Service<Request<()>, Response = http::Response<ResponseBody>> + Clone,
    S::Error: std::fmt::Debug,
{
    let mut ok = 0;
    for _ in 0..n {
        let res = svc.clone().oneshot(get(identity)).await.unwrap();
        match res.status().as_u16() {
            200 => ok += 1,
            429 => {
                assert_eq!(res.headers()["x-ratelimit-remaining"], "0");
                assert!(res.headers().contains_key("x-ratelimit-limit"));
                assert!(res.headers().contains_key("x-ratelimit-reset"));
            }
            s => panic!("unexpected status {s}"),
        }
    }
    ok
}

#[tokio::test(start_paused = true)]
async fn allows_the_rate_and_refills() {
    let policy = LocalRateLimit {
        total: limit(10),
        ..Default::default()
    };
    let svc = RateLimitLayer::new(policy).layer(echo());
    assert_eq!(admitted(&svc, 25, None).await, 10);
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(admitted(&svc, 25, None).await, 5);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(
        admitted(&svc, 25, None).await,
        10,
        "a bucket holds one second"
    );
}

#[tokio::test(start_paused = true)]
async fn limits_each_identity_and_overrides() {
    let policy = LocalRateLimit {
        total: limit(100),
        identity: limit(3),
        overrides: vec![Override {
            limit: limit(6).unwrap(),
            identities: vec!["spiffe://cluster.local/ns/default/sa/productpage".into()],
        }],
    };
    let svc = RateLimitLayer::new(policy).layer(echo());
    assert_eq!(admitted(&svc, 10, Some("a")).await, 3);
    assert_eq!(admitted(&svc, 10, Some("b")).await, 3);
    let pp = "spiffe://cluster.local/ns/default/sa/productpage";
    assert_eq!(admitted(&svc, 10, Some(pp)).await, 6);
    // Requests without an identity share one bucket.
    assert_eq!(admitted(&svc, 2, None).await, 2);
    assert_eq!(admitted(&svc, 10, None).await, 1);
}

#[tokio::test(start_paused = true)]
async fn per_route_limits_follow_the_route() {
    let mut limited = Route::forward(Forward::to("v1")).when(mesh_core::route::RouteMatch {
        path: mesh_core::route::PathMatch {
            kind: mesh_core::route::StringMatch::Prefix("/limited".into()),
            ignore_case: false,
        },
        ..Default::default()
    });
    limited.rate_limit = Some(LocalRateLimit {
        total: limit(2),
        ..Default::default()
    });
    let other = Route::forward(Forward::to("v1"));
    let config = config(vec![limited.clone(), other.clone()]);
    let svc = ServiceBuilder::new()
        .layer(RouteLayer::new(config.clone()))
        .layer(RateLimitLayer::per_route(config.clone()))
        .service(echo());
    let send = |path: &'static str| {
        let svc = svc.clone();
        async move {
            let req = Request::get(format!("http://reviews:9080{path}"))
                .body(())
                .unwrap();
            svc.oneshot(req).await.unwrap().status().as_u16()
        }
    };
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(send("/limited").await);
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
    for _ in 0..10 {
        assert_eq!(send("/other").await, 200);
    }

    // A new configuration that keeps the route's policy keeps its buckets
    // (still empty); one that changes it starts full.
    let renamed = |mut r: Route, name: &str| {
        r.name = Some(name.into());
        r
    };
    config.store(config_of(table(vec![
        renamed(limited.clone(), "kept"),
        other.clone(),
    ])));
    assert_eq!(send("/limited").await, 429);
    let mut raised = limited;
    raised.rate_limit = Some(LocalRateLimit {
        total: limit(3),
        ..Default::default()
    });
    config.store(config_of(table(vec![raised, other])));
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(send("/limited").await);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
}

fn table(routes: Vec<Route>) -> mesh_core::RouteTable {
    mesh_core::RouteTable::new(vec![mesh_core::route::VirtualHost::new(
        "reviews",
        ["reviews"],
        routes,
    )])
    .unwrap()
}
