//! Golden translations: Istio's bookinfo samples (its Services, the
//! DestinationRules with v1/v2/v3 subsets, and each VirtualService
//! sample) turned into what a proxyless client in `default` is served,
//! and bookinfo's Gateway into what Envoy as the ingress gateway is
//! served, and one sample into what an Envoy sidecar is, as
//! `mesh-control translate` prints them, compared with the files in
//! `tests/golden/`; and `tests/golden/security.yaml`'s policies as a
//! proxyless server's and an Envoy sidecar's inbound listeners.
//!
//! After a deliberate change of output, `UPDATE_GOLDEN=1 cargo test -p
//! mesh-control --test golden` rewrites the files; review their diff.

use std::collections::BTreeSet;
use std::path::PathBuf;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::{Value, value::Kind};
use mesh_control::ControlPlane;
use mesh_control::config_dir::Loaded;
use mesh_control::config_dir::load_texts;
use mesh_control::node::{NodeClass, node};
use mesh_control::proxyless;
use mesh_xds::json::resources_json;

const BOOKINFO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../mesh-istio/tests/data/bookinfo"
);

const SIDECAR: &str = "sidecar~10.0.0.1~productpage-v1.default~default.svc.cluster.local";

/// What `node` is served under bookinfo's Services and DestinationRules
/// and the sample `file`.
fn translate(file: &str, node: &Node) -> serde_json::Value {
    let texts = ["bookinfo.yaml", "destination-rule-all.yaml", file].map(|f| {
        let text = std::fs::read_to_string(format!("{BOOKINFO}/{f}")).unwrap();
        (f.to_owned(), text)
    });
    let loaded = load_texts(texts, "cluster.local").unwrap();
    let plane = ControlPlane::new("cluster.local");
    plane.apply(loaded);
    resources_json(&plane.resources_for(node).unwrap()).unwrap()
}

/// A proxyless client in `default`.
fn proxyless() -> Node {
    node(SIDECAR, false, &[])
}

/// Envoy as `id`, with `labels`.
fn envoy(id: &str, labels: &[(&str, &str)]) -> Node {
    node(id, true, labels)
}

/// Compares the translation of `file` for a proxyless client with
/// `tests/golden/<name>.json`.
fn check(name: &str, file: &str) -> serde_json::Value {
    check_for(name, file, &proxyless())
}

/// Compares the translation of `file` for `node` with
/// `tests/golden/<name>.json`.
fn check_for(name: &str, file: &str, node: &Node) -> serde_json::Value {
    compare(name, translate(file, node))
}

/// Compares `got` with `tests/golden/<name>.json`.
fn compare(name: &str, got: serde_json::Value) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.json"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(&got).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    let want: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display())),
    )
    .unwrap();
    assert!(
        got == want,
        "{name} differs from {}; UPDATE_GOLDEN=1 rewrites it:\n{}",
        path.display(),
        serde_json::to_string_pretty(&got).unwrap()
    );
    got
}

/// The `name` of each item of the array `items`.
fn names(items: &serde_json::Value) -> Vec<&str> {
    let items = items.as_array().expect("an array");
    items.iter().map(|i| i["name"].as_str().unwrap()).collect()
}

/// The route configuration of `service`'s port 9080.
fn routes<'a>(json: &'a serde_json::Value, service: &str) -> &'a serde_json::Value {
    let name = format!("outbound|9080||{service}.default.svc.cluster.local");
    json["RDS"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name.as_str())
        .unwrap_or_else(|| panic!("no {name}"))
}

fn cluster_of(route: &serde_json::Value) -> &str {
    route["route"]["cluster"].as_str().unwrap()
}

const REVIEWS_V1: &str = "outbound|9080|v1|reviews.default.svc.cluster.local";

#[test]
fn all_v1() {
    let json = check("all-v1", "virtual-service-all-v1.yaml");
    // A listener per service, as asked for by FQDN and port.
    let listeners: Vec<&str> = names(&json["LDS"]);
    assert_eq!(listeners.len(), 4);
    assert!(listeners.contains(&"reviews.default.svc.cluster.local:9080"));
    let route = &routes(&json, "reviews")["virtualHosts"][0]["routes"][0];
    assert_eq!(cluster_of(route), REVIEWS_V1);
}

#[test]
fn reviews_test_v2() {
    let json = check("reviews-test-v2", "virtual-service-reviews-test-v2.yaml");
    let vh = &routes(&json, "reviews")["virtualHosts"][0];
    let jason = &vh["routes"][0];
    assert_eq!(jason["match"]["headers"][0]["name"], "end-user");
    assert_eq!(
        jason["match"]["headers"][0]["stringMatch"]["exact"],
        "jason"
    );
    assert_eq!(
        cluster_of(jason),
        "outbound|9080|v2|reviews.default.svc.cluster.local"
    );
    assert_eq!(cluster_of(&vh["routes"][1]), REVIEWS_V1);
}

#[test]
fn reviews_50_v3() {
    let json = check("reviews-50-v3", "virtual-service-reviews-50-v3.yaml");
    let split =
        &routes(&json, "reviews")["virtualHosts"][0]["routes"][0]["route"]["weightedClusters"];
    let weights: Vec<(String, u64)> = split["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["weight"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        weights,
        [
            (REVIEWS_V1.to_owned(), 50),
            (
                "outbound|9080|v3|reviews.default.svc.cluster.local".to_owned(),
                50
            )
        ]
    );
}

#[test]
fn reviews_80_20() {
    check("reviews-80-20", "virtual-service-reviews-80-20.yaml");
}

#[test]
fn ratings_test_delay() {
    let json = check(
        "ratings-test-delay",
        "virtual-service-ratings-test-delay.yaml",
    );
    let jason = &routes(&json, "ratings")["virtualHosts"][0]["routes"][0];
    let fault = &jason["typedPerFilterConfig"]["envoy.filters.http.fault"];
    assert_eq!(fault["delay"]["fixedDelay"], "7s");
    assert_eq!(fault["delay"]["percentage"]["numerator"], 1_000_000);
}

#[test]
fn ratings_test_abort() {
    let json = check(
        "ratings-test-abort",
        "virtual-service-ratings-test-abort.yaml",
    );
    let jason = &routes(&json, "ratings")["virtualHosts"][0]["routes"][0];
    let fault = &jason["typedPerFilterConfig"]["envoy.filters.http.fault"];
    assert_eq!(fault["abort"]["httpStatus"], 500);
}

#[test]
fn reviews_v2_timeout() {
    let json = check(
        "reviews-v2-timeout",
        "virtual-service-reviews-v2-timeout.yaml",
    );
    let route = &routes(&json, "reviews")["virtualHosts"][0]["routes"][0];
    assert_eq!(route["route"]["timeout"], "0.500s");
    assert_eq!(
        cluster_of(route),
        "outbound|9080|v2|reviews.default.svc.cluster.local"
    );
}

#[test]
fn envoy_sidecar_reviews_test_v2() {
    let json = check_for(
        "envoy-sidecar-reviews-test-v2",
        "virtual-service-reviews-test-v2.yaml",
        &envoy(SIDECAR, &[("app", "productpage")]),
    );
    let listeners: Vec<&str> = names(&json["LDS"]);
    assert_eq!(listeners, ["10.0.0.1_9080"]);
    // One route configuration for the port, every service's virtual host.
    assert_eq!(json["RDS"][0]["name"], "9080");
    assert_eq!(json["RDS"][0]["virtualHosts"].as_array().unwrap().len(), 4);
}

#[test]
fn envoy_ingress_gateway() {
    let node = "router~10.0.0.2~istio-ingressgateway-1.istio-system~istio-system.svc.cluster.local";
    let json = check_for(
        "envoy-ingress-gateway",
        "bookinfo-gateway.yaml",
        &envoy(node, &[("istio", "ingressgateway")]),
    );
    assert_eq!(json["LDS"][0]["name"], "10.0.0.2_8080");
    let vh = &json["RDS"][0]["virtualHosts"][0];
    assert_eq!(vh["domains"], serde_json::json!(["*"]));
    assert_eq!(
        cluster_of(&vh["routes"][0]),
        "outbound|9080||productpage.default.svc.cluster.local"
    );
}

/// Bookinfo's Services and `tests/golden/security.yaml`.
fn security() -> Loaded {
    let bookinfo = std::fs::read_to_string(format!("{BOOKINFO}/bookinfo.yaml")).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/security.yaml");
    let policies = std::fs::read_to_string(path).unwrap();
    let texts = [
        ("bookinfo.yaml".to_owned(), bookinfo),
        ("security.yaml".to_owned(), policies),
    ];
    load_texts(texts, "cluster.local").unwrap()
}

#[test]
fn proxyless_server_ratings() {
    let loaded = security();
    let ratings = node(
        "sidecar~10.0.0.3~ratings-v1.default~default.svc.cluster.local",
        false,
        &[("app", "ratings"), ("version", "v1")],
    );
    let class = NodeClass::of(&ratings);
    let config = loaded
        .resources
        .to_mesh_config_for(&class.workload())
        .unwrap();
    let asked: BTreeSet<String> = ["0.0.0.0:9080", "0.0.0.0:9090"]
        .map(|a| format!("xds.istio.io/grpc/lds/inbound/{a}"))
        .into();
    let served =
        proxyless::resources(&asked, &class, &loaded.resources, &config, &loaded.registry).unwrap();
    let json = compare("proxyless-server-ratings", resources_json(&served).unwrap());
    let listeners = json["LDS"].as_array().unwrap();
    let chains: Vec<&str> = listeners
        .iter()
        .map(|l| l["filterChains"][0]["name"].as_str().unwrap())
        .collect();
    // STRICT, but DISABLE on port 9090.
    assert_eq!(chains, ["inbound-mtls", "inbound-plaintext"]);
    let filters = &listeners[0]["filterChains"][0]["filters"][0]["typedConfig"]["httpFilters"];
    assert_eq!(
        names(filters),
        [
            "envoy.filters.http.rbac.DENY",
            "envoy.filters.http.rbac",
            "envoy.filters.http.router"
        ]
    );
}

#[test]
fn envoy_sidecar_reviews_inbound() {
    let loaded = security();
    let mut reviews = envoy(
        "sidecar~10.0.0.4~reviews-v1.default~default.svc.cluster.local",
        &[("app", "reviews"), ("version", "v1")],
    );
    let metadata = reviews.metadata.as_mut().unwrap();
    for (key, file) in [
        ("TLS_CLIENT_CERT_CHAIN", "/etc/certs/cert-chain.pem"),
        ("TLS_CLIENT_KEY", "/etc/certs/key.pem"),
        ("TLS_CLIENT_ROOT_CERT", "/etc/certs/root-cert.pem"),
    ] {
        let value = Value {
            kind: Some(Kind::StringValue(file.to_owned())),
        };
        metadata.fields.insert(key.to_owned(), value);
    }
    let plane = ControlPlane::new("cluster.local");
    plane.apply(loaded);
    let json = compare(
        "envoy-sidecar-reviews-inbound",
        resources_json(&plane.resources_for(&reviews).unwrap()).unwrap(),
    );
    let listeners: Vec<&str> = names(&json["LDS"]);
    assert_eq!(listeners, ["10.0.0.4_9080", "10.0.0.4_9443"]);
    // PERMISSIVE: mutual TLS and plain text; STRICT: mutual TLS only.
    assert_eq!(json["LDS"][0]["filterChains"].as_array().unwrap().len(), 2);
    assert_eq!(json["LDS"][1]["filterChains"].as_array().unwrap().len(), 1);
}
