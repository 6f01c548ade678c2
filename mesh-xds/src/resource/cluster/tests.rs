//! Clusters as istiod writes them, each balancer, each discovery type, and
//! every NACK naming its field.

use std::collections::BTreeMap;
use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::{
    CircuitBreakers as ProtoBreakers, Cluster, LoadBalancingPolicy,
    OutlierDetection as ProtoOutlier, circuit_breakers, cluster, load_balancing_policy,
};
use envoy_types::pb::envoy::config::core::v3::{
    ConfigSource, Http2ProtocolOptions, TransportSocket as ProtoSocket, TypedExtensionConfig,
    config_source, transport_socket,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::extensions::load_balancing_policies as policies;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions, http_protocol_options,
};
use mesh_core::policy::{LoadBalancer, Maglev, RingHash};

use super::*;
use crate::resource::endpoint::tests::{endpoint, socket};
use crate::resource::proto::build::*;

const NAME: &str = "outbound|9080|v1|reviews.default.svc.cluster.local";

fn eds() -> Cluster {
    Cluster {
        name: NAME.into(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(ConfigSource {
                config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
                    Default::default(),
                )),
                ..Default::default()
            }),
            service_name: NAME.into(),
        }),
        ..Default::default()
    }
}

fn convert(c: &Cluster) -> XdsCluster {
    XdsCluster::try_from(c).unwrap_or_else(|e| panic!("{e}"))
}

fn nack(c: &Cluster) -> String {
    XdsCluster::try_from(c).unwrap_err().to_string()
}

fn tls_socket() -> ProtoSocket {
    ProtoSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(any(
            &UpstreamTlsContext {
                sni: "outbound_.9080_.v1_.reviews.default.svc.cluster.local".into(),
                ..Default::default()
            },
        ))),
    }
}

/// What istiod writes for the `v1` subset of reviews with a
/// DestinationRule setting least request, connection limits, outlier
/// detection and HTTP/2.
fn istio_reviews_v1() -> Cluster {
    let mut c = eds();
    c.connect_timeout = Some(secs(10));
    c.lb_policy = cluster::LbPolicy::LeastRequest as i32;
    c.circuit_breakers = Some(ProtoBreakers {
        thresholds: vec![circuit_breakers::Thresholds {
            max_connections: u32v(u32::MAX),
            max_pending_requests: u32v(100),
            max_requests: u32v(1000),
            max_retries: u32v(u32::MAX),
            track_remaining: true,
            ..Default::default()
        }],
        ..Default::default()
    });
    c.outlier_detection = Some(ProtoOutlier {
        consecutive_5xx: u32v(7),
        enforcing_consecutive_5xx: u32v(100),
        enforcing_success_rate: u32v(0),
        interval: Some(secs(300)),
        base_ejection_time: Some(secs(900)),
        max_ejection_percent: u32v(50),
        ..Default::default()
    });
    let h2 = HttpProtocolOptions {
        upstream_protocol_options: Some(
            http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(
                http_protocol_options::ExplicitHttpConfig {
                    protocol_config: Some(
                        http_protocol_options::explicit_http_config::ProtocolConfig::Http2ProtocolOptions(
                            Http2ProtocolOptions::default(),
                        ),
                    ),
                },
            ),
        ),
        ..Default::default()
    };
    c.typed_extension_protocol_options.insert(
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".into(),
        any(&h2),
    );
    c.transport_socket_matches = vec![
        cluster::TransportSocketMatch {
            name: "tlsMode-istio".into(),
            r#match: Some(strings(&[("tlsMode", "istio")])),
            transport_socket: Some(tls_socket()),
        },
        cluster::TransportSocketMatch {
            name: "tlsMode-disabled".into(),
            r#match: Some(Default::default()),
            transport_socket: Some(ProtoSocket {
                name: "envoy.transport_sockets.raw_buffer".into(),
                config_type: None,
            }),
        },
    ];
    c
}

#[test]
fn istio_destination_rule_policies_map() {
    let c = convert(&istio_reviews_v1());
    assert_eq!(c.name.as_str(), NAME);
    assert_eq!(
        c.discovery,
        Discovery::Eds {
            service_name: NAME.into()
        }
    );
    let p = &c.policy;
    assert_eq!(p.load_balancer, LoadBalancer::LeastRequest);
    assert_eq!(
        (
            p.circuit_breakers.max_requests,
            p.circuit_breakers.max_pending_requests
        ),
        (1000, 100)
    );
    assert_eq!(p.outlier.consecutive_5xx, Some(7));
    assert_eq!(p.outlier.consecutive_gateway_errors, None);
    assert_eq!(p.outlier.base_ejection_time, Duration::from_secs(900));
    assert_eq!(p.outlier.max_ejection_time, Duration::from_secs(300));
    assert_eq!(p.outlier.max_ejection_percent, 50);
    assert_eq!(p.connection.connect_timeout, Duration::from_secs(10));
    assert_eq!(p.connection.protocol, Protocol::Http2);
    assert_eq!(p.retry.num_retries, 0, "retries are the routes'");
    assert_eq!(p.timeout, None);

    assert_eq!(p.tls, None);
    let [istio, disabled] = p.tls_matches.as_slice() else {
        panic!("two matches");
    };
    assert_eq!(istio.name, "tlsMode-istio");
    assert_eq!(
        istio.criteria.get("tlsMode").map(String::as_str),
        Some("istio")
    );
    assert!(istio.tls.is_some());
    assert!(disabled.criteria.is_empty());
    assert_eq!(disabled.tls, None, "raw_buffer is plain text");
    let sidecar: BTreeMap<String, String> = [("tlsMode".into(), "istio".into())].into();
    assert!(p.tls_for(&sidecar).is_some());
    assert!(p.tls_for(&BTreeMap::new()).is_none());
}

#[test]
fn a_transport_socket_that_is_neither_tls_nor_plain_text_is_refused() {
    let alts = ProtoSocket {
        name: "envoy.transport_sockets.alts".into(),
        config_type: None,
    };
    let c = Cluster {
        transport_socket: Some(alts.clone()),
        ..eds()
    };
    assert_eq!(
        nack(&c),
        format!(
            "Cluster {NAME:?}: transport_socket: transport socket \"envoy.transport_sockets.alts\" \
             is not supported: only TLS (UpstreamTlsContext) or raw_buffer, so a connection is \
             never made without what it asks for"
        )
    );
    let mut c = istio_reviews_v1();
    c.transport_socket_matches[1].transport_socket = Some(alts);
    assert!(
        nack(&c).starts_with(&format!(
            "Cluster {NAME:?}: transport_socket_matches[1].transport_socket: transport socket"
        )),
        "{}",
        nack(&c)
    );
}

#[test]
fn defaults_when_nothing_is_set() {
    let mut plain = Cluster {
        name: "plain".into(),
        transport_socket: Some(tls_socket()),
        ..eds()
    };
    if let Some(eds) = &mut plain.eds_cluster_config {
        eds.service_name.clear();
    }
    let c = convert(&plain);
    assert_eq!(
        c.discovery,
        Discovery::Eds {
            service_name: "plain".into()
        },
        "the cluster's own name"
    );
    let p = &c.policy;
    assert_eq!(p.load_balancer, LoadBalancer::RoundRobin);
    assert_eq!(p.outlier, OutlierDetection::disabled());
    assert_eq!(
        (
            p.circuit_breakers.max_requests,
            p.circuit_breakers.max_pending_requests
        ),
        (1024, 1024)
    );
    assert_eq!(p.connection.connect_timeout, Duration::from_secs(5));
    assert_eq!(p.connection.protocol, Protocol::UseClientProtocol);
    assert!(p.tls.is_some());
}

#[test]
fn consistent_hashing_balancers() {
    let mut ring = eds();
    ring.lb_policy = cluster::LbPolicy::RingHash as i32;
    ring.lb_config = Some(cluster::LbConfig::RingHashLbConfig(
        cluster::RingHashLbConfig {
            minimum_ring_size: u64v(2048),
            maximum_ring_size: u64v(4096),
            hash_function: 0,
        },
    ));
    assert_eq!(
        convert(&ring).policy.load_balancer,
        LoadBalancer::RingHash(RingHash::new(2048, 4096).unwrap())
    );
    let mut maglev = eds();
    maglev.lb_policy = cluster::LbPolicy::Maglev as i32;
    assert_eq!(
        convert(&maglev).policy.load_balancer,
        LoadBalancer::Maglev(Maglev::default())
    );
    maglev.lb_config = Some(cluster::LbConfig::MaglevLbConfig(cluster::MaglevLbConfig {
        table_size: u64v(65536),
    }));
    assert_eq!(
        nack(&maglev),
        format!(
            "Cluster {NAME:?}: maglev_lb_config.table_size: maglev table size 65536 is not a prime number"
        )
    );
    // Envoy's largest table, 20 MB a cluster here: refused.
    maglev.lb_config = Some(cluster::LbConfig::MaglevLbConfig(cluster::MaglevLbConfig {
        table_size: u64v(Maglev::MAX_TABLE_SIZE),
    }));
    assert_eq!(
        nack(&maglev),
        format!(
            "Cluster {NAME:?}: maglev_lb_config.table_size: maglev table size 5000011 is \
             above the 131071 this client builds"
        )
    );
    maglev.lb_config = Some(cluster::LbConfig::MaglevLbConfig(cluster::MaglevLbConfig {
        table_size: u64v(super::lb::MAX_MAGLEV_TABLE_SIZE),
    }));
    assert_eq!(
        convert(&maglev).policy.load_balancer,
        LoadBalancer::Maglev(Maglev::new(131_071).unwrap())
    );
}

#[test]
fn ring_sizes_beyond_the_protocol_limit_are_refused_naming_the_field() {
    let ring = |min: u64, max: u64| {
        let mut c = eds();
        c.lb_policy = cluster::LbPolicy::RingHash as i32;
        c.lb_config = Some(cluster::LbConfig::RingHashLbConfig(
            cluster::RingHashLbConfig {
                minimum_ring_size: u64v(min),
                maximum_ring_size: u64v(max),
                hash_function: 0,
            },
        ));
        c
    };
    let over = RingHash::MAX_RING_SIZE + 1;
    assert_eq!(
        nack(&ring(1024, over)),
        format!(
            "Cluster {NAME:?}: ring_hash_lb_config.maximum_ring_size: \
             ring hash ring size 8388609 is out of range (1 to 8388608)"
        )
    );
    assert_eq!(
        nack(&ring(over, over)),
        format!(
            "Cluster {NAME:?}: ring_hash_lb_config.minimum_ring_size: \
             ring hash ring size 8388609 is out of range (1 to 8388608)"
        )
    );
}

fn typed(any: envoy_types::pb::google::protobuf::Any) -> load_balancing_policy::Policy {
    load_balancing_policy::Policy {
        typed_extension_config: Some(TypedExtensionConfig {
            name: "policy".into(),
            typed_config: Some(any),
        }),
    }
}

#[test]
fn typed_policies_take_the_first_supported() {
    let weighted = typed(any(
        &policies::client_side_weighted_round_robin::v3::ClientSideWeightedRoundRobin::default(),
    ));
    let ring = policies::ring_hash::v3::RingHash {
        minimum_ring_size: u64v(100),
        ..Default::default()
    };
    let wrr_locality = policies::wrr_locality::v3::WrrLocality {
        endpoint_picking_policy: Some(LoadBalancingPolicy {
            policies: vec![weighted.clone(), typed(any(&ring))],
        }),
    };
    let mut c = eds();
    c.lb_policy = cluster::LbPolicy::Maglev as i32; // ignored: the typed list wins
    c.load_balancing_policy = Some(LoadBalancingPolicy {
        policies: vec![weighted.clone(), typed(any(&wrr_locality))],
    });
    let want = RingHash::new(100, RingHash::MAX_RING_SIZE).unwrap();
    assert_eq!(
        convert(&c).policy.load_balancer,
        LoadBalancer::RingHash(want)
    );

    c.load_balancing_policy = Some(LoadBalancingPolicy {
        policies: vec![weighted],
    });
    assert_eq!(
        nack(&c),
        format!(
            "Cluster {NAME:?}: load_balancing_policy.policies: none is supported: \
             envoy.extensions.load_balancing_policies.client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin"
        )
    );
}

#[test]
fn static_and_logical_dns_clusters() {
    let typed = |t: cluster::DiscoveryType, endpoints| Cluster {
        name: "static".into(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(t as i32)),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: "static".into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: endpoints,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let two = vec![endpoint("10.0.0.1"), endpoint("10.0.0.2")];
    let Discovery::Static(assignment) =
        convert(&typed(cluster::DiscoveryType::Static, two.clone())).discovery
    else {
        panic!("static");
    };
    assert_eq!(assignment.endpoints.len(), 2);

    let mut dns = endpoint("unused");
    if let Some(lb_endpoint::HostIdentifier::Endpoint(e)) = dns.host_identifier.as_mut() {
        e.address = socket("details.example.com", 443);
    }
    let c = typed(cluster::DiscoveryType::LogicalDns, vec![dns]);
    assert_eq!(
        convert(&c).discovery,
        Discovery::LogicalDns {
            host: "details.example.com".into(),
            port: 443
        }
    );
    let two_hosts = typed(cluster::DiscoveryType::LogicalDns, two);
    assert_eq!(
        nack(&two_hosts),
        r#"Cluster "static": load_assignment.endpoints[0].lb_endpoints: 2 endpoints; LOGICAL_DNS needs one"#
    );
    let strict = typed(cluster::DiscoveryType::StrictDns, vec![]);
    assert_eq!(
        nack(&strict),
        r#"Cluster "static": type: STRICT_DNS clusters are not supported; use EDS, STATIC or LOGICAL_DNS"#
    );
}

#[test]
fn nacks_name_the_resource_and_the_field() {
    let with = |f: fn(&mut Cluster)| {
        let mut c = eds();
        f(&mut c);
        c
    };
    let cases = [
        (
            with(|c| c.name.clear()),
            r#"Cluster "": name: must not be empty"#.to_owned(),
        ),
        (
            with(|c| c.connect_timeout = Some(secs(0))),
            format!("Cluster {NAME:?}: connect_timeout: must be more than zero"),
        ),
        (
            with(|c| {
                c.outlier_detection = Some(ProtoOutlier {
                    enforcing_consecutive_5xx: u32v(50),
                    ..Default::default()
                })
            }),
            format!(
                "Cluster {NAME:?}: outlier_detection.enforcing_consecutive_5xx: 50%: only 0 and 100 are supported"
            ),
        ),
        (
            with(|c| {
                c.outlier_detection = Some(ProtoOutlier {
                    max_ejection_percent: u32v(150),
                    ..Default::default()
                })
            }),
            format!(
                "Cluster {NAME:?}: outlier_detection.max_ejection_percent: 150 is more than 100"
            ),
        ),
        (
            with(|c| {
                c.lb_policy = cluster::LbPolicy::RingHash as i32;
                c.lb_config = Some(cluster::LbConfig::RingHashLbConfig(
                    cluster::RingHashLbConfig {
                        hash_function: 1,
                        ..Default::default()
                    },
                ));
            }),
            format!(
                "Cluster {NAME:?}: ring_hash_lb_config.hash_function: only XX_HASH is supported"
            ),
        ),
        (
            with(|c| c.lb_policy = cluster::LbPolicy::ClusterProvided as i32),
            format!("Cluster {NAME:?}: lb_policy: CLUSTER_PROVIDED is not supported"),
        ),
    ];
    for (c, want) in cases {
        assert_eq!(nack(&c), want);
    }
}

/// What istiod's gRPC generator writes: the SANs in a combined validation
/// context's default, the certificates from provider instances.
#[test]
fn server_identities_are_read_where_istiod_writes_them_with_every_matcher_kind() {
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
        CertificateProviderPluginInstance, CertificateValidationContext, CommonTlsContext,
        common_tls_context::{CombinedCertificateValidationContext, ValidationContextType},
    };
    use envoy_types::pb::envoy::r#type::matcher::v3::{
        RegexMatcher, StringMatcher, string_matcher::MatchPattern,
    };
    use mesh_core::route::StringMatch;
    let reviews = "spiffe://cluster.local/ns/default/sa/reviews";
    let matcher = |pattern: MatchPattern| StringMatcher {
        match_pattern: Some(pattern),
        ignore_case: false,
    };
    let caseless = |pattern: MatchPattern| StringMatcher {
        match_pattern: Some(pattern),
        ignore_case: true,
    };
    let socket = |m: StringMatcher| {
        #[allow(deprecated)]
        let validation = CertificateValidationContext {
            match_subject_alt_names: vec![m],
            ..Default::default()
        };
        let instance = |name: &str| CertificateProviderPluginInstance {
            instance_name: "default".into(),
            certificate_name: name.into(),
        };
        let context = UpstreamTlsContext {
            common_tls_context: Some(CommonTlsContext {
                tls_certificate_provider_instance: Some(instance("default")),
                validation_context_type: Some(ValidationContextType::CombinedValidationContext(
                    CombinedCertificateValidationContext {
                        default_validation_context: Some(validation),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            }),
            ..Default::default()
        };
        ProtoSocket {
            name: "envoy.transport_sockets.tls".into(),
            config_type: Some(transport_socket::ConfigType::TypedConfig(any(&context))),
        }
    };
    let c = Cluster {
        transport_socket: Some(socket(matcher(MatchPattern::Exact(reviews.into())))),
        ..eds()
    };
    let tls = convert(&c).policy.tls.unwrap();
    assert_eq!(tls.subject_alt_names, [StringMatch::from(reviews)]);
    assert_eq!(tls.files, None, "the mesh's own certificates");
    let sans = |m: StringMatcher| {
        let c = Cluster {
            transport_socket: Some(socket(m)),
            ..eds()
        };
        convert(&c).policy.tls.unwrap().subject_alt_names
    };
    let ns = "spiffe://cluster.local/ns/default/";
    let [prefix] = &sans(matcher(MatchPattern::Prefix(ns.into())))[..] else {
        panic!("one matcher")
    };
    assert!(prefix.matches(reviews, false));
    assert!(!prefix.matches("spiffe://cluster.local/ns/other/sa/reviews", false));
    let [suffix] = &sans(matcher(MatchPattern::Suffix("/sa/reviews".into())))[..] else {
        panic!("one matcher")
    };
    assert!(suffix.matches(reviews, false));
    let [contains] = &sans(matcher(MatchPattern::Contains("/ns/default/".into())))[..] else {
        panic!("one matcher")
    };
    assert!(contains.matches(reviews, false));
    let regex = RegexMatcher {
        regex: "spiffe://cluster\\.local/ns/[a-z]+/sa/reviews".into(),
        ..Default::default()
    };
    let [regex] = &sans(matcher(MatchPattern::SafeRegex(regex)))[..] else {
        panic!("one matcher")
    };
    assert!(regex.matches(reviews, false));
    assert!(!regex.matches("spiffe://cluster.local/ns/default/sa/ratings", false));
    // Case is ignored as Envoy ignores it: ASCII, the literal part only.
    let [upper] = &sans(caseless(MatchPattern::Exact(reviews.to_uppercase())))[..] else {
        panic!("one matcher")
    };
    assert!(upper.matches(reviews, false));
    // A matcher that cannot be read would let any server through.
    let c = Cluster {
        transport_socket: Some(socket(StringMatcher::default())),
        ..eds()
    };
    let e = nack(&c);
    assert!(
        e.contains(
            "transport_socket.typed_config.validation_context.match_subject_alt_names[0]: \
             no match pattern"
        ),
        "{e}"
    );
}
