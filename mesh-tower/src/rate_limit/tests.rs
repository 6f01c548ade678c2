use std::time::Duration;

use http::Request;
use mesh_core::policy::{Limit, Override};
use tower::{Layer, ServiceExt};

use super::*;
use crate::test_support::echo;

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
    let svc = RateLimitLayer::new(policy).layer(echo(None, None));
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
    let svc = RateLimitLayer::new(policy).layer(echo(None, None));
    assert_eq!(admitted(&svc, 10, Some("a")).await, 3);
    assert_eq!(admitted(&svc, 10, Some("b")).await, 3);
    let pp = "spiffe://cluster.local/ns/default/sa/productpage";
    assert_eq!(admitted(&svc, 10, Some(pp)).await, 6);
    // Requests without an identity share one bucket.
    assert_eq!(admitted(&svc, 2, None).await, 2);
    assert_eq!(admitted(&svc, 10, None).await, 1);
}
