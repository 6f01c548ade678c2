//! A `MeshClient` under `IstioMetricsLayer` (`reporter="source"`) with
//! Istio's bookinfo fault-injection sample: after a known sequence of
//! requests (a success, a fault-injected abort, a 503 retried until the
//! retries are spent, a request to a port nothing listens on, a target
//! that resolves to nothing) each counter has its exact value, with
//! Envoy's response flags.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use mesh_core::telemetry::WorkloadMetadata;
use mesh_core::{Endpoint, EndpointSet};
use mesh_tower::metrics::{CountedBody, IstioMetrics, IstioMetricsLayer, LocalWorkload, Reporter};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use tower::{Layer, ServiceExt};

use support::bookinfo::{Bookinfo, samples};

mod support;

#[tokio::test]
async fn each_outcome_is_counted_with_its_code_and_flags() {
    let bookinfo = Bookinfo::start().await;
    // Nothing listens there: every attempt's connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    bookinfo.resolve.set(
        &"closed.default.svc.cluster.local:9080".parse().unwrap(),
        EndpointSet::new([Endpoint::new(closed_addr)]),
    );
    // Always 503: retried twice (the default policy), then given up.
    let unavailable = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let unavailable_addr = unavailable.local_addr().unwrap();
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = attempts.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = unavailable.accept().await.unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let mut res = http::Response::new(Full::<Bytes>::default());
                    *res.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                    async move { Ok::<_, std::convert::Infallible>(res) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            });
        }
    });
    bookinfo.resolve.set(
        &"unavailable.default.svc.cluster.local:9080"
            .parse()
            .unwrap(),
        EndpointSet::new([Endpoint::new(unavailable_addr)]),
    );
    let metrics = IstioMetrics::default();
    let local = LocalWorkload {
        metadata: WorkloadMetadata::from_labels(
            "productpage-v1-0",
            "default",
            "productpage-v1",
            &[("app".to_owned(), "productpage".to_owned())].into(),
        )
        .into(),
        principal: None,
        service: None,
    };
    let client = IstioMetricsLayer::new(metrics.clone(), Reporter::Source, local)
        .layer(bookinfo.client(samples(&["virtual-service-ratings-test-abort.yaml"])));
    let send = |uri: &'static str, user: Option<&'static str>| {
        let client = client.clone();
        async move {
            let mut req = http::Request::get(uri);
            if let Some(u) = user {
                req = req.header("end-user", u);
            }
            match client
                .oneshot(req.body(Full::<Bytes>::default()).unwrap())
                .await
            {
                Ok(res) => {
                    let status = res.status().as_u16();
                    res.into_body().collect().await.unwrap();
                    status
                }
                Err(_) => 0,
            }
        }
    };
    assert_eq!(send("http://ratings:9080/ratings/0", None).await, 200);
    assert_eq!(
        send("http://ratings:9080/ratings/0", Some("jason")).await,
        500
    );
    assert_eq!(
        send("http://unavailable.default.svc.cluster.local:9080/", None).await,
        503
    );
    assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 3);
    let refused = tokio::time::timeout(
        Duration::from_secs(10),
        send("http://closed.default.svc.cluster.local:9080/", None),
    );
    assert_eq!(refused.await.unwrap(), 0);
    assert_eq!(send("http://nowhere.example:80/", None).await, 0);

    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    encode(&mut text, &registry).unwrap();
    let count = |code: &str, flags: &str, service: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with("istio_requests_total{"))
            .filter(|l| {
                l.contains(&format!("response_code=\"{code}\""))
                    && l.contains(&format!("response_flags=\"{flags}\""))
                    && l.contains(&format!("destination_service=\"{service}\""))
                    && l.contains("reporter=\"source\"")
                    && l.contains("source_workload=\"productpage-v1\"")
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    // The cluster that answered names the service (Istio's cluster name).
    let ratings = "ratings.default.svc.cluster.local";
    assert_eq!(count("200", "-", ratings), 1, "{text}");
    // A fault abort is the route's: no cluster answered, so the service
    // is the request's host.
    assert_eq!(count("500", "FI", "ratings"), 1, "{text}");
    assert_eq!(
        count("0", "UF", "closed.default.svc.cluster.local"),
        1,
        "{text}"
    );
    assert_eq!(count("0", "UH", "nowhere.example"), 1, "{text}");
    // One request, three attempts: counted once, as Envoy's URX.
    assert_eq!(
        count("503", "URX", "unavailable.default.svc.cluster.local"),
        1,
        "{text}"
    );
    assert_eq!(text.matches("istio_requests_total{").count(), 5, "{text}");
}

/// A request no route of its virtual host matches: answered 404 by the
/// client itself and counted with Envoy's `NR`.
#[tokio::test]
async fn a_request_no_route_matches_is_counted_as_nr() {
    use mesh_core::StaticResolve;
    use mesh_core::route::{Forward, PathMatch, Route, RouteMatch, StringMatch, VirtualHost};
    use mesh_tower::MeshClient;

    let cluster = mesh_core::cluster::istio_cluster_name("reviews.default.svc", Some(9080), None);
    let only_reviews = Route {
        matches: RouteMatch {
            path: PathMatch {
                kind: StringMatch::Prefix("/reviews".into()),
                ignore_case: false,
            },
            ..RouteMatch::default()
        },
        ..Route::forward(Forward::to(cluster.clone()))
    };
    let config = support::config(vec![VirtualHost::new(
        "reviews",
        ["reviews:9080"],
        vec![only_reviews],
    )]);
    let client: MeshClient<CountedBody<Full<Bytes>>> =
        MeshClient::builder(StaticResolve::default())
            .config(config)
            .build();
    let metrics = IstioMetrics::default();
    let client =
        IstioMetricsLayer::new(metrics.clone(), Reporter::Source, LocalWorkload::default())
            .layer(client);
    let req = http::Request::get("http://reviews:9080/other")
        .body(Full::<Bytes>::default())
        .unwrap();
    let res = client.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 404);
    res.into_body().collect().await.unwrap();

    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    encode(&mut text, &registry).unwrap();
    let nr: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("istio_requests_total{"))
        .collect();
    let [line] = &nr[..] else { panic!("{text}") };
    assert!(
        line.contains("response_code=\"404\"") && line.contains("response_flags=\"NR\""),
        "{line}"
    );
    assert!(line.ends_with(" 1"), "{line}");
}
