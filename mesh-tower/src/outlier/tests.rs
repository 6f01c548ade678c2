use std::time::Duration;

use mesh_core::policy::OutlierDetection;
use mesh_core::{FailureKind, Outcome, UpstreamError};
use tower::ServiceExt;

use super::*;

fn status(code: u16) -> Outcome {
    Outcome::Response {
        status: http::StatusCode::from_u16(code).unwrap(),
        grpc: None,
    }
}

fn addrs(n: u16) -> Vec<std::net::SocketAddr> {
    (1..=n).map(|p| ([127, 0, 0, 1], p).into()).collect()
}

#[tokio::test(start_paused = true)]
async fn ejects_after_consecutive_5xx_and_returns_by_itself() {
    let d = OutlierDetector::new(OutlierDetection::default());
    let a = addrs(10);
    d.retain(&a);
    let h = d.endpoint(a[0]);
    for _ in 0..4 {
        d.record(&h, &status(500));
    }
    d.record(&h, &status(200));
    for _ in 0..4 {
        d.record(&h, &Outcome::Failure(FailureKind::ConnectFailure));
    }
    assert!(
        d.ejected_until(&h, tokio::time::Instant::now()).is_none(),
        "a success resets the count"
    );
    let generation = d.generation();
    d.record(&h, &status(503));
    let now = tokio::time::Instant::now();
    assert_eq!(
        d.ejected_until(&h, now),
        Some(now + Duration::from_secs(30))
    );
    assert_ne!(d.generation(), generation);

    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(d.ejected_until(&h, tokio::time::Instant::now()).is_none());
    // The second ejection lasts twice as long.
    for _ in 0..5 {
        d.record(&h, &status(500));
    }
    let now = tokio::time::Instant::now();
    assert_eq!(
        d.ejected_until(&h, now),
        Some(now + Duration::from_secs(60))
    );
    assert_eq!(h.times_ejected(), 2);
}

#[tokio::test(start_paused = true)]
async fn max_ejection_percent_is_honoured_but_one_may_always_go() {
    let d = OutlierDetector::new(OutlierDetection {
        max_ejection_percent: 10,
        ..OutlierDetection::default()
    });
    let a = addrs(3);
    d.retain(&a);
    let now = tokio::time::Instant::now();
    for addr in &a {
        let h = d.endpoint(*addr);
        for _ in 0..5 {
            d.record(&h, &status(500));
        }
    }
    let ejected = a
        .iter()
        .filter(|addr| d.ejected_until(&d.endpoint(**addr), now).is_some())
        .count();
    assert_eq!(ejected, 1);
}

#[tokio::test(start_paused = true)]
async fn gateway_errors_only_count_502_to_504() {
    let d = OutlierDetector::new(OutlierDetection {
        consecutive_5xx: None,
        consecutive_gateway_errors: Some(2),
        ..OutlierDetection::default()
    });
    d.retain(&addrs(1));
    let h = d.endpoint(addrs(1)[0]);
    d.record(&h, &status(500));
    d.record(&h, &status(500));
    assert!(d.ejected_until(&h, tokio::time::Instant::now()).is_none());
    d.record(&h, &status(502));
    d.record(&h, &status(504));
    assert!(d.ejected_until(&h, tokio::time::Instant::now()).is_some());
}

#[tokio::test(start_paused = true)]
async fn the_layer_reports_responses_and_classified_errors() {
    let d = OutlierDetector::new(OutlierDetection {
        consecutive_5xx: Some(2),
        ..OutlierDetection::default()
    });
    let addr = addrs(1)[0];
    d.retain(&[addr]);
    let failing = tower::service_fn(move |()| async move {
        Err::<http::Response<()>, _>(UpstreamError::new(
            FailureKind::Reset,
            addr,
            std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        ))
    });
    let svc = OutlierLayer::new(d.clone(), addr).layer(failing);
    svc.clone().oneshot(()).await.unwrap_err();
    svc.oneshot(()).await.unwrap_err();
    assert!(
        d.ejected_until(&d.endpoint(addr), tokio::time::Instant::now())
            .is_some()
    );
}

use tower::Layer;

#[tokio::test(start_paused = true)]
async fn an_enormous_ejection_time_does_not_overflow() {
    let d = OutlierDetector::new(OutlierDetection {
        consecutive_5xx: Some(1),
        base_ejection_time: Duration::MAX,
        max_ejection_time: Duration::MAX,
        ..OutlierDetection::default()
    });
    let addr = addrs(1)[0];
    d.retain(&[addr]);
    let h = d.endpoint(addr);
    d.record(&h, &status(500));
    assert!(d.ejected_until(&h, tokio::time::Instant::now()).is_some());
}
