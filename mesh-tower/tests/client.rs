//! MeshClient against real hyper servers on loopback.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use mesh_core::policy::{CircuitBreakers, LoadBalancer, OutlierDetection, RetryPolicy};
use mesh_core::{ClusterPolicy, EndpointSet, StaticResolve};
use mesh_tower::{BoxError, MeshClient};
use support::{Server, resolve};
use tower::ServiceExt;

async fn get(client: &MeshClient<Empty<Bytes>>, uri: &str) -> Result<String, BoxError> {
    let req = http::Request::get(uri).body(Empty::new())?;
    let res = client.clone().oneshot(req).await?;
    let server = res
        .headers()
        .get("x-server")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = res.into_body().collect().await?.to_bytes();
    Ok(server.unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned()))
}

/// `n` requests at once; how many failed.
async fn burst(client: &MeshClient<Empty<Bytes>>, n: usize) -> usize {
    let requests = (0..n).map(|_| get(client, "http://svc/"));
    let results = futures_util::future::join_all(requests).await;
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        eprintln!("request failed: {e}");
    }
    results.iter().filter(|r| r.is_err()).count()
}

/// On paused time: the ejection runs its course without the test waiting
/// for it, and what is checked does not depend on the machine's speed.
#[tokio::test(start_paused = true)]
async fn a_killed_endpoint_fails_no_request_and_comes_back() {
    let a = Server::start("a", Duration::ZERO).await;
    let mut b = Server::start("b", Duration::ZERO).await;
    let c = Server::start("c", Duration::ZERO).await;
    let ejection = Duration::from_secs(30);
    let client: MeshClient<Empty<Bytes>> = MeshClient::builder(resolve("svc:80", &[&a, &b, &c]))
        .policy(ClusterPolicy {
            retry: RetryPolicy {
                retry_on: "connect-failure,reset,refused-stream,5xx".parse().unwrap(),
                ..RetryPolicy::default()
            },
            outlier: OutlierDetection {
                base_ejection_time: ejection,
                ..OutlierDetection::default()
            },
            ..ClusterPolicy::default()
        })
        .build();
    assert_eq!(burst(&client, 60).await, 0);
    assert!(a.hits() > 0 && b.hits() > 0 && c.hits() > 0);

    // b dies while requests are in flight: they are retried elsewhere,
    // and b is ejected after its failures.
    let in_flight = {
        let client = client.clone();
        tokio::spawn(async move { burst(&client, 60).await })
    };
    tokio::task::yield_now().await;
    b.kill().await;
    assert_eq!(in_flight.await.unwrap(), 0, "no request may fail");
    assert_eq!(burst(&client, 200).await, 0, "no request may fail");

    // Back, but ejected for the ejection time.
    b.restart().await;
    let before = b.hits();
    assert_eq!(burst(&client, 100).await, 0);
    assert_eq!(b.hits(), before, "ejected: b takes nothing yet");

    // The ejection over, b takes traffic again.
    tokio::time::sleep(ejection).await;
    assert_eq!(burst(&client, 200).await, 0, "no request may fail");
    assert!(
        b.hits() > before,
        "b receives traffic again after the ejection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_ewma_sends_less_to_a_slow_endpoint() {
    let fast1 = Server::start("fast1", Duration::from_millis(1)).await;
    let fast2 = Server::start("fast2", Duration::from_millis(1)).await;
    let slow = Server::start("slow", Duration::from_millis(40)).await;
    let client: MeshClient<Empty<Bytes>> =
        MeshClient::builder(resolve("svc:80", &[&fast1, &fast2, &slow])).build();
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                for _ in 0..60 {
                    get(&client, "http://svc/").await.unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let fast = fast1.hits().min(fast2.hits());
    assert!(
        slow.hits() * 2 < fast,
        "slow {} fast {} {}",
        slow.hits(),
        fast1.hits(),
        fast2.hits()
    );
}

#[tokio::test]
async fn routes_by_authority_and_round_robins() {
    let a = Server::start("a", Duration::ZERO).await;
    let b = Server::start("b", Duration::ZERO).await;
    let other = Server::start("other", Duration::ZERO).await;
    let r = resolve("svc:9080", &[&a, &b]);
    r.set(
        &"other:80".parse().unwrap(),
        EndpointSet::new([other.endpoint()]),
    );
    let client: MeshClient<Empty<Bytes>> = MeshClient::builder(r)
        .policy(ClusterPolicy {
            load_balancer: LoadBalancer::RoundRobin,
            ..ClusterPolicy::default()
        })
        .build();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..10 {
        *counts
            .entry(get(&client, "http://svc:9080/x").await.unwrap())
            .or_default() += 1;
    }
    assert_eq!((counts["a"], counts["b"]), (5, 5));
    assert_eq!(get(&client, "http://other/").await.unwrap(), "other");
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let client: MeshClient<Empty<Bytes>> = MeshClient::builder(StaticResolve::default()).build();
    let err = get(&client, "http://a..b:80/").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid authority \"a..b:80\": empty label in host"
    );
    let err = get(&client, "/relative").await.unwrap_err();
    assert!(err.to_string().contains("no authority"), "{err}");
    let err = get(&client, "http://nowhere:80/").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot resolve nowhere:80: no endpoints are configured for it"
    );

    let r = StaticResolve::default();
    r.set(&"empty:80".parse().unwrap(), EndpointSet::default());
    let client: MeshClient<Empty<Bytes>> = MeshClient::builder(r).build();
    let err = get(&client, "http://empty/").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "no endpoint available for empty:80: discovery returned no healthy endpoints"
    );
}

#[tokio::test]
async fn a_dead_endpoint_gives_a_classified_error_and_large_bodies_are_not_replayed() {
    let mut dead = Server::start("dead", Duration::ZERO).await;
    dead.kill().await;
    let client: MeshClient<Full<Bytes>> = MeshClient::builder(resolve("svc:80", &[&dead])).build();
    let req = http::Request::post("http://svc/")
        .body(Full::new(Bytes::from_static(b"small")))
        .unwrap();
    let err = client.clone().oneshot(req).await.unwrap_err();
    assert_eq!(
        mesh_tower::classify(&*err),
        mesh_core::FailureKind::ConnectFailure
    );
    assert!(
        err.to_string()
            .starts_with("connection failed to 127.0.0.1:"),
        "{err}"
    );

    let big = Bytes::from(vec![b'x'; 100 * 1024]);
    let req = http::Request::post("http://svc/")
        .body(Full::new(big))
        .unwrap();
    let err = client.oneshot(req).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "not retried: the request body is larger than the 65536-byte replay limit"
    );
}

#[tokio::test]
async fn bodies_reach_the_server_and_retries_replay_them() {
    let mut dead = Server::start("dead", Duration::ZERO).await;
    dead.kill().await;
    let live = Server::start("live", Duration::ZERO).await;
    let client: MeshClient<Full<Bytes>> = MeshClient::builder(resolve("svc:80", &[&dead, &live]))
        .policy(ClusterPolicy {
            load_balancer: LoadBalancer::RoundRobin,
            ..ClusterPolicy::default()
        })
        .build();
    for _ in 0..4 {
        let req = http::Request::post("http://svc/")
            .body(Full::new(Bytes::from_static(b"12345")))
            .unwrap();
        let res = client.clone().oneshot(req).await.unwrap();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "live:5");
    }
}

#[tokio::test]
async fn circuit_breaker_overflow_fails_fast() {
    let slow = Server::start("slow", Duration::from_secs(30)).await;
    let client: MeshClient<Empty<Bytes>> = MeshClient::builder(resolve("svc:80", &[&slow]))
        .policy(ClusterPolicy {
            circuit_breakers: CircuitBreakers {
                max_requests: 1,
                max_pending_requests: 0,
            },
            ..ClusterPolicy::default()
        })
        .build();
    let held = tokio::spawn({
        let client = client.clone();
        async move { get(&client, "http://svc/").await }
    });
    while slow.hits() == 0 {
        tokio::task::yield_now().await;
    }
    let err = tokio::time::timeout(Duration::from_secs(5), get(&client, "http://svc/"))
        .await
        .expect("overflow must not queue")
        .unwrap_err();
    assert_eq!(
        mesh_tower::classify(&*err),
        mesh_core::FailureKind::Overflow
    );
    assert!(err.to_string().starts_with("circuit breaker open"), "{err}");
    held.abort();
}
