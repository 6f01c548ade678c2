//! Istio's bookinfo samples, read and converted: the routes and clusters
//! they give, checked with requests as the client would route them.

use std::collections::BTreeMap;
use std::time::Duration;

use http::{Request, StatusCode};
use mesh_core::registry::{Instance, Protocol, Resolution, ServicePort};
use mesh_core::route::{
    AbortSource, DelaySource, Destination, Forward, Percent, Route, RouteAction,
};
use mesh_core::{Authority, Cluster, EndpointSet, MeshConfig};
use mesh_istio::{self, Resources, Warning, Workload};

const REVIEWS: &str = "reviews.default.svc.cluster.local";
const RATINGS: &str = "ratings.default.svc.cluster.local";

fn read(files: &[&str]) -> (Resources, Vec<Warning>) {
    let mut all = Resources::default();
    let mut warnings = Vec::new();
    for file in files {
        let path = format!("{}/tests/data/bookinfo/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("fixture");
        let (resources, w) = mesh_istio::parse(file, &text).unwrap_or_else(|e| panic!("{e}"));
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
fn platform_resources_are_skipped_with_warnings_and_the_gateway_read() {
    let (resources, warnings) = read(&[
        "bookinfo-details.yaml",
        "bookinfo-gateway.yaml",
        "destination-rule-all.yaml",
    ]);
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 2, "{text:#?}");
    assert!(
        text[0].starts_with(
            "bookinfo-details.yaml, document 2 (ServiceAccount default/bookinfo-details), line 18, kind: ServiceAccount (v1) is not used"
        ),
        "{}",
        text[0]
    );
    assert!(text[1].contains("Deployment (apps/v1)"), "{}", text[1]);
    // The Kubernetes Service is read, for the service registry, and the
    // Gateway, for gateway proxies.
    assert_eq!(resources.services.len(), 1);
    assert_eq!(resources.gateways.len(), 1);
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
fn the_ingress_gateway_routes_bookinfo_pages_to_productpage() {
    let (resources, warnings) = read(&[
        "bookinfo-gateway.yaml",
        "bookinfo.yaml",
        "destination-rule-all.yaml",
    ]);
    // Only the platform's Deployments and ServiceAccounts are skipped.
    assert!(
        warnings
            .iter()
            .all(|w| w.location.source.as_ref() == "bookinfo.yaml"),
        "{warnings:#?}"
    );
    // The proxy is the one the Gateway selects, in another namespace.
    let labels = BTreeMap::from([("istio".to_owned(), "ingressgateway".to_owned())]);
    let gateways: Vec<String> = resources
        .gateways_for(&labels)
        .iter()
        .map(|g| g.resource.qualified_name())
        .collect();
    assert_eq!(gateways, ["default/bookinfo-gateway"]);
    let workload = Workload {
        namespace: "istio-system".into(),
        labels,
        gateways,
        ..Workload::default()
    };
    let (c, warnings) = resources
        .convert(&workload)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(warnings.is_empty(), "{warnings:#?}");
    let productpage = "outbound|9080||productpage.default.svc.cluster.local";
    for path in [
        "/productpage",
        "/static/style.css",
        "/login",
        "/api/v1/products/0",
    ] {
        let uri = format!("http://anything:8080{path}");
        assert_eq!(cluster(&c, &uri, &[]), productpage, "{uri}");
    }
    assert!(route(&c, "http://anything:8080/nope", &[]).is_none());
    // Only what is bound to the Gateway: no default routes to the
    // services, whose names the host `*` takes too.
    assert!(route(&c, "http://reviews:9080/reviews/0", &[]).is_none());
    let clusters: Vec<String> = c.clusters().map(|c| c.name.to_string()).collect();
    assert_eq!(clusters, [productpage]);
    let vhosts = c.routes().virtual_hosts();
    assert_eq!(vhosts.len(), 1);
    assert_eq!(vhosts[0].domains, ["*"]);
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

const SERVICES: [&str; 4] = ["details", "productpage", "ratings", "reviews"];

#[test]
fn the_platform_file_defines_four_services_and_skips_the_rest() {
    let (resources, warnings) = read(&["bookinfo.yaml"]);
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 10, "{text:#?}");
    assert_eq!(
        text[0],
        "bookinfo.yaml, document 2 (ServiceAccount default/bookinfo-details), line 31, kind: ServiceAccount (v1) is not used by the client configuration or the service registry; skipped"
    );
    let count = |what: &str| text.iter().filter(|w| w.contains(what)).count();
    assert_eq!(count("kind: ServiceAccount (v1) is not used"), 4);
    assert_eq!(count("kind: Deployment (apps/v1) is not used"), 6);
    assert_eq!(resources.services.len(), 4);

    let registry = resources.registry("cluster.local").expect("a registry");
    let fqdns = SERVICES.map(|s| format!("{s}.default.svc.cluster.local"));
    let names: Vec<&str> = registry.services().map(|s| s.hostname.as_str()).collect();
    assert_eq!(names, fqdns);
    for (service, fqdn) in SERVICES.iter().zip(&fqdns) {
        let s = registry.service(fqdn).expect("defined");
        assert_eq!(s.namespace, "default");
        assert_eq!(s.resolution, Resolution::Static);
        assert_eq!(
            s.ports,
            [ServicePort {
                number: 9080,
                name: "http".into(),
                protocol: Protocol::Http,
                target_port: None,
            }]
        );
        assert_eq!(
            s.selector,
            BTreeMap::from([("app".to_owned(), (*service).to_owned())])
        );
    }
    // Deployments are not instances: the pods they make are not known.
    assert_eq!(registry.instances().count(), 0);

    // Each service gets Istio's default route to the whole of it.
    let c = resources.to_mesh_config().expect("config");
    for (service, fqdn) in SERVICES.iter().zip(&fqdns) {
        let uri = format!("http://{service}:9080/");
        assert_eq!(
            cluster(&c, &uri, &[]),
            format!("outbound|||{fqdn}"),
            "{uri}"
        );
    }
}

fn addresses(set: &EndpointSet) -> Vec<String> {
    set.iter().map(|e| e.addr.to_string()).collect()
}

#[test]
fn the_platform_file_routes_to_the_instances_a_launcher_registers() {
    let (resources, _) = read(&[
        "bookinfo.yaml",
        "destination-rule-all.yaml",
        "virtual-service-reviews-test-v2.yaml",
    ]);
    let c = resources.to_mesh_config().expect("config");
    let mut registry = resources.registry("cluster.local").expect("a registry");
    let started = ["v1", "v2", "v3"].iter().enumerate().map(|(i, v)| {
        let mut instance = Instance::new(format!("127.0.0.{}", i + 1));
        instance.labels.insert("app".into(), "reviews".into());
        instance.labels.insert("version".into(), (*v).into());
        instance
    });
    registry.set_instances("launcher", started.collect());

    let jason = cluster(&c, "http://reviews:9080/", &[("end-user", "jason")]);
    let v2 = c.cluster(&jason.as_str().into()).expect("the cluster");
    assert_eq!(
        addresses(&registry.endpoints(REVIEWS, 9080, v2)),
        ["127.0.0.2:9080"]
    );
    let whole = Cluster::named(&format!("outbound|9080||{REVIEWS}"));
    assert_eq!(registry.endpoints(REVIEWS, 9080, &whole).len(), 3);
    assert!(registry.endpoints(RATINGS, 9080, &whole).is_empty());
}

/// A VM service selecting WorkloadEntries, one with inline endpoints and
/// one resolved by DNS.
const ENTRIES: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings-vm, namespace: vms}
spec:
  hosts: [ratings.vms.example]
  location: MESH_INTERNAL
  ports:
  - {number: 9080, name: http, protocol: HTTP, targetPort: 8080}
  - {number: 9443, name: grpc, protocol: GRPC}
  resolution: STATIC
  workloadSelector:
    labels: {app: ratings}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings-v1, namespace: vms}
spec:
  address: 10.1.0.1
  labels: {app: ratings, version: v1}
  locality: us-east/zone1/sub
  weight: 3
  serviceAccount: ratings
---
apiVersion: networking.istio.io/v1beta1
kind: WorkloadEntry
metadata:
  name: ratings-v2
  namespace: vms
  labels: {version: v2}
spec:
  address: 10.1.0.2
  ports: {http: 7070}
  labels: {app: ratings}
---
apiVersion: networking.istio.io/v1alpha3
kind: WorkloadEntry
metadata: {name: ratings-elsewhere, namespace: default}
spec:
  address: 10.1.0.3
  labels: {app: ratings, version: v1}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payments}
spec:
  hosts: [payments.example]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: STATIC
  endpoints:
  - {address: 192.0.2.10, labels: {version: v1}}
  - {address: 192.0.2.11, labels: {version: v2}, weight: 2}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
  endpoints:
  - {address: eu.api.example.com, locality: eu-west}
"#;

/// The cluster of `host` with the subset `version: <version>`.
fn version(host: &str, version: &str) -> Cluster {
    let mut c = Cluster::named(&format!("outbound|||{host}"));
    c.subset.insert("version".into(), version.into());
    c
}

#[test]
fn service_entries_and_workload_entries_make_endpoints() {
    let (resources, warnings) =
        mesh_istio::parse("entries.yaml", ENTRIES).unwrap_or_else(|e| panic!("{e}"));
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(
        (
            resources.service_entries.len(),
            resources.workload_entries.len()
        ),
        (3, 3)
    );
    let registry = resources
        .registry("cluster.local")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(registry.services().count(), 3);

    // WorkloadEntries of the entry's namespace, by labels; each at its own
    // port for the port's name, else the target port, else the port.
    let vm = "ratings.vms.example";
    let whole = Cluster::named(&format!("outbound|||{vm}"));
    assert_eq!(
        addresses(&registry.endpoints(vm, 9080, &whole)),
        ["10.1.0.1:8080", "10.1.0.2:7070"]
    );
    let v1 = registry.endpoints(vm, 9080, &version(vm, "v1"));
    assert_eq!(addresses(&v1), ["10.1.0.1:8080"]);
    let e = &v1.as_slice()[0];
    assert_eq!(
        (
            e.locality.region.as_str(),
            e.locality.zone.as_str(),
            e.locality.sub_zone.as_str()
        ),
        ("us-east", "zone1", "sub")
    );
    assert_eq!(e.weight, 3);
    assert_eq!(e.labels["app"], "ratings");
    // The metadata's labels count too.
    assert_eq!(
        addresses(&registry.endpoints(vm, 9080, &version(vm, "v2"))),
        ["10.1.0.2:7070"]
    );
    assert_eq!(
        addresses(&registry.endpoints(vm, 9443, &version(vm, "v1"))),
        ["10.1.0.1:9443"]
    );
    assert!(registry.endpoints(vm, 9081, &whole).is_empty());

    // Inline endpoints, whatever the selector.
    let payments = registry.endpoints("payments.example", 443, &version("payments.example", "v2"));
    assert_eq!(addresses(&payments), ["192.0.2.11:443"]);
    assert_eq!(payments.as_slice()[0].weight, 2);

    // DNS: the registry has the names, the caller resolves them.
    let api = registry.service("api.example.com").expect("defined");
    assert_eq!(api.resolution, Resolution::Dns);
    assert_eq!(api.endpoints[0].address, "eu.api.example.com");
    assert_eq!(
        api.endpoints[0].locality.as_ref().unwrap().region,
        "eu-west"
    );
    let whole_api = Cluster::named("outbound|||api.example.com");
    assert!(
        registry
            .endpoints("api.example.com", 443, &whole_api)
            .is_empty()
    );

    // And each is routed to as a whole.
    let c = resources.to_mesh_config().unwrap_or_else(|e| panic!("{e}"));
    for host in [vm, "payments.example", "api.example.com"] {
        assert_eq!(
            cluster(&c, &format!("http://{host}/"), &[]),
            format!("outbound|||{host}")
        );
    }
}
