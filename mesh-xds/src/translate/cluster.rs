//! Clusters as CDS: a mesh [`Cluster`] into an EDS `Cluster` over ADS
//! whose endpoints are the `ClusterLoadAssignment` named after it, in the
//! shape istiod gives proxyless clients, and which
//! [`XdsCluster`](crate::resource::XdsCluster) reads back with the same
//! [`ClusterPolicy`].
//!
//! Written: `connect_timeout`; the balancer as `lb_policy` (`ROUND_ROBIN`,
//! `LEAST_REQUEST`, `RANDOM`, `RING_HASH` with `ring_hash_lb_config`,
//! `MAGLEV` with `maglev_lb_config`). gRPC reads only `ROUND_ROBIN` and
//! `RING_HASH` from that enum and NACKs the others ("LB policy is not
//! supported"), so least request, random and Maglev are also a
//! `load_balancing_policy` of the typed policy followed by `round_robin`,
//! which gRPC falls back to (gRFC A52) and Envoy and the mesh read first.
//! Peak EWMA, which has no enum value, is `ROUND_ROBIN` and a
//! `load_balancing_policy` of the mesh's `TypedStruct`
//! ([`PEAK_EWMA_TYPE_URL`]) followed by `round_robin`; outlier detection
//! (absent when it never ejects and keeps the default times; enforcement
//! 100 % or 0 % per threshold); circuit breakers at the `DEFAULT`
//! priority; HTTP/1.1 or HTTP/2 as an `HttpProtocolOptions` when the
//! cluster's protocol is not the client's own; mutual TLS
//! ([`ClusterPolicy::tls`](mesh_core::policy::ClusterPolicy::tls)) as an
//! upstream TLS transport socket from the certificate provider instance
//! `default`, as istiod writes it for proxyless gRPC.
//!
//! Not part of a CDS cluster, and so refused unless they are what CDS
//! reads back: retries and the request timeout (a route's in xDS: put
//! them on the routes, as [`service_port`](super::service_port) does),
//! the local rate limit, idle connection settings and `TCP_NODELAY`, and
//! per-port policies. Where the endpoints come from
//! ([`Cluster::discovery`](mesh_core::Cluster::discovery)) and a subset's
//! labels are not written: the cluster is always EDS over ADS by its own
//! name, and istiod selects a subset's endpoints in its EDS resource, as
//! [`load_assignment`](super::load_assignment) of the subset's endpoints
//! does.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::cluster::v3 as cds;
use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    self, ClusterDiscoveryType, DiscoveryType, EdsClusterConfig, LbConfig, LbPolicy,
};
use envoy_types::pb::envoy::config::cluster::v3::load_balancing_policy::Policy;
use envoy_types::pb::envoy::config::core::v3::{Http1ProtocolOptions, Http2ProtocolOptions};
use envoy_types::pb::envoy::config::core::v3::{RoutingPriority, TypedExtensionConfig};
use envoy_types::pb::envoy::extensions::load_balancing_policies as policies;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::{
    ExplicitHttpConfig, UpstreamProtocolOptions, explicit_http_config::ProtocolConfig,
};
use envoy_types::pb::google::protobuf::{self as pb, Any, UInt32Value, UInt64Value, value::Kind};
use mesh_core::policy::{
    CircuitBreakers, ConnectionPolicy, LoadBalancer, OutlierDetection, PeakEwma, Protocol,
    RetryPolicy,
};
use mesh_core::{Cluster, Discovery};
use policies::least_request::v3::LeastRequest;
use policies::maglev::v3::Maglev as TypedMaglev;
use policies::random::v3::Random;
use policies::round_robin::v3::RoundRobin;
use prost::{Message, Name};

use super::error::{Refused, TranslateError};
use super::{Peer, SanMatchers, ads, any, duration};
use crate::resource::cluster::PEAK_EWMA_TYPE_URL;
use crate::resource::cluster::ewma::{TYPED_STRUCTS, TypedStruct};

/// The `typed_extension_protocol_options` key of `HttpProtocolOptions`.
const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// The CDS resource for `c`: an EDS cluster over ADS named as `c` is, whose
/// `service_name` is that name too.
///
/// ```
/// use mesh_core::Cluster;
/// use mesh_core::policy::RetryPolicy;
/// use mesh_xds::resource::XdsCluster;
/// use mesh_xds::translate;
///
/// let mut c = Cluster::named("outbound|9080|v1|reviews.default.svc.cluster.local");
/// c.policy.retry = RetryPolicy::disabled(); // retries are a route's in xDS
/// let proto = translate::cluster(&c)?;
/// assert_eq!(proto.eds_cluster_config.unwrap().service_name, c.name.as_str());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn cluster(c: &Cluster) -> Result<cds::Cluster, TranslateError> {
    cluster_for(c, Peer::Grpc)
}

/// The CDS resource for `c`, as [`cluster()`] writes it, for `peer`.
///
/// ```
/// use mesh_core::Cluster;
/// use mesh_core::policy::{Distribute, LoadBalancer, RetryPolicy};
/// use mesh_xds::translate::{self, Peer};
///
/// let mut c = Cluster::named("outbound|9080||reviews.default.svc.cluster.local");
/// c.policy.retry = RetryPolicy::disabled();
/// c.policy.load_balancer = LoadBalancer::RoundRobin;
/// let east = "us-east/*".parse()?;
/// c.policy.locality.distribute = vec![Distribute { from: east, to: vec![("us-east/*".parse()?, 100)] }];
/// let envoy = translate::cluster_for(&c, Peer::Envoy)?;
/// assert!(envoy.common_lb_config.unwrap().locality_config_specifier.is_some());
/// assert!(translate::cluster_for(&c, Peer::Grpc)?.common_lb_config.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn cluster_for(c: &Cluster, peer: Peer) -> Result<cds::Cluster, TranslateError> {
    let name = c.name.as_str();
    convert(c, peer).map_err(|e| e.at(cds::Cluster::NAME, name, ""))
}

fn convert(c: &Cluster, peer: Peer) -> Result<cds::Cluster, Refused> {
    if c.name.as_str().is_empty() {
        return Err(Refused::new("name", "must not be empty"));
    }
    if matches!(c.discovery, Discovery::Service { port: None, .. }) && !c.port_policies.is_empty() {
        return Err(Refused::new(
            "port_policies",
            "a CDS cluster has one policy: write one cluster per port, each with its port's policy",
        ));
    }
    let p = &c.policy;
    if p.retry != RetryPolicy::disabled() {
        return Err(Refused::new(
            "policy.retry",
            "retries are a route's in xDS; move them to the routes",
        ));
    }
    if p.timeout.is_some() {
        return Err(Refused::new(
            "policy.timeout",
            "the request timeout is a route's in xDS; move it to the routes",
        ));
    }
    if p.rate_limit.is_some() {
        return Err(Refused::new(
            "policy.rate_limit",
            "local rate limits are not expressed in xDS clusters",
        ));
    }
    let connection = ConnectionPolicy {
        connect_timeout: p.connection.connect_timeout,
        protocol: p.connection.protocol,
        ..ConnectionPolicy::default()
    };
    if p.connection != connection {
        return Err(Refused::new(
            "policy.connection",
            "only connect_timeout and protocol are expressed in xDS clusters; \
             idle_timeout, max_idle_per_endpoint and tcp_nodelay must be the defaults",
        ));
    }
    if !p.tls_matches.is_empty() {
        return Err(Refused::new(
            "policy.tls_matches",
            "proxyless gRPC clients refuse a cluster with transport_socket_matches; \
             give the cluster one TLS setting",
        ));
    }
    if p.connection.connect_timeout.is_zero() {
        return Err(Refused::new(
            "policy.connection.connect_timeout",
            "must be more than zero",
        ));
    }
    let sans = match peer {
        Peer::Grpc => SanMatchers::Untyped,
        Peer::Envoy => SanMatchers::Typed,
    };
    let mut out = cds::Cluster {
        name: c.name.as_str().to_owned(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: c.name.as_str().to_owned(),
        }),
        connect_timeout: Some(duration(p.connection.connect_timeout)),
        outlier_detection: outlier(&p.outlier).map_err(|e| e.within("policy.outlier"))?,
        transport_socket: p
            .tls
            .as_ref()
            .map(|tls| super::tls_transport_socket(tls, sans))
            .transpose()
            .map_err(|e| e.within("policy.tls"))?,
        circuit_breakers: Some(circuit_breakers(&p.circuit_breakers)),
        typed_extension_protocol_options: protocol(p.connection.protocol),
        ..Default::default()
    };
    balance(&p.load_balancer, &mut out).map_err(|e| e.within("policy.load_balancer"))?;
    if peer == Peer::Envoy && !p.locality.distribute.is_empty() {
        weigh_localities(&mut out);
    }
    Ok(out)
}

fn balance(lb: &LoadBalancer, c: &mut cds::Cluster) -> Result<(), Refused> {
    lb.validate().map_err(|e| Refused::new("", e))?;
    let (kind, config, typed) = match lb {
        LoadBalancer::RoundRobin => (LbPolicy::RoundRobin, None, None),
        LoadBalancer::LeastRequest => (
            LbPolicy::LeastRequest,
            None,
            Some(policy(
                "envoy.load_balancing_policies.least_request",
                any(&LeastRequest::default()),
            )),
        ),
        LoadBalancer::Random => (
            LbPolicy::Random,
            None,
            Some(policy(
                "envoy.load_balancing_policies.random",
                any(&Random::default()),
            )),
        ),
        LoadBalancer::RingHash(r) => (
            LbPolicy::RingHash,
            Some(LbConfig::RingHashLbConfig(cluster::RingHashLbConfig {
                minimum_ring_size: Some(UInt64Value {
                    value: r.min_ring_size,
                }),
                maximum_ring_size: Some(UInt64Value {
                    value: r.max_ring_size,
                }),
                hash_function: cluster::ring_hash_lb_config::HashFunction::XxHash as i32,
            })),
            None,
        ),
        LoadBalancer::Maglev(m) => {
            let table_size = Some(UInt64Value {
                value: m.table_size,
            });
            let typed = TypedMaglev {
                table_size,
                ..Default::default()
            };
            (
                LbPolicy::Maglev,
                Some(LbConfig::MaglevLbConfig(cluster::MaglevLbConfig {
                    table_size,
                })),
                Some(policy("envoy.load_balancing_policies.maglev", any(&typed))),
            )
        }
        LoadBalancer::PeakEwma(e) => (
            LbPolicy::RoundRobin,
            None,
            Some(policy("mesh.peak_ewma", peak_ewma(e))),
        ),
    };
    // Then round robin, for the clients that lack the policy.
    c.load_balancing_policy = typed.map(|typed| cds::LoadBalancingPolicy {
        policies: vec![
            typed,
            policy(
                "envoy.load_balancing_policies.round_robin",
                any(&RoundRobin::default()),
            ),
        ],
    });
    c.lb_policy = kind as i32;
    c.lb_config = config;
    Ok(())
}

/// A `STATIC` cluster `name` of the one endpoint `addr`, as istiod writes
/// a sidecar's inbound cluster (`inbound|9080||`) to its workload.
///
/// ```
/// use mesh_xds::translate;
/// let c = translate::static_cluster("inbound|9080||", "127.0.0.1:8080".parse()?);
/// assert_eq!(c.load_assignment.unwrap().endpoints[0].lb_endpoints.len(), 1);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn static_cluster(name: &str, addr: std::net::SocketAddr) -> cds::Cluster {
    use envoy_types::pb::envoy::config::endpoint::v3 as eds;
    let endpoint = eds::LbEndpoint {
        host_identifier: Some(eds::lb_endpoint::HostIdentifier::Endpoint(eds::Endpoint {
            address: Some(super::socket_address(addr)),
            ..Default::default()
        })),
        ..Default::default()
    };
    cds::Cluster {
        name: name.to_owned(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Static as i32)),
        connect_timeout: Some(duration(std::time::Duration::from_secs(10))),
        load_assignment: Some(eds::ClusterLoadAssignment {
            cluster_name: name.to_owned(),
            endpoints: vec![eds::LocalityLbEndpoints {
                lb_endpoints: vec![endpoint],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Makes Envoy weigh `c`'s localities by their EDS weights, which it
/// ignores otherwise (istiod does this where a rule distributes traffic
/// by locality): in each typed balancer of `load_balancing_policy` that
/// takes it, or in `common_lb_config` when there is none, as Envoy
/// refuses the two together.
fn weigh_localities(c: &mut cds::Cluster) {
    use policies::common::v3::LocalityLbConfig;
    use policies::common::v3::locality_lb_config::{
        LocalityConfigSpecifier as Typed, LocalityWeightedLbConfig as TypedWeighted,
    };
    use policies::ring_hash::v3::RingHash as TypedRingHash;
    let Some(lbp) = &mut c.load_balancing_policy else {
        use cluster::common_lb_config::{LocalityConfigSpecifier, LocalityWeightedLbConfig};
        c.common_lb_config
            .get_or_insert_with(Default::default)
            .locality_config_specifier = Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(
            LocalityWeightedLbConfig {},
        ));
        return;
    };
    let weighted = || {
        Some(LocalityLbConfig {
            locality_config_specifier: Some(Typed::LocalityWeightedLbConfig(TypedWeighted {})),
        })
    };
    let typed = lbp
        .policies
        .iter_mut()
        .filter_map(|p| p.typed_extension_config.as_mut()?.typed_config.as_mut());
    for any in typed {
        edit(any, |p: &mut LeastRequest| {
            p.locality_lb_config = weighted()
        });
        edit(any, |p: &mut Random| p.locality_lb_config = weighted());
        edit(any, |p: &mut RoundRobin| p.locality_lb_config = weighted());
        edit(any, |p: &mut TypedMaglev| {
            p.locality_weighted_lb_config = Some(TypedWeighted {});
        });
        edit(any, |p: &mut TypedRingHash| {
            p.locality_weighted_lb_config = Some(TypedWeighted {});
        });
    }
}

/// Changes `any` by `f` if it holds a `T`.
fn edit<T: Message + Name + Default>(any: &mut Any, f: impl FnOnce(&mut T)) {
    if any.type_url != T::type_url() {
        return;
    }
    if let Ok(mut m) = T::decode(any.value.as_slice()) {
        f(&mut m);
        any.value = m.encode_to_vec();
    }
}

fn policy(name: &str, typed_config: Any) -> Policy {
    Policy {
        typed_extension_config: Some(TypedExtensionConfig {
            name: name.to_owned(),
            typed_config: Some(typed_config),
        }),
    }
}

/// The mesh's peak EWMA as the `TypedStruct` its reader takes, durations
/// in protobuf JSON (`"0.030s"`).
fn peak_ewma(e: &PeakEwma) -> Any {
    let json = |d: std::time::Duration| pb::Value {
        kind: Some(Kind::StringValue(super::json_duration(d))),
    };
    let fields = [("default_rtt", e.default_rtt), ("decay", e.decay)]
        .into_iter()
        .map(|(k, d)| (k.to_owned(), json(d)))
        .collect();
    let typed = TypedStruct {
        type_url: PEAK_EWMA_TYPE_URL.to_owned(),
        value: Some(pb::Struct { fields }),
    };
    Any {
        type_url: format!("type.googleapis.com/{}", TYPED_STRUCTS[0]),
        value: typed.encode_to_vec(),
    }
}

fn outlier(o: &OutlierDetection) -> Result<Option<cds::OutlierDetection>, Refused> {
    if *o == OutlierDetection::disabled() {
        return Ok(None);
    }
    if o.base_ejection_time.is_zero() {
        return Err(Refused::new("base_ejection_time", "must be more than zero"));
    }
    if o.max_ejection_percent > 100 {
        return Err(Refused::new("max_ejection_percent", "must be at most 100"));
    }
    let threshold = |n: Option<u32>, field: &str| match n {
        Some(0) => Err(Refused::new(field, "0 reads back as never ejecting (None)")),
        Some(n) => Ok((Some(UInt32Value { value: n }), 100)),
        None => Ok((None, 0)),
    };
    let (consecutive_5xx, on_5xx) = threshold(o.consecutive_5xx, "consecutive_5xx")?;
    let (consecutive_gateway_failure, on_gateway) =
        threshold(o.consecutive_gateway_errors, "consecutive_gateway_errors")?;
    Ok(Some(cds::OutlierDetection {
        consecutive_5xx,
        enforcing_consecutive_5xx: Some(UInt32Value { value: on_5xx }),
        consecutive_gateway_failure,
        enforcing_consecutive_gateway_failure: Some(UInt32Value { value: on_gateway }),
        base_ejection_time: Some(duration(o.base_ejection_time)),
        max_ejection_time: Some(duration(o.max_ejection_time)),
        max_ejection_percent: Some(UInt32Value {
            value: o.max_ejection_percent,
        }),
        ..Default::default()
    }))
}

fn circuit_breakers(c: &CircuitBreakers) -> cds::CircuitBreakers {
    cds::CircuitBreakers {
        thresholds: vec![cds::circuit_breakers::Thresholds {
            priority: RoutingPriority::Default as i32,
            max_requests: Some(UInt32Value {
                value: c.max_requests,
            }),
            max_pending_requests: Some(UInt32Value {
                value: c.max_pending_requests,
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn protocol(p: Protocol) -> HashMap<String, Any> {
    let config = match p {
        Protocol::UseClientProtocol => return HashMap::new(),
        Protocol::Http1 => ProtocolConfig::HttpProtocolOptions(Http1ProtocolOptions::default()),
        Protocol::Http2 => ProtocolConfig::Http2ProtocolOptions(Http2ProtocolOptions::default()),
    };
    let options = HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(config),
            },
        )),
        ..Default::default()
    };
    HashMap::from([(HTTP_PROTOCOL_OPTIONS.to_owned(), any(&options))])
}
