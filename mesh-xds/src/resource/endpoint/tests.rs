//! Assignments as istiod writes them, and every NACK naming its field.

use envoy_types::pb::envoy::config::core::v3::{
    self as core, Address, Metadata, SocketAddress, address, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint as ProtoEndpoint, LbEndpoint, LocalityLbEndpoints,
    cluster_load_assignment, lb_endpoint,
};

use super::*;
use crate::resource::proto::build::*;

const NAME: &str = "outbound|9080||reviews.default.svc.cluster.local";

pub(crate) fn socket(host: &str, port: u32) -> Option<Address> {
    Some(Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: host.into(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    })
}

pub(crate) fn endpoint(ip: &str) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(ProtoEndpoint {
            address: socket(ip, 9080),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn locality(
    zone: &str,
    weight: Option<u32>,
    priority: u32,
    eps: Vec<LbEndpoint>,
) -> LocalityLbEndpoints {
    LocalityLbEndpoints {
        locality: Some(core::Locality {
            region: zone[..zone.len() - 2].into(),
            zone: zone.into(),
            sub_zone: String::new(),
        }),
        lb_endpoints: eps,
        load_balancing_weight: weight.and_then(u32v),
        priority,
        ..Default::default()
    }
}

fn assignment(localities: Vec<LocalityLbEndpoints>) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: NAME.into(),
        endpoints: localities,
        ..Default::default()
    }
}

fn nack(cla: &ClusterLoadAssignment) -> String {
    XdsLoadAssignment::try_from(cla).unwrap_err().to_string()
}

#[test]
fn two_priorities_with_locality_weights() {
    let mut v1 = endpoint("10.0.0.1");
    v1.health_status = HealthStatus::Healthy as i32;
    v1.load_balancing_weight = u32v(2);
    v1.metadata = Some(Metadata {
        filter_metadata: [
            (
                "istio".to_owned(),
                strings(&[("workload", "reviews-v1;default;reviews;v1;Kubernetes")]),
            ),
            (
                "envoy.transport_socket_match".to_owned(),
                strings(&[("tlsMode", "istio")]),
            ),
        ]
        .into(),
        ..Default::default()
    });
    let mut draining = endpoint("10.0.0.3");
    draining.health_status = HealthStatus::Draining as i32;
    let mut degraded = endpoint("10.0.0.4");
    degraded.health_status = HealthStatus::Degraded as i32;
    let mut cla = assignment(vec![
        locality("us-east1-b", Some(3), 0, vec![v1, endpoint("10.0.0.2")]),
        locality("us-east1-c", Some(1), 0, vec![draining, degraded]),
        locality("us-west1-a", Some(1), 1, vec![endpoint("10.1.0.1")]),
        // No weight, or a weight of 0: left out, as gRPC leaves it out.
        locality("us-west1-b", None, 1, vec![endpoint("10.1.0.2")]),
        locality("us-west1-c", Some(0), 1, vec![endpoint("10.1.0.3")]),
    ]);
    cla.policy = Some(cluster_load_assignment::Policy {
        drop_overloads: vec![cluster_load_assignment::policy::DropOverload {
            category: "throttle".into(),
            drop_percentage: Some(percent(5)),
        }],
        ..Default::default()
    });

    let assignment = XdsLoadAssignment::try_from(&cla).unwrap();
    assert_eq!(assignment.cluster_name, NAME);
    let by_ip = |ip: &str| {
        let addr: SocketAddr = format!("{ip}:9080").parse().unwrap();
        assignment
            .endpoints
            .iter()
            .find(|e| e.addr == addr)
            .unwrap()
    };
    let v1 = by_ip("10.0.0.1");
    assert_eq!(
        (v1.weight, v1.locality_weight, v1.priority),
        (2, Some(3), 0)
    );
    assert_eq!(v1.locality.zone, "us-east1-b");
    assert_eq!(v1.locality.region, "us-east1");
    assert_eq!(v1.health, Health::Healthy);
    assert_eq!(
        v1.labels,
        BTreeMap::from([
            ("service.istio.io/canonical-name".into(), "reviews".into()),
            ("service.istio.io/canonical-revision".into(), "v1".into()),
            ("tlsMode".into(), "istio".into()),
        ])
    );
    let plain = by_ip("10.0.0.2");
    assert_eq!((plain.weight, plain.health), (1, Health::Unknown));
    assert!(plain.health.is_routable());
    assert_eq!(by_ip("10.0.0.3").health, Health::Draining);
    assert!(
        !by_ip("10.0.0.4").health.is_routable(),
        "degraded takes no traffic"
    );
    let west = by_ip("10.1.0.1");
    assert_eq!((west.priority, west.locality_weight), (1, Some(1)));
    assert_eq!(
        assignment.endpoints.len(),
        5,
        "unweighted localities left out"
    );
    assert_eq!(
        assignment.endpoints.drops(),
        [DropOverload {
            category: "throttle".into(),
            percent: Percent::new(5.0).unwrap(),
        }]
    );
}

#[test]
fn nacks_name_the_resource_and_the_field() {
    let zero = |mut e: LbEndpoint| {
        e.load_balancing_weight = u32v(0);
        e
    };
    let hostname = LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(ProtoEndpoint {
            address: socket("reviews.default.svc", 9080),
            ..Default::default()
        })),
        ..Default::default()
    };
    let pipe = LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(ProtoEndpoint {
            address: Some(Address {
                address: Some(address::Address::Pipe(core::Pipe {
                    path: "/tmp/s".into(),
                    mode: 0,
                })),
            }),
            ..Default::default()
        })),
        ..Default::default()
    };
    let one = |eps| assignment(vec![locality("us-east1-b", Some(1), 0, eps)]);
    let cases = [
        (
            one(vec![endpoint("10.0.0.1"), zero(endpoint("10.0.0.2"))]),
            "endpoints[0].lb_endpoints[1].load_balancing_weight: must be at least 1",
        ),
        (
            one(vec![hostname]),
            r#"endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address: "reviews.default.svc" is not an IP address"#,
        ),
        (
            one(vec![pipe]),
            "endpoints[0].lb_endpoints[0].endpoint.address.pipe: Unix sockets are not supported",
        ),
        (
            assignment(vec![
                locality("us-east1-b", Some(1), 0, vec![endpoint("10.0.0.1")]),
                locality("us-east1-c", Some(1), 0, vec![endpoint("10.0.0.1")]),
            ]),
            "endpoints[1].lb_endpoints[0].endpoint.address: 10.0.0.1:9080 is also endpoints[0].lb_endpoints[0]",
        ),
        (
            assignment(vec![
                locality("us-east1-b", Some(1), 0, vec![endpoint("10.0.0.1")]),
                locality("us-east1-c", Some(1), 2, vec![endpoint("10.0.0.2")]),
            ]),
            "endpoints: no locality has priority 1; priorities must not skip one",
        ),
    ];
    for (cla, want) in cases {
        assert_eq!(
            nack(&cla),
            format!("ClusterLoadAssignment {NAME:?}: {want}")
        );
    }
    let unnamed = ClusterLoadAssignment::default();
    assert_eq!(
        nack(&unnamed),
        r#"ClusterLoadAssignment "": cluster_name: must not be empty"#
    );
}

#[test]
fn no_endpoints_is_an_empty_set() {
    let empty = XdsLoadAssignment::try_from(&assignment(vec![])).unwrap();
    assert!(empty.endpoints.is_empty());
    assert!(empty.endpoints.drops().is_empty());
}
