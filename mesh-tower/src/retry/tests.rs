use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use mesh_core::policy::{RetryBudget, RetryPolicy};
use mesh_core::{FailureKind, UpstreamError};
use tower::ServiceExt;

use super::*;

type Req = http::Request<ReplayBody<Full<Bytes>>>;

/// A service answering with the statuses in `script` in turn (0 = connect
/// failure), echoing the request body; counts calls.
fn scripted(
    script: &'static [u16],
    calls: Arc<AtomicUsize>,
) -> impl Service<Req, Response = http::Response<Bytes>, Error = BoxError, Future: Send>
+ Clone
+ Send
+ 'static {
    tower::service_fn(move |req: Req| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        async move {
            let body = req.into_body().collect().await?.to_bytes();
            match script.get(n).or(script.last()).copied().unwrap_or(200) {
                0 => Err(UpstreamError::new(
                    FailureKind::ConnectFailure,
                    "127.0.0.1:1".parse().unwrap(),
                    std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
                )
                .into()),
                s => Ok(http::Response::builder().status(s).body(body).unwrap()),
            }
        }
    })
}

fn policy(on: &str, retries: u32) -> RetryPolicy {
    RetryPolicy {
        retry_on: on.parse().unwrap(),
        num_retries: retries,
        ..RetryPolicy::default()
    }
}

fn req(body: &'static str) -> http::Request<Full<Bytes>> {
    http::Request::new(Full::new(Bytes::from_static(body.as_bytes())))
}

#[tokio::test(start_paused = true)]
async fn retries_until_success_and_replays_the_body() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = Retry::new(scripted(&[503, 0, 200], calls.clone()), policy("5xx", 2));
    let res = svc.oneshot(req("payload")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.into_body(), "payload");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn stops_after_num_retries_with_the_last_outcome() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = Retry::new(scripted(&[503], calls.clone()), policy("5xx", 2));
    let res = svc.oneshot(req("")).await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let flag = res.extensions().get::<crate::ResponseFlag>();
    assert_eq!(flag, Some(&crate::ResponseFlag("URX")), "the retries spent");
}

#[tokio::test(start_paused = true)]
async fn does_not_retry_what_the_policy_does_not_name() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = Retry::new(scripted(&[500], calls.clone()), policy("gateway-error", 2));
    let res = svc.oneshot(req("")).await.unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(res.extensions().get::<crate::ResponseFlag>().is_none());
}

#[tokio::test(start_paused = true)]
async fn backoff_is_bounded_by_the_policy() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = Retry::new(scripted(&[503], calls.clone()), policy("5xx", 3));
    let start = tokio::time::Instant::now();
    svc.oneshot(req("")).await.unwrap();
    // 25 + 50 + 100 ms at most.
    assert!(
        start.elapsed() <= Duration::from_millis(175),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn per_try_timeout_fires_and_is_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let slow_then_fast = tower::service_fn(move |_req: Req| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            Ok::<_, BoxError>(http::Response::new(Bytes::new()))
        }
    });
    let p = RetryPolicy {
        per_try_timeout: Some(Duration::from_secs(2)),
        ..policy("reset", 1)
    };
    let start = tokio::time::Instant::now();
    let res = Retry::new(slow_then_fast, p.clone())
        .oneshot(req(""))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed <= Duration::from_millis(2025),
        "{elapsed:?}"
    );

    let always_slow = tower::service_fn(|_req: Req| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<_, BoxError>(http::Response::new(Bytes::new()))
    });
    let err = Retry::new(
        always_slow,
        RetryPolicy {
            num_retries: 0,
            ..p
        },
    )
    .oneshot(req(""))
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "attempt timed out after 2s (per-try timeout)"
    );
}

#[tokio::test(start_paused = true)]
async fn grpc_unavailable_in_trailers_only_response_is_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let svc = tower::service_fn(move |_req: Req| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut res = http::Response::new(Bytes::new());
            if n == 0 {
                res.headers_mut()
                    .insert("grpc-status", "14".parse().unwrap());
            }
            Ok::<_, BoxError>(res)
        }
    });
    let res = Retry::new(svc, RetryPolicy::default())
        .oneshot(req(""))
        .await
        .unwrap();
    assert!(res.headers().get("grpc-status").is_none());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_body_too_large_to_replay_is_sent_once_with_a_clear_error() {
    let calls = Arc::new(AtomicUsize::new(0));
    let p = RetryPolicy {
        max_replay_body_bytes: 4,
        ..policy("connect-failure", 2)
    };
    let err = Retry::new(scripted(&[0], calls.clone()), p)
        .oneshot(req("larger than four"))
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        err.to_string(),
        "not retried: the request body is larger than the 4-byte replay limit"
    );
    assert_eq!(crate::classify(&*err), FailureKind::ConnectFailure);
}

#[tokio::test(start_paused = true)]
async fn the_budget_caps_retries_in_a_full_outage() {
    let calls = Arc::new(AtomicUsize::new(0));
    let p = RetryPolicy {
        budget: RetryBudget {
            retry_ratio: 0.2,
            min_retries_per_second: 0,
            ttl: Duration::from_secs(10),
        },
        ..policy("5xx", 3)
    };
    let svc = Retry::new(scripted(&[503], calls.clone()), p);
    let n = 1000;
    for _ in 0..n {
        svc.clone().oneshot(req("")).await.unwrap();
    }
    let total = calls.load(Ordering::SeqCst);
    // Without a budget this would be 4,000 attempts.
    assert!(total <= n + n / 5, "{total}");
    assert!(total >= n + n / 5 - 5, "{total}");
}

#[tokio::test(start_paused = true)]
async fn retries_go_to_another_endpoint() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let svc = tower::service_fn(move |req: Req| {
        let attempted = req
            .extensions()
            .get::<AttemptedEndpoints>()
            .map(|a| a.get());
        s.lock().unwrap().push(attempted);
        async move {
            let mut res = http::Response::builder()
                .status(503)
                .body(Bytes::new())
                .unwrap();
            let at = "10.0.0.1:80".parse().unwrap();
            res.extensions_mut()
                .insert(crate::endpoint::UpstreamHost(at));
            Ok::<_, BoxError>(res)
        }
    });
    Retry::new(svc, policy("5xx", 1))
        .oneshot(req(""))
        .await
        .unwrap();
    // The first attempt has nowhere to avoid; the retry avoids where the
    // first went, as its response says.
    let first = "10.0.0.1:80".parse().unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![None, Some(vec![first])]);
}

#[tokio::test(start_paused = true)]
async fn a_route_may_have_its_own_policy_under_the_clusters_budget() {
    let calls = Arc::new(AtomicUsize::new(0));
    let cluster = policy("5xx", 2);
    let budget = Arc::new(Budget::new(cluster.budget));
    let svc = Retry::with_budget(
        scripted(&[503], calls.clone()),
        Arc::new(policy("5xx", 0)),
        budget,
    );
    assert_eq!(svc.oneshot(req("")).await.unwrap().status(), 503);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
