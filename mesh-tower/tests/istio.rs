//! Istio's own bookinfo YAML (the samples in mesh-core's test data) as a
//! MeshClient's configuration, against real servers.

mod support;

use std::collections::HashMap;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use mesh_tower::MeshClient;
use support::bookinfo::Bookinfo;
use tower::ServiceExt;

/// The bookinfo samples named, with the DestinationRules of every subset.
fn client(bookinfo: &Bookinfo, files: &[&str]) -> MeshClient<Full<Bytes>> {
    bookinfo.client(support::bookinfo::samples(files))
}

async fn send(client: &MeshClient<Full<Bytes>>, uri: &str, user: Option<&str>) -> (u16, String) {
    let mut req = http::Request::get(uri);
    if let Some(u) = user {
        req = req.header("end-user", u);
    }
    let res = client
        .clone()
        .oneshot(req.body(Full::default()).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let server = res
        .headers()
        .get("x-server")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        server.unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookinfo_yaml_routes_real_traffic() {
    let bookinfo = Bookinfo::start().await;
    let reviews = "http://reviews:9080/reviews/0";

    let test_v2 = client(&bookinfo, &["virtual-service-reviews-test-v2.yaml"]);
    assert_eq!(send(&test_v2, reviews, Some("jason")).await.1, "reviews-v2");
    assert_eq!(send(&test_v2, reviews, Some("bob")).await.1, "reviews-v1");

    let split = client(&bookinfo, &["virtual-service-reviews-80-20.yaml"]);
    let answers: Vec<_> = futures_util::stream::iter(0..10_000)
        .map(|_| send(&split, reviews, None))
        .buffer_unordered(32)
        .collect()
        .await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (_, who) in answers {
        *counts.entry(who).or_default() += 1;
    }
    let v1 = counts["reviews-v1"] as f64 / 100.0;
    assert!((v1 - 80.0).abs() <= 3.0, "{counts:?}");
    assert_eq!(
        counts["reviews-v1"] + counts["reviews-v2"],
        10_000,
        "{counts:?}"
    );

    let abort = client(&bookinfo, &["virtual-service-ratings-test-abort.yaml"]);
    let ratings = "http://ratings:9080/ratings/0";
    assert_eq!(
        send(&abort, ratings, Some("jason")).await,
        (500, "fault filter abort".into())
    );
    assert_eq!(
        send(&abort, ratings, Some("bob")).await,
        (200, "ratings-v1".into())
    );
}
