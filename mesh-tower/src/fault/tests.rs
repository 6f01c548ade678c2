use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use mesh_core::route::{FaultAbort, FaultDelay};
use tower::ServiceExt;

use super::*;
use crate::test_support::echo;

fn faulted(
    fault: FaultPolicy,
) -> impl Service<Request<()>, Response = http::Response<ResponseBody>, Error = BoxError, Future: Send>
+ Clone {
    FaultLayer::with_seed(3)
        .policy(fault)
        .layer(echo(None, None))
}

fn get() -> Request<()> {
    Request::get("http://reviews:9080/").body(()).unwrap()
}

fn abort(abort: AbortSource, percent: f64) -> FaultPolicy {
    FaultPolicy {
        abort: Some(FaultAbort {
            abort,
            percent: Percent::new(percent).unwrap(),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn aborts_with_an_http_status() {
    let svc = faulted(abort(
        AbortSource::Http(StatusCode::INTERNAL_SERVER_ERROR),
        100.0,
    ));
    let res = svc.oneshot(get()).await.unwrap();
    assert_eq!(res.status(), 500);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "fault filter abort");
}

#[tokio::test]
async fn aborts_grpc_with_a_trailers_only_status() {
    let svc = faulted(abort(AbortSource::Grpc(GrpcCode(14)), 100.0));
    let res = svc.oneshot(get()).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["grpc-status"], "14");
    assert_eq!(res.headers()["content-type"], "application/grpc");
}

#[tokio::test]
async fn half_the_requests_are_aborted() {
    let svc = faulted(abort(
        AbortSource::Http(StatusCode::SERVICE_UNAVAILABLE),
        50.0,
    ));
    let mut aborted = 0;
    for _ in 0..10_000 {
        if svc.clone().oneshot(get()).await.unwrap().status() == 503 {
            aborted += 1;
        }
    }
    assert!(
        (4_700..=5_300).contains(&aborted),
        "{aborted} of 10,000 aborted"
    );
}

#[tokio::test(start_paused = true)]
async fn delays_then_forwards() {
    let svc = faulted(FaultPolicy {
        delay: Some(FaultDelay {
            delay: DelaySource::Fixed(Duration::from_secs(7)),
            percent: Percent::ALL,
        }),
        ..Default::default()
    });
    let start = tokio::time::Instant::now();
    let res = svc.oneshot(get()).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(start.elapsed(), Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn header_faults_and_the_active_bound() {
    let mut policy = FaultPolicy {
        delay: Some(FaultDelay {
            delay: DelaySource::Header,
            percent: Percent::ALL,
        }),
        abort: Some(FaultAbort {
            abort: AbortSource::Header,
            percent: Percent::ALL,
        }),
        max_active_faults: None,
    };
    let svc = faulted(policy.clone());
    assert_eq!(svc.clone().oneshot(get()).await.unwrap().status(), 200);
    let req = Request::get("http://reviews:9080/")
        .header(ABORT_HEADER, "429")
        .header(DELAY_HEADER, "250")
        .body(())
        .unwrap();
    let start = tokio::time::Instant::now();
    assert_eq!(svc.clone().oneshot(req).await.unwrap().status(), 429);
    assert_eq!(start.elapsed(), Duration::from_millis(250));
    let zero = Request::get("http://reviews:9080/")
        .header(ABORT_HEADER, "429")
        .header(ABORT_PERCENT_HEADER, "0")
        .body(())
        .unwrap();
    assert_eq!(svc.oneshot(zero).await.unwrap().status(), 200);

    // With one fault allowed, a second request arriving during the first's
    // delay passes untouched.
    policy.max_active_faults = Some(1);
    let svc = faulted(policy);
    let delayed = |ms: &str| {
        Request::get("http://reviews:9080/")
            .header(DELAY_HEADER, ms)
            .header(ABORT_HEADER, "500")
            .body(())
            .unwrap()
    };
    let first = tokio::spawn(svc.clone().oneshot(delayed("1000")));
    tokio::task::yield_now().await;
    assert_eq!(
        svc.clone().oneshot(delayed("1000")).await.unwrap().status(),
        200
    );
    assert_eq!(first.await.unwrap().unwrap().status(), 500);
    assert_eq!(svc.oneshot(delayed("1")).await.unwrap().status(), 500);
}
