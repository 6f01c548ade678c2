//! Istio's traffic-management tasks on bookinfo, each as its task
//! documents the outcome, through the ingress gateway: request routing,
//! weighted shifting, fault injection (delay and abort), request timeouts
//! and authorization granted step by step; and a scenario copied into
//! the followed directory applied live.

mod support;

use std::time::{Duration, Instant};

use support::{launch, page, served_by, sign_in, stars};

const UNAVAILABLE: &str = "Sorry, product reviews are currently unavailable for this book.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_v1_shows_no_stars() {
    let (_state, running) = launch(Some("virtual-service-all-v1")).await;
    for _ in 0..20 {
        let page = page(running.gateway, None).await;
        assert!(stars(&page).is_empty(), "{page}");
        assert!(
            served_by(&page).unwrap().starts_with("reviews-v1-"),
            "{page}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jason_sees_black_stars_and_everyone_else_none() {
    let (_state, running) = launch(Some("virtual-service-reviews-test-v2")).await;
    let jason = sign_in(running.gateway, "jason").await;
    for _ in 0..10 {
        let his = page(running.gateway, Some(&jason)).await;
        assert!(his.contains("jason"), "{his}");
        assert_eq!(stars(&his), [(5, "black".into()), (4, "black".into())]);
        let anyone = page(running.gateway, None).await;
        assert!(stars(&anyone).is_empty(), "{anyone}");
    }
    let other = sign_in(running.gateway, "ann").await;
    assert!(stars(&page(running.gateway, Some(&other)).await).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_fifty_between_v1_and_v3() {
    let (_state, running) = launch(Some("virtual-service-reviews-50-v3")).await;
    let (mut v1, mut v3) = (0, 0);
    for _ in 0..1000 {
        match stars(&page(running.gateway, None).await).as_slice() {
            [] => v1 += 1,
            [(5, red), (4, _)] if red == "red" => v3 += 1,
            other => panic!("neither v1 nor v3: {other:?}"),
        }
    }
    assert!((450..=550).contains(&v1), "v1 {v1}, v3 {v3}");
    assert_eq!(v1 + v3, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_v3_shows_red_stars() {
    let (_state, running) = launch(Some("virtual-service-reviews-v3")).await;
    for _ in 0..10 {
        let page = page(running.gateway, None).await;
        assert_eq!(stars(&page), [(5, "red".into()), (4, "red".into())]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_for_jason_outlasts_productpages_two_tries() {
    let (_state, running) = launch(Some("virtual-service-ratings-test-delay")).await;
    let anyone = page(running.gateway, None).await;
    assert!(anyone.contains("Book Reviews"), "{anyone}");
    let jason = sign_in(running.gateway, "jason").await;
    let started = Instant::now();
    let his = page(running.gateway, Some(&jason)).await;
    let waited = started.elapsed();
    assert!(his.contains("Error fetching product reviews"), "{his}");
    assert!(his.contains(UNAVAILABLE), "{his}");
    // Two tries of 3 s each: at least 6 s, well before ratings' 7 s are
    // up twice.
    assert!(waited >= Duration::from_secs(6), "{waited:?}");
    assert!(waited < Duration::from_secs(14), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_for_jason_shows_the_ratings_error() {
    let (_state, running) = launch(Some("virtual-service-ratings-test-abort")).await;
    let jason = sign_in(running.gateway, "jason").await;
    let his = page(running.gateway, Some(&jason)).await;
    assert!(
        his.contains("Ratings service is currently unavailable"),
        "{his}"
    );
    assert!(his.contains("Book Reviews"), "{his}");
    let anyone = page(running.gateway, None).await;
    assert!(
        !anyone.contains("Ratings service is currently unavailable"),
        "{anyone}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_second_timeout_on_reviews_fails_it_after_two_tries() {
    let (_state, running) = launch(Some("request-timeouts")).await;
    let started = Instant::now();
    let page = page(running.gateway, None).await;
    let waited = started.elapsed();
    assert!(page.contains(UNAVAILABLE), "{page}");
    assert!(page.contains("Book Details"), "{page}");
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_copied_in_applies_live() {
    let (_state, running) = launch(None).await;
    std::fs::copy(
        bookinfo::launch::scenario("virtual-service-reviews-v3").unwrap(),
        running.config.join("virtual-service-reviews-v3.yaml"),
    )
    .unwrap();
    only_red_stars(&running).await;
}

/// Copies the scenario `name` into `running`'s followed configuration.
fn apply(running: &bookinfo::launch::Running, name: &str) {
    std::fs::copy(
        bookinfo::launch::scenario(name).unwrap(),
        running.config.join(format!("{name}.yaml")),
    )
    .unwrap();
}

/// Waits until the anonymous user's page holds every one of `texts`.
async fn until_page(running: &bookinfo::launch::Running, texts: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, page) = support::get(running.gateway, "/productpage", &[]).await;
        if texts.iter().all(|t| page.contains(t)) {
            return;
        }
        assert!(Instant::now() < deadline, "never {texts:?}: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_is_granted_step_by_step() {
    let (_state, running) = launch(Some("virtual-service-reviews-test-v2")).await;
    // Everyone on v2, which asks ratings.
    std::fs::write(
        running.config.join("virtual-service-reviews-test-v2.yaml"),
        std::fs::read_to_string(
            bookinfo::launch::scenario("virtual-service-reviews-test-v2").unwrap(),
        )
        .unwrap()
        .replace("subset: v1", "subset: v2"),
    )
    .unwrap();
    until_page(&running, &["Book Details", "data-color=\"black\""]).await;

    apply(&running, "authorization-allow-nothing");
    until_page(&running, &["RBAC: access denied"]).await;
    apply(&running, "authorization-productpage-viewer");
    until_page(
        &running,
        &[
            "Error fetching product details",
            "Error fetching product reviews",
        ],
    )
    .await;
    apply(&running, "authorization-details-viewer");
    until_page(
        &running,
        &["Book Details", "Error fetching product reviews"],
    )
    .await;
    apply(&running, "authorization-reviews-viewer");
    until_page(
        &running,
        &["Book Reviews", "Ratings service is currently unavailable"],
    )
    .await;
    apply(&running, "authorization-ratings-viewer");
    until_page(
        &running,
        &["Book Details", "data-stars=\"5\" data-color=\"black\""],
    )
    .await;
}

/// The requests `workload`'s server counted from `source`, in its
/// `istio_requests_total`.
async fn requests_from(running: &bookinfo::launch::Running, workload: &str, source: &str) -> u64 {
    let admin = running
        .workloads
        .iter()
        .find(|w| w.name == workload)
        .unwrap()
        .admin;
    let (_, metrics) = support::get(admin, "/stats/prometheus", &[]).await;
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("istio_requests_total{")
                && l.contains("reporter=\"destination\"")
                && l.contains(&format!("source_workload=\"{source}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrored_requests_reach_v2_and_are_not_shown() {
    let (_state, running) = launch(Some("mirroring")).await;
    for _ in 0..20 {
        let page = page(running.gateway, None).await;
        assert!(stars(&page).is_empty(), "v1 answers: {page}");
        assert!(
            served_by(&page).unwrap().starts_with("reviews-v1-"),
            "{page}"
        );
    }
    // Each copy went to a v2 instance, which asked ratings.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v2 = requests_from(&running, "reviews-v2-0", "productpage-v1").await
            + requests_from(&running, "reviews-v2-1", "productpage-v1").await;
        let ratings = requests_from(&running, "ratings-v1-0", "reviews-v2").await;
        if v2 >= 20 && ratings >= 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "mirrored: {v2} to v2, {ratings} from v2 to ratings"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn details_breaker_opens_under_concurrent_loads() {
    let (_state, running) = launch(Some("circuit-breaking")).await;
    let gateway = running.gateway;
    let mut broken = 0;
    for _ in 0..10 {
        let loads: Vec<_> = (0..20)
            .map(|_| tokio::spawn(async move { page(gateway, None).await }))
            .collect();
        for load in loads {
            if load
                .await
                .unwrap()
                .contains("Error fetching product details")
            {
                broken += 1;
            }
        }
        if broken > 0 {
            break;
        }
    }
    assert!(broken > 0, "the breaker never opened");
    let admin = running
        .workloads
        .iter()
        .find(|w| w.name == "productpage-v1-0")
        .unwrap()
        .admin;
    let (_, metrics) = support::get(admin, "/stats/prometheus", &[]).await;
    let overflows: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("mesh_client_circuit_breaker_overflows") && l.contains("details"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(overflows > 0.0, "{metrics}");
}

/// Whether `workload` answers plain text at its service's port.
async fn answers_plain_text(running: &bookinfo::launch::Running, workload: &str) -> bool {
    let addr = running
        .workloads
        .iter()
        .find(|w| w.name == workload)
        .unwrap()
        .addr;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let asked = client.get(format!("http://{addr}/health").parse().unwrap());
    matches!(
        tokio::time::timeout(Duration::from_secs(5), asked).await,
        Ok(Ok(res)) if res.status() == 200
    )
}

/// Waits until `workload` does or does not answer plain text.
async fn until_plain_text(running: &bookinfo::launch::Running, workload: &str, answered: bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while answers_plain_text(running, workload).await != answered {
        assert!(Instant::now() < deadline, "{workload} never {answered}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissive_takes_plain_text_beside_mutual_tls_and_strict_again_refuses_it() {
    let (_state, running) = launch(None).await;
    assert!(!answers_plain_text(&running, "productpage-v1-0").await);
    apply(&running, "peer-authentication-permissive");
    until_plain_text(&running, "productpage-v1-0", true).await;
    until_plain_text(&running, "ratings-v1-0", true).await;
    // The mesh still speaks mutual TLS to it.
    let page = page(running.gateway, None).await;
    assert!(
        page.contains("Book Details") && !page.contains("Error fetching"),
        "{page}"
    );
    std::fs::remove_file(running.config.join("peer-authentication-permissive.yaml")).unwrap();
    until_plain_text(&running, "productpage-v1-0", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_of_the_configuration_given_applies_too() {
    // A configuration of its own, edited while bookinfo runs.
    let given = tempfile::tempdir().unwrap();
    for file in std::fs::read_dir(bookinfo::launch::CONFIG).unwrap() {
        let file = file.unwrap().path();
        std::fs::copy(&file, given.path().join(file.file_name().unwrap())).unwrap();
    }
    let state = tempfile::tempdir().unwrap();
    let options = bookinfo::launch::Options {
        port: 0,
        config: given.path().to_owned(),
        scenario: None,
        mtls: true,
        state: state.path().to_owned(),
    };
    let running = bookinfo::launch::start(&options).await.unwrap();
    for w in &running.workloads {
        assert!(bookinfo::launch::Running::ready(w, Duration::from_secs(20)).await);
    }
    std::fs::copy(
        bookinfo::launch::scenario("virtual-service-reviews-v3").unwrap(),
        given.path().join("reviews-v3.yaml"),
    )
    .unwrap();
    only_red_stars(&running).await;
}

/// Waits until ten pages in a row show reviews v3's red stars.
async fn only_red_stars(running: &bookinfo::launch::Running) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut in_a_row = 0;
    while in_a_row < 10 {
        assert!(Instant::now() < deadline, "never only v3");
        let page = page(running.gateway, None).await;
        if stars(&page) == [(5, "red".to_owned()), (4, "red".to_owned())] {
            in_a_row += 1;
        } else {
            in_a_row = 0;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
