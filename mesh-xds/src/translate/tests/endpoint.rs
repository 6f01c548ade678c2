//! Listeners and load assignments written as LDS and EDS read back as
//! written.

use super::*;

#[test]
fn listeners_have_istiods_shape() {
    let l = api_listener(
        "reviews:9080",
        "outbound|9080||reviews.default.svc.cluster.local",
    );
    assert_eq!(l.name, "reviews:9080");
    let back = XdsListener::try_from(&l).unwrap();
    assert!(back.ignored.is_empty());
    assert!(matches!(
        &back.routes,
        RouteSource::Rds { route_config_name } if route_config_name == "outbound|9080||reviews.default.svc.cluster.local"
    ));
    let filters: Vec<(&str, &FilterKind)> = back
        .http_filters
        .iter()
        .map(|f| (f.name.as_str(), &f.kind))
        .collect();
    assert_eq!(
        filters,
        [
            (
                "envoy.filters.http.fault",
                &FilterKind::Fault(FaultPolicy::default())
            ),
            ("envoy.filters.http.router", &FilterKind::Router),
        ]
    );
    assert_eq!(back.max_stream_duration, None);
}

#[test]
fn load_assignments_round_trip() {
    let zone = |z: &str| Locality {
        region: "us-east1".into(),
        zone: z.into(),
        sub_zone: String::new(),
    };
    let set = EndpointSet::new([
        Endpoint::new("10.0.0.1:9080".parse().unwrap())
            .with_locality(zone("b"))
            .with_locality_weight(3)
            .with_weight(2)
            .with_label("version", "v1")
            .with_label("tlsMode", "istio"),
        Endpoint::new("10.0.0.2:9080".parse().unwrap())
            .with_locality(zone("b"))
            .with_locality_weight(3),
        Endpoint {
            health: Health::Draining,
            ..Endpoint::new("[fd00::3]:9080".parse().unwrap())
                .with_locality(zone("c"))
                .with_locality_weight(1)
        },
        Endpoint {
            health: Health::Unhealthy,
            ..Endpoint::new("10.0.1.4:9080".parse().unwrap())
                .with_locality(zone("c"))
                .with_locality_weight(5)
                .with_priority(1)
        },
        Endpoint {
            health: Health::Healthy,
            ..Endpoint::new("10.0.1.5:9081".parse().unwrap())
                .with_locality_weight(1)
                .with_priority(2)
        },
    ])
    .with_drops([DropOverload {
        category: "throttle".into(),
        percent: Percent::from_ppm(2_500),
    }]);
    let cla = load_assignment("outbound|9080|v1|reviews", &set).unwrap();
    assert_eq!(cla.endpoints.len(), 4, "one per priority and locality");
    let back = XdsLoadAssignment::try_from(&cla).unwrap();
    assert_eq!(back.cluster_name, "outbound|9080|v1|reviews");
    assert_eq!(back.endpoints, set);

    let unweighted = EndpointSet::new([Endpoint::new("10.0.0.1:1".parse().unwrap())]);
    let err = load_assignment("x", &unweighted).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ClusterLoadAssignment \"x\": endpoint 10.0.0.1:1: locality_weight: EDS leaves out a locality without a weight"
    );
    let skipping = EndpointSet::new([Endpoint::new("10.0.0.1:1".parse().unwrap())
        .with_locality_weight(1)
        .with_priority(1)]);
    assert_eq!(
        load_assignment("x", &skipping).unwrap_err().field,
        "priority"
    );
}
