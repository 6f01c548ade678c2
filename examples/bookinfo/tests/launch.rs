//! The whole of bookinfo in one process, as `bookinfo` runs it: the page
//! through the ingress gateway with details (behind mesh-sidecar) and
//! reviews (its versions' instances, asking ratings over gRPC) both in
//! it, every call mutual TLS, plain text refused at every service port,
//! and the service graph in each service's `istio_requests_total`.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use bookinfo::launch::{Options, Running, start};
use support::{get, served_by};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookinfo_serves_its_page_through_the_mesh() {
    let state = tempfile::tempdir().unwrap();
    let options = Options {
        port: 0,
        config: bookinfo::launch::CONFIG.into(),
        scenario: None,
        mtls: true,
        state: state.path().to_owned(),
    };
    let running = start(&options).await.unwrap();
    for w in &running.workloads {
        assert!(
            Running::ready(w, Duration::from_secs(20)).await,
            "{} never ready",
            w.name
        );
    }

    let mut pods = BTreeSet::new();
    for _ in 0..30 {
        let (status, page) = get(running.gateway, "/productpage", &[]).await;
        assert_eq!(status, 200);
        assert!(page.contains("Book Details"), "{page}");
        assert!(page.contains("Book Reviews"), "{page}");
        assert!(!page.contains("Error fetching"), "{page}");
        assert!(
            !page.contains("Ratings service is currently unavailable"),
            "{page}"
        );
        pods.insert(served_by(&page).unwrap());
    }
    let versions: BTreeSet<&str> = pods
        .iter()
        .map(|p| &p["reviews-".len().."reviews-".len() + 2])
        .collect();
    assert_eq!(versions, BTreeSet::from(["v1", "v2", "v3"]), "{pods:?}");
    assert_eq!(get(running.gateway, "/admin", &[]).await.0, 404);

    // STRICT: plain text to any service port gets no answer.
    for w in running
        .workloads
        .iter()
        .filter(|w| w.name != "istio-ingressgateway")
    {
        let plain = tokio::time::timeout(
            Duration::from_secs(5),
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<bytes::Bytes>>()
                .get(format!("http://{}/health", w.addr).parse().unwrap()),
        )
        .await
        .unwrap();
        assert!(plain.is_err(), "{} answered plain text: {plain:?}", w.name);
    }

    // The service graph, from each destination's metrics.
    let metrics = |name: &str| {
        let w = running.workloads.iter().find(|w| w.name == name).unwrap();
        let admin = w.admin;
        async move { get(admin, "/stats/prometheus", &[]).await.1 }
    };
    let edge = |from: &str, to: &str| {
        format!("source_workload=\"{from}\"") + "|" + &format!("destination_workload=\"{to}\"")
    };
    let has_edge = |text: &str, from: &str, to: &str| {
        text.lines().any(|l| {
            l.starts_with("istio_requests_total{")
                && l.contains("reporter=\"destination\"")
                && edge(from, to).split('|').all(|part| l.contains(part))
        })
    };
    let productpage = metrics("productpage-v1-0").await;
    assert!(
        has_edge(&productpage, "istio-ingressgateway", "productpage-v1"),
        "{productpage}"
    );
    let ratings = metrics("ratings-v1-0").await;
    assert!(
        has_edge(&ratings, "reviews-v2", "ratings-v1")
            || has_edge(&ratings, "reviews-v3", "ratings-v1"),
        "{ratings}"
    );
    let details = metrics("details-v1-0").await;
    assert!(
        has_edge(&details, "productpage-v1", "details-v1"),
        "{details}"
    );
    let reviews: String = futures_util::future::join_all(
        running
            .workloads
            .iter()
            .filter(|w| w.name.starts_with("reviews"))
            .map(|w| metrics(&w.name)),
    )
    .await
    .concat();
    assert!(
        has_edge(&reviews, "productpage-v1", "reviews-v1"),
        "{reviews}"
    );

    tokio::time::timeout(Duration::from_secs(15), running.shutdown())
        .await
        .expect("bookinfo stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_mtls_the_services_take_plain_text() {
    let (_state, running) = support::launch_with(None, false).await;
    let page = support::page(running.gateway, None).await;
    assert!(
        page.contains("Book Details") && page.contains("Book Reviews"),
        "{page}"
    );
    assert!(!page.contains("Error fetching"), "{page}");
    let productpage = running
        .workloads
        .iter()
        .find(|w| w.name == "productpage-v1-0")
        .unwrap();
    assert_eq!(
        get(productpage.addr, "/health", &[]).await,
        (200, "Product page is healthy".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviews_instance_killed_under_load_costs_no_page() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,mesh_tower=debug")
        .with_test_writer()
        .try_init();
    let (_state, mut running) = support::launch(None).await;
    let gateway = running.gateway;
    let load = tokio::spawn(async move {
        let mut pages = Vec::new();
        for _ in 0..300 {
            pages.push(support::page(gateway, None).await);
        }
        pages
    });
    // Partway through, one instance dies.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(running.kill("reviews-v2-0"));
    let pages = load.await.unwrap();
    for page in &pages {
        assert!(!page.contains("Error fetching"), "{page}");
        assert!(!page.contains("currently unavailable"), "{page}");
    }
    let last: BTreeSet<String> = pages[250..].iter().filter_map(|p| served_by(p)).collect();
    assert!(
        !last.contains("reviews-v2-0"),
        "the dead one serves: {last:?}"
    );
    assert!(last.contains("reviews-v2-1"), "{last:?}");
}
