use std::time::SystemTime;

use http_body_util::BodyExt;
use mesh_core::telemetry::WorkloadMetadata;

use super::*;
use crate::metrics::{IstioMetrics, Peer, Recorded, Reporter, RequestLabels};
use crate::tls::WorkloadIdentity;

const RATINGS: &str = "spiffe://cluster.local/ns/default/sa/ratings";

/// A workload identity for `id`, from a root made here.
fn identity(id: &str) -> WorkloadIdentity {
    let mut root = rcgen::CertificateParams::default();
    root.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let root_key = rcgen::KeyPair::generate().unwrap();
    let root = rcgen::CertifiedIssuer::self_signed(root, root_key).unwrap();
    let mut leaf = rcgen::CertificateParams::default();
    leaf.distinguished_name = rcgen::DistinguishedName::new();
    leaf.subject_alt_names = vec![rcgen::SanType::URI(id.try_into().unwrap())];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &root).unwrap();
    WorkloadIdentity::from_pem(
        cert.pem().as_bytes(),
        key.serialize_pem().as_bytes(),
        root.pem().as_bytes(),
        SystemTime::now(),
    )
    .unwrap()
}

async fn get(admin: &Admin, path: &str) -> (StatusCode, String) {
    let req = Request::get(path).body(()).unwrap();
    let res = admin.respond(&req);
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn admin() -> AdminBuilder {
    let metrics = IstioMetrics::default();
    let ratings =
        WorkloadMetadata::from_labels("ratings-0", "default", "ratings-v1", &Default::default());
    let labels = RequestLabels::edge(
        Reporter::Destination,
        Peer::default(),
        Peer {
            metadata: Some(&ratings),
            principal: None,
        },
    );
    metrics.record(&labels, Recorded::default());
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    Admin::builder(registry).identity(IdentitySource::from(identity(RATINGS)))
}

#[tokio::test]
async fn every_endpoint_answers() {
    let admin = admin().build();
    let (status, body) = get(&admin, "/stats/prometheus").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("istio_requests_total{reporter=\"destination\""),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    let (_, stats) = get(&admin, "/stats").await;
    assert!(
        stats
            .lines()
            .any(|l| l.starts_with("istio_requests_total{") && l.ends_with("}: 1")),
        "{stats}"
    );
    assert!(!stats.contains('#'), "{stats}");

    let (status, certs) = get(&admin, "/certs").await;
    assert_eq!(status, StatusCode::OK);
    let certs: serde_json::Value = serde_json::from_str(&certs).unwrap();
    let leaf = &certs["certificates"][0]["cert_chain"][0];
    assert_eq!(leaf["subject_alt_names"][0]["uri"], RATINGS);
    assert!(
        leaf["serial_number"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(leaf["expiration_time"].as_str().unwrap().ends_with('Z'));
    assert!(!certs.to_string().contains("PRIVATE KEY"));

    assert_eq!(
        get(&admin, "/ready").await,
        (StatusCode::SERVICE_UNAVAILABLE, "PRE_INITIALIZING\n".into())
    );
    admin.set_ready(true);
    assert_eq!(
        get(&admin, "/ready").await,
        (StatusCode::OK, "LIVE\n".into())
    );
    assert_eq!(get(&admin, "/healthz").await.0, StatusCode::OK);
    // Without clients: nothing to list, in each shape.
    assert_eq!(
        get(&admin, "/clusters").await,
        (StatusCode::OK, String::new())
    );
    let (status, json) = get(&admin, "/clusters?format=json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json).unwrap(),
        serde_json::json!({ "cluster_statuses": [] })
    );
    let (status, routes) = get(&admin, "/routes").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&routes).unwrap(),
        serde_json::json!({ "clients": [] })
    );
    // No xDS client: no dump.
    assert_eq!(get(&admin, "/config_dump").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&admin, "/nothing").await.0, StatusCode::NOT_FOUND);
    let post = Request::post("/ready").body(()).unwrap();
    assert_eq!(
        admin.respond(&post).status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn the_page_is_self_contained_html() {
    let admin = admin().build();
    let res = admin.respond(&Request::get("/").body(()).unwrap());
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let page = String::from_utf8(body.to_vec()).unwrap();
    assert!(page.starts_with("<!doctype html>"));
    assert!(!page.contains("src=\"http") && !page.contains("href=\"http"));
}

#[tokio::test]
async fn it_serves_on_a_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(admin().build().serve(listener));
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>();
    let res = client
        .get(format!("http://{addr}/stats/prometheus").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], OPENMETRICS);
}

#[tokio::test]
async fn the_log_level_changes_by_post_only() {
    let set: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let seen = set.clone();
    let admin = admin()
        .logging(Arc::new(move |level: &str| {
            if level == "nonsense=" {
                return Err("not a filter".into());
            }
            seen.lock().unwrap().push(level.to_owned());
            Ok(())
        }))
        .build();
    let post = |uri: &str| {
        admin
            .respond(&Request::post(uri).body(()).unwrap())
            .status()
    };
    assert_eq!(post("/logging?level=debug"), StatusCode::OK);
    assert_eq!(
        post("/logging?level=mesh_tower%3Dtrace%2Cinfo"),
        StatusCode::OK
    );
    assert_eq!(post("/logging?level=%zz"), StatusCode::BAD_REQUEST);
    assert_eq!(post("/logging?level=%+1"), StatusCode::BAD_REQUEST);
    assert_eq!(post("/logging?level=nonsense="), StatusCode::BAD_REQUEST);
    assert_eq!(post("/logging"), StatusCode::BAD_REQUEST);
    assert_eq!(
        admin
            .respond(&Request::get("/logging?level=trace").body(()).unwrap())
            .status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(*set.lock().unwrap(), ["debug", "mesh_tower=trace,info"]);
    // Without a way to set it: not here.
    let plain = Admin::builder(Registry::default()).build();
    let res = plain.respond(&Request::post("/logging?level=debug").body(()).unwrap());
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_application_adds_endpoints_readiness_and_metrics_of_its_own() {
    use std::sync::atomic::AtomicBool;

    #[derive(Debug)]
    struct Loads;
    impl prometheus_client::collector::Collector for Loads {
        fn encode(
            &self,
            mut encoder: prometheus_client::encoding::DescriptorEncoder,
        ) -> Result<(), std::fmt::Error> {
            use prometheus_client::encoding::EncodeMetric;
            let counter = prometheus_client::metrics::counter::ConstCounter::new(3u64);
            let metric = encoder.encode_descriptor(
                "app_loads",
                "Loads",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            counter.encode(metric)
        }
    }
    let loaded = Arc::new(AtomicBool::new(false));
    let check = loaded.clone();
    let admin = admin()
        .endpoint("/config_dump", || serde_json::json!({ "served": "v1" }))
        .ready_when(move || check.load(Ordering::Acquire))
        .collector(Loads)
        .build();
    let (status, dump) = get(&admin, "/config_dump").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&dump).unwrap(),
        serde_json::json!({ "served": "v1" })
    );
    assert_eq!(
        get(&admin, "/ready").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    loaded.store(true, Ordering::Release);
    assert_eq!(
        get(&admin, "/ready").await,
        (StatusCode::OK, "LIVE\n".into())
    );
    let (_, metrics) = get(&admin, "/stats/prometheus").await;
    assert!(metrics.contains("app_loads_total 3\n"), "{metrics}");
    assert!(metrics.contains("istio_requests_total{"), "{metrics}");
}

#[tokio::test]
async fn drain_and_quit_move_the_lifecycle_on_by_post_only() {
    let (lifecycle, mut seen) = tokio::sync::watch::channel(Lifecycle::Running);
    let plain = admin().build();
    let admin = admin().lifecycle(lifecycle).build();
    let post = |path: &str| Request::post(path).body(()).unwrap();
    let res = admin.respond(&Request::get("/quitquitquit").body(()).unwrap());
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(*seen.borrow_and_update(), Lifecycle::Running);
    assert_eq!(
        admin.respond(&post("/drain_listeners")).status(),
        StatusCode::OK
    );
    assert_eq!(*seen.borrow_and_update(), Lifecycle::Draining);
    assert_eq!(
        admin.respond(&post("/quitquitquit")).status(),
        StatusCode::OK
    );
    assert_eq!(*seen.borrow_and_update(), Lifecycle::Quitting);
    // Never back.
    admin.respond(&post("/drain_listeners"));
    assert_eq!(*seen.borrow(), Lifecycle::Quitting);
    // Without a lifecycle they are not there.
    assert_eq!(
        plain.respond(&post("/quitquitquit")).status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}
