//! Istio's bookinfo samples, read and converted: the routes and clusters
//! they give, checked with requests as the client would route them.

use std::collections::BTreeMap;
use std::time::Duration;

use http::{Request, StatusCode};
use mesh_core::istio::{self, Resources, Warning};
use mesh_core::route::{
    AbortSource, DelaySource, Destination, Forward, Percent, Route, RouteAction,
};
use mesh_core::{Authority, MeshConfig};

const REVIEWS: &str = "reviews.default.svc.cluster.local";
const RATINGS: &str = "ratings.default.svc.cluster.local";

fn read(files: &[&str]) -> (Resources, Vec<Warning>) {
    let mut all = Resources::default();
    let mut warnings = Vec::new();
    for file in files {
        let path = format!("{}/tests/data/bookinfo/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("fixture");
        let (resources, w) = istio::parse(file, &text).unwrap_or_else(|e| panic!("{e}"));
        all.extend(resources);
        warnings.extend(w);
    }
    (all, warnings)
}

fn config(files: &[&str]) -> MeshConfig {
    let (resources, warnings) = read(files);
    assert!(warnings.is_empty(), "{warnings:#?}");
    resources.to_mesh_config().unwrap_or_else(|e| panic!("{e}"))
}

fn get(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut b = Request::get(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).expect("request")
}

/// The route `uri` takes, sent to its authority.
fn route<'c>(config: &'c MeshConfig, uri: &str, headers: &[(&str, &str)]) -> Option<&'c Route> {
    let req = get(uri, headers);
    let target = Authority::from_uri(req.uri()).expect("authority");
    let id = config.routes().find(&target, &req)?;
    Some(config.routes().route(id))
}

fn forward<'c>(config: &'c MeshConfig, uri: &str, headers: &[(&str, &str)]) -> &'c Forward {
    match &route(config, uri, headers).expect("a route").action {
        RouteAction::Forward(f) => f,
        other => panic!("not forwarded: {other:?}"),
    }
}

/// The cluster a request goes to (the first of a split).
fn cluster(config: &MeshConfig, uri: &str, headers: &[(&str, &str)]) -> String {
    forward(config, uri, headers)
        .destination
        .pick(0)
        .to_string()
}

fn subset(host: &str, subset: &str) -> String {
    format!("outbound||{subset}|{host}")
}

#[test]
fn all_v1_sends_every_service_to_its_v1_subset() {
    let c = config(&["destination-rule-all.yaml", "virtual-service-all-v1.yaml"]);
    for service in ["productpage", "reviews", "ratings", "details"] {
        let fqdn = format!("{service}.default.svc.cluster.local");
        for authority in [
            format!("{service}:9080"),
            format!("{service}.default:9080"),
            format!("{service}.default.svc:9080"),
            format!("{fqdn}:9080"),
            fqdn.clone(),
        ] {
            let uri = format!("http://{authority}/");
            assert_eq!(cluster(&c, &uri, &[]), subset(&fqdn, "v1"), "{uri}");
        }
        let v1 = c
            .cluster(&subset(&fqdn, "v1").as_str().into())
            .expect("cluster defined");
        assert_eq!(
            v1.discovery,
            mesh_core::Discovery::Service {
                host: fqdn.as_str().into(),
                port: None
            }
        );
        assert_eq!(
            v1.subset,
            BTreeMap::from([("version".to_owned(), "v1".to_owned())])
        );
    }
    assert!(route(&c, "http://unknown:9080/", &[]).is_none());
}

#[test]
fn jason_sees_reviews_v2_and_everyone_else_v1() {
    let c = config(&[
        "destination-rule-all.yaml",
        "virtual-service-reviews-test-v2.yaml",
    ]);
    let jason = [("end-user", "jason")];
    assert_eq!(
        cluster(&c, "http://reviews:9080/reviews/0", &jason),
        "outbound||v2|reviews.default.svc.cluster.local"
    );
    assert_eq!(
        cluster(&c, "http://reviews:9080/reviews/0", &[("end-user", "bob")]),
        subset(REVIEWS, "v1")
    );
    assert_eq!(
        cluster(&c, "http://reviews.default.svc.cluster.local:9080/", &[]),
        subset(REVIEWS, "v1")
    );
    // The services without a VirtualService get Istio's default route to
    // the whole service.
    assert_eq!(
        cluster(&c, "http://ratings:9080/ratings/0", &jason),
        format!("outbound|||{RATINGS}")
    );
    let ratings = c
        .cluster(&format!("outbound|||{RATINGS}").as_str().into())
        .expect("default cluster");
    assert!(ratings.subset.is_empty());
}

/// How 100 consecutive draws split over a route's clusters.
fn shares(f: &Forward) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for draw in 0..100 {
        *out.entry(f.destination.pick(draw).to_string()).or_default() += 1;
    }
    out
}

#[test]
fn weighted_splits() {
    let c = config(&[
        "destination-rule-all.yaml",
        "virtual-service-reviews-50-v3.yaml",
    ]);
    let f = forward(&c, "http://reviews:9080/", &[]);
    assert!(matches!(&f.destination, Destination::Weighted(w) if w.len() == 2));
    assert_eq!(
        shares(f),
        BTreeMap::from([(subset(REVIEWS, "v1"), 50), (subset(REVIEWS, "v3"), 50)])
    );
    let c = config(&[
        "destination-rule-all.yaml",
        "virtual-service-reviews-80-20.yaml",
    ]);
    assert_eq!(
        shares(forward(&c, "http://reviews:9080/", &[])),
        BTreeMap::from([(subset(REVIEWS, "v1"), 80), (subset(REVIEWS, "v2"), 20)])
    );
}

#[test]
fn ratings_delay_and_abort_for_jason() {
    let c = config(&[
        "destination-rule-all.yaml",
        "virtual-service-ratings-test-delay.yaml",
    ]);
    let jason = route(
        &c,
        "http://ratings:9080/ratings/0",
        &[("end-user", "jason")],
    )
    .expect("route");
    let delay = jason
        .fault
        .as_ref()
        .and_then(|f| f.delay.as_ref())
        .expect("a delay");
    assert_eq!(delay.delay, DelaySource::Fixed(Duration::from_secs(7)));
    assert_eq!(delay.percent, Percent::ALL);
    assert!(jason.fault.as_ref().is_some_and(|f| f.abort.is_none()));
    let other = route(&c, "http://ratings:9080/ratings/0", &[]).expect("route");
    assert_eq!(other.fault, None);
    assert_eq!(
        cluster(&c, "http://ratings:9080/", &[("end-user", "jason")]),
        subset(RATINGS, "v1")
    );

    let c = config(&[
        "destination-rule-all.yaml",
        "virtual-service-ratings-test-abort.yaml",
    ]);
    let jason = route(
        &c,
        "http://ratings:9080/ratings/0",
        &[("end-user", "jason")],
    )
    .expect("route");
    let abort = jason
        .fault
        .as_ref()
        .and_then(|f| f.abort.as_ref())
        .expect("an abort");
    assert_eq!(
        abort.abort,
        AbortSource::Http(StatusCode::INTERNAL_SERVER_ERROR)
    );
    assert_eq!(abort.percent, Percent::ALL);
    assert_eq!(
        route(&c, "http://ratings:9080/", &[]).expect("route").fault,
        None
    );
}

#[test]
fn reviews_timeout() {
    let c = config(&[
        "destination-rule-all.yaml",
        "virtual-service-reviews-v2-timeout.yaml",
    ]);
    let f = forward(&c, "http://reviews:9080/reviews/0", &[]);
    assert_eq!(f.timeout, Some(Some(Duration::from_millis(500))));
    assert_eq!(f.destination.pick(0).to_string(), subset(REVIEWS, "v2"));
}

#[test]
fn gateway_and_platform_resources_are_skipped_with_warnings() {
    let (resources, warnings) = read(&[
        "bookinfo-details.yaml",
        "bookinfo-gateway.yaml",
        "destination-rule-all.yaml",
    ]);
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 4, "{text:#?}");
    assert!(
        text[0].starts_with(
            "bookinfo-details.yaml, document 2 (ServiceAccount default/bookinfo-details), line 18, kind: ServiceAccount (v1) is not used"
        ),
        "{}",
        text[0]
    );
    assert!(text[1].contains("Deployment (apps/v1)"), "{}", text[1]);
    assert!(
        text[2].contains("Gateway (networking.istio.io/v1)"),
        "{}",
        text[2]
    );
    assert!(
        text[3].starts_with(
            "bookinfo-gateway.yaml, document 2 (VirtualService default/bookinfo), line 25, spec.gateways: applies only to the gateways named"
        ),
        "{}",
        text[3]
    );
    // The Kubernetes Service is read, for the service registry.
    assert_eq!(resources.services.len(), 1);
    assert_eq!(resources.virtual_services.len(), 1);
    let c = resources.to_mesh_config().expect("config");
    // The gateway's `*` host is not routed by the client: only the
    // DestinationRules' default routes are.
    assert!(route(&c, "http://example.com/productpage", &[]).is_none());
    assert_eq!(
        cluster(&c, "http://productpage:9080/productpage", &[]),
        "outbound|||productpage.default.svc.cluster.local"
    );
}

#[test]
fn two_virtual_services_for_one_host_are_an_error_naming_both() {
    let (resources, _) = read(&[
        "destination-rule-all.yaml",
        "virtual-service-all-v1.yaml",
        "virtual-service-reviews-test-v2.yaml",
    ]);
    let err = resources.to_mesh_config().unwrap_err().to_string();
    assert_eq!(
        err,
        "virtual-service-reviews-test-v2.yaml, document 1 (VirtualService default/reviews), line 7, spec.hosts[0]: host reviews.default.svc.cluster.local is also routed by VirtualService default/reviews (virtual-service-all-v1.yaml, document 2); Istio merges VirtualServices of one host only on gateways, so write one VirtualService per host"
    );
}
