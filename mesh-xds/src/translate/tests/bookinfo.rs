//! Istio's bookinfo, as `mesh_istio` reads it, written as xDS: the
//! route tables round-trip exactly, and one service port comes out in
//! istiod's names and shapes.

use mesh_core::MeshConfig;
use mesh_core::policy::RetryPolicy;
use mesh_core::route::{ClusterName, Destination, RouteAction};
use mesh_istio::{self, Resources};

use super::super::*;
use crate::resource::{Discovery, RouteSource, XdsCluster, XdsListener, XdsRouteConfig};

const REVIEWS: &str = "reviews.default.svc.cluster.local";

fn read(files: &[&str], inline: &str) -> MeshConfig {
    let mut all = Resources::default();
    for file in files {
        let path = format!(
            "{}/../mesh-istio/tests/data/bookinfo/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).expect("fixture");
        all.extend(mesh_istio::parse(file, &text).expect("parses").0);
    }
    if !inline.is_empty() {
        all.extend(mesh_istio::parse("inline.yaml", inline).expect("parses").0);
    }
    all.to_mesh_config().expect("converts")
}

#[test]
fn bookinfo_route_tables_round_trip_exactly() {
    let samples = [
        "virtual-service-all-v1.yaml",
        "virtual-service-reviews-test-v2.yaml",
        "virtual-service-reviews-80-20.yaml",
        "virtual-service-reviews-50-v3.yaml",
        "virtual-service-reviews-v2-timeout.yaml",
        "virtual-service-ratings-test-abort.yaml",
        "virtual-service-ratings-test-delay.yaml",
    ];
    for sample in samples {
        let config = read(&["destination-rule-all.yaml", sample], "");
        let vhs = config.routes().virtual_hosts();
        assert!(!vhs.is_empty(), "{sample}");
        let rc = route_configuration("bookinfo", vhs).unwrap_or_else(|e| panic!("{sample}: {e}"));
        let back = XdsRouteConfig::try_from(&rc).unwrap_or_else(|e| panic!("{sample}: {e}"));
        assert!(back.ignored.is_empty(), "{sample}: {:?}", back.ignored);
        assert_eq!(back.table.virtual_hosts(), vhs, "{sample}");
    }
}

/// reviews v2 for jason, v1 and v3 in halves for everyone else.
const REVIEWS_ALL_SUBSETS: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 50}
    - {destination: {host: reviews, subset: v3}, weight: 50}
"#;

#[test]
fn reviews_is_served_in_istiods_shape() {
    let config = read(&["destination-rule-all.yaml"], REVIEWS_ALL_SUBSETS);
    let listener_name = format!("{REVIEWS}:9080");
    let served = service_port(&config, &listener_name, REVIEWS, 9080).unwrap();
    let rds_name = format!("outbound|9080||{REVIEWS}");

    // LDS: the listener asked for, routed by RDS over ADS.
    assert_eq!(served.listener.name, listener_name);
    let listener = XdsListener::try_from(&served.listener).unwrap();
    assert!(matches!(
        &listener.routes,
        RouteSource::Rds { route_config_name } if *route_config_name == rds_name
    ));

    // RDS: named after the service port, domains with and without it.
    assert_eq!(served.route_configuration.name, rds_name);
    let back = XdsRouteConfig::try_from(&served.route_configuration).unwrap();
    let [vh] = back.table.virtual_hosts() else {
        panic!("one virtual host");
    };
    for d in [
        REVIEWS,
        &format!("{REVIEWS}:9080"),
        "reviews",
        "reviews:9080",
        "reviews.default",
        "reviews.default:9080",
        "reviews.default.svc",
        "reviews.default.svc:9080",
    ] {
        assert!(vh.domains.iter().any(|x| x == d), "{d} in {:?}", vh.domains);
    }
    let subset = |s: &str| ClusterName::new(format!("outbound|9080|{s}|{REVIEWS}"));
    let original = config
        .routes()
        .virtual_hosts()
        .iter()
        .find(|v| v.name == vh.name);
    let original = original.expect("the reviews virtual host");
    assert_eq!(vh.routes.len(), original.routes.len());
    for (got, want) in vh.routes.iter().zip(&original.routes) {
        // Everything but the cluster names and the retries moved from the
        // clusters is as the configuration has it.
        let (RouteAction::Forward(g), RouteAction::Forward(w)) = (&got.action, &want.action) else {
            panic!("forwarding routes");
        };
        assert_eq!(got.matches, want.matches);
        assert_eq!(
            g.retry.as_deref(),
            Some(&RetryPolicy::default()),
            "Istio's default retries"
        );
        assert_eq!(w.retry, None);
        let port_of = |d: &Destination| -> Vec<String> {
            d.clusters()
                .map(|c| c.as_str().replace("outbound||", "outbound|9080|"))
                .collect()
        };
        assert_eq!(port_of(&g.destination), port_of(&w.destination));
    }
    let RouteAction::Forward(jason) = &vh.routes[0].action else {
        panic!("forwarding");
    };
    assert_eq!(jason.destination, Destination::Cluster(subset("v2")));

    // CDS: an EDS cluster over ADS per subset, named as istiod names them.
    let mut names: Vec<ClusterName> = served
        .clusters
        .iter()
        .map(|c| ClusterName::new(c.name.as_str()))
        .collect();
    names.sort();
    assert_eq!(names, [subset("v1"), subset("v2"), subset("v3")]);
    for c in &served.clusters {
        let eds = c.eds_cluster_config.as_ref().expect("EDS");
        assert_eq!(eds.service_name, c.name);
        let back = XdsCluster::try_from(c).unwrap();
        assert_eq!(
            back.discovery,
            Discovery::Eds {
                service_name: c.name.clone()
            }
        );
        // The policy is the configuration's, its retries moved to the routes.
        let unported = ClusterName::new(c.name.replace("outbound|9080|", "outbound||"));
        let mut want = config
            .cluster(&unported)
            .expect("defined")
            .policy_for(9080)
            .clone();
        want.retry = RetryPolicy::disabled();
        assert_eq!(back.policy, want, "{}", c.name);
    }
}

#[test]
fn a_short_listener_name_is_kept_as_asked() {
    let config = read(
        &["destination-rule-all.yaml", "virtual-service-all-v1.yaml"],
        "",
    );
    let served = service_port(&config, "reviews:9080", REVIEWS, 9080).unwrap();
    assert_eq!(served.listener.name, "reviews:9080");
    assert_eq!(
        served.route_configuration.name,
        format!("outbound|9080||{REVIEWS}")
    );
    let err = service_port(&config, "nope:1", "nope.default.svc.cluster.local", 1).unwrap_err();
    assert_eq!(err.field, "virtual_hosts");
}
