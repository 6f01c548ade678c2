//! Clusters written as CDS read back with their policy; what CDS cannot
//! say is refused by field.

use super::*;

fn policy(load_balancer: LoadBalancer) -> ClusterPolicy {
    ClusterPolicy {
        load_balancer,
        retry: RetryPolicy::disabled(),
        ..ClusterPolicy::default()
    }
}

#[test]
fn clusters_round_trip_with_every_balancer() {
    let mut outlier = policy(LoadBalancer::RoundRobin);
    outlier.outlier = OutlierDetection {
        consecutive_5xx: None,
        consecutive_gateway_errors: Some(3),
        base_ejection_time: Duration::from_secs(15),
        max_ejection_time: Duration::from_secs(120),
        max_ejection_percent: 50,
    };
    outlier.circuit_breakers = CircuitBreakers {
        max_requests: u32::MAX,
        max_pending_requests: 7,
    };
    outlier.connection.connect_timeout = Duration::from_millis(2500);
    outlier.connection.protocol = Protocol::Http2;
    let mut http1 = policy(LoadBalancer::Random);
    http1.connection.protocol = Protocol::Http1;
    http1.outlier = OutlierDetection::disabled();
    let mut mutual = policy(LoadBalancer::RoundRobin);
    mutual.tls = Some(mesh_core::policy::UpstreamTls {
        sni: Some("outbound_.9080_._.ratings.default.svc.cluster.local".into()),
        subject_alt_names: vec!["spiffe://cluster.local/ns/default/sa/ratings".into()],
        files: None,
    });
    let mut matched = policy(LoadBalancer::RoundRobin);
    matched.tls = Some(mesh_core::policy::UpstreamTls {
        subject_alt_names: vec![
            StringMatch::Prefix("spiffe://cluster.local/ns/default/".into()),
            StringMatch::regex("spiffe://cluster\\.local/ns/[a-z]+/sa/ratings").unwrap(),
            StringMatch::Suffix(".example.com".into()),
        ],
        ..Default::default()
    });
    let mut mutual_any_peer = policy(LoadBalancer::RoundRobin);
    mutual_any_peer.tls = Some(Default::default());
    let mut own_files = policy(LoadBalancer::RoundRobin);
    own_files.tls = Some(mesh_core::policy::UpstreamTls {
        sni: Some("api.example.com".into()),
        subject_alt_names: vec!["api.example.com".into()],
        files: Some(mesh_core::policy::TlsFiles {
            client_certificate: Some("/etc/certs/client.pem".into()),
            private_key: Some("/etc/certs/client-key.pem".into()),
            ca_certificates: Some("/etc/certs/ca.pem".into()),
        }),
    });
    let mut simple = policy(LoadBalancer::RoundRobin);
    simple.tls = Some(mesh_core::policy::UpstreamTls {
        files: Some(mesh_core::policy::TlsFiles {
            ca_certificates: Some("/etc/ssl/ca.pem".into()),
            ..Default::default()
        }),
        ..Default::default()
    });
    let policies = [
        policy(LoadBalancer::LeastRequest),
        policy(LoadBalancer::PeakEwma(PeakEwma::default())),
        policy(LoadBalancer::PeakEwma(PeakEwma {
            default_rtt: Duration::from_micros(1500),
            decay: Duration::from_nanos(2_000_000_001),
        })),
        policy(LoadBalancer::RingHash(RingHash::new(2048, 4096).unwrap())),
        policy(LoadBalancer::Maglev(Maglev::default())),
        outlier,
        http1,
        mutual,
        matched,
        mutual_any_peer,
        own_files,
        simple,
    ];
    for p in policies {
        let mut c = Cluster::named("outbound|9080|v1|reviews.default.svc.cluster.local");
        c.policy = p;
        let proto = cluster(&c).unwrap();
        let back = XdsCluster::try_from(&proto).unwrap();
        assert_eq!(back.name, c.name);
        assert_eq!(
            back.discovery,
            Discovery::Eds {
                service_name: c.name.to_string()
            }
        );
        assert_eq!(back.policy, c.policy, "{:?}", c.policy.load_balancer);
    }
}

/// The type URLs of the cluster's `load_balancing_policy`, in order.
fn typed_policies(lb: LoadBalancer) -> Vec<String> {
    let mut c = Cluster::named("c");
    c.policy = policy(lb);
    let proto = cluster(&c).unwrap();
    let Some(list) = proto.load_balancing_policy else {
        return Vec::new();
    };
    list.policies
        .into_iter()
        .map(|p| {
            p.typed_extension_config
                .unwrap()
                .typed_config
                .unwrap()
                .type_url
        })
        .collect()
}

#[test]
fn policies_grpc_lacks_fall_back_to_round_robin() {
    // grpcio 1.85 NACKs a cluster whose `lb_policy` is LEAST_REQUEST,
    // RANDOM or MAGLEV: "LB policy is not supported".
    let round_robin =
        "type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin";
    let typed =
        |name: &str| format!("type.googleapis.com/envoy.extensions.load_balancing_policies.{name}");
    let cases = [
        (
            LoadBalancer::PeakEwma(PeakEwma::default()),
            "type.googleapis.com/xds.type.v3.TypedStruct".to_owned(),
        ),
        (
            LoadBalancer::LeastRequest,
            typed("least_request.v3.LeastRequest"),
        ),
        (LoadBalancer::Random, typed("random.v3.Random")),
        (
            LoadBalancer::Maglev(Maglev::default()),
            typed("maglev.v3.Maglev"),
        ),
    ];
    for (lb, first) in cases {
        assert_eq!(typed_policies(lb), [first.as_str(), round_robin], "{lb:?}");
    }
    // What gRPC reads from `lb_policy` stays there alone.
    assert!(typed_policies(LoadBalancer::RoundRobin).is_empty());
    assert!(typed_policies(LoadBalancer::RingHash(RingHash::new(2048, 4096).unwrap())).is_empty());
}

#[test]
fn what_a_cluster_cannot_say_is_refused_by_field() {
    let refused = |f: &dyn Fn(&mut Cluster)| {
        let mut c = Cluster::named("c");
        c.policy = policy(LoadBalancer::RoundRobin);
        f(&mut c);
        cluster(&c).unwrap_err().field
    };
    assert_eq!(
        refused(&|c| c.policy.retry = RetryPolicy::default()),
        "policy.retry"
    );
    assert_eq!(
        refused(&|c| c.policy.timeout = Some(Duration::from_secs(1))),
        "policy.timeout"
    );
    assert_eq!(
        refused(&|c| c.policy.connection.idle_timeout = Duration::from_secs(1)),
        "policy.connection"
    );
    assert_eq!(
        refused(&|c| c.policy.tls_matches = vec![Default::default()]),
        "policy.tls_matches"
    );
    assert_eq!(
        refused(&|c| c.policy.outlier.consecutive_5xx = Some(0)),
        "policy.outlier.consecutive_5xx"
    );
    assert_eq!(
        refused(&|c| c.policy.load_balancer = LoadBalancer::Maglev(Maglev { table_size: 4 })),
        "policy.load_balancer"
    );
    let err = {
        let mut c = Cluster::service(&"reviews:9080".parse().unwrap());
        c.policy = policy(LoadBalancer::RoundRobin);
        c.discovery = mesh_core::Discovery::Service {
            host: "reviews".into(),
            port: None,
        };
        c.port_policies.insert(9080, c.policy.clone());
        cluster(&c).unwrap_err()
    };
    assert_eq!(err.field, "port_policies");
    assert!(
        err.to_string()
            .starts_with("Cluster \"reviews:9080\": port_policies: "),
        "{err}"
    );
}

#[test]
fn json_durations() {
    assert_eq!(json_duration(Duration::from_secs(10)), "10s");
    assert_eq!(json_duration(Duration::from_millis(30)), "0.030s");
    assert_eq!(json_duration(Duration::from_micros(1500)), "0.001500s");
    assert_eq!(
        json_duration(Duration::from_nanos(2_000_000_001)),
        "2.000000001s"
    );
}
