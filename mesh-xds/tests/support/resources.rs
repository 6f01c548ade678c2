//! xDS resources shaped as istiod writes them, for the reviews service and
//! any other.

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ConfigSource, HealthStatus, Locality, SocketAddress, address,
    config_source::ConfigSourceSpecifier, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::listener::v3::{ApiListener, Listener};
use envoy_types::pb::envoy::config::route::v3::{
    RetryPolicy, Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, WeightedCluster,
    retry_policy, route, route_action, route_match, weighted_cluster,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager::RouteSpecifier,
    http_filter::ConfigType,
};
use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatcher;
use envoy_types::pb::google::protobuf::{Any, Duration, UInt32Value};
use prost::{Message, Name};
use std::net::SocketAddr;

use super::Resource;

pub(crate) const LISTENER: &str = "reviews.default.svc.cluster.local:9080";
pub(crate) const ROUTES: &str = "reviews-routes";
pub(crate) const V1: &str = "outbound|9080|v1|reviews.default.svc.cluster.local";
pub(crate) const V2: &str = "outbound|9080|v2|reviews.default.svc.cluster.local";

fn any<T: Message + Name>(m: &T) -> Any {
    Any {
        type_url: T::type_url(),
        value: m.encode_to_vec(),
    }
}

fn resource(name: &str, any: Any) -> Resource {
    Resource {
        name: name.into(),
        any,
    }
}

/// Over ADS, as istiod names every resource's source.
fn ads_source() -> ConfigSource {
    ConfigSource {
        config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
        ..Default::default()
    }
}

/// A client listener: HCM on an api_listener, routes by RDS over ADS, the
/// router filter.
pub(crate) fn listener(name: &str, route_config_name: &str) -> Resource {
    let hcm = HttpConnectionManager {
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            config_source: Some(ads_source()),
            route_config_name: route_config_name.into(),
        })),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(ConfigType::TypedConfig(any(&Router::default()))),
            ..Default::default()
        }],
        ..Default::default()
    };
    let listener = Listener {
        name: name.into(),
        api_listener: Some(ApiListener {
            api_listener: Some(any(&hcm)),
        }),
        ..Default::default()
    };
    resource(name, any(&listener))
}

fn route_config_matching(name: &str, cluster: &str, path: route_match::PathSpecifier) -> Resource {
    let route = Route {
        r#match: Some(RouteMatch {
            path_specifier: Some(path),
            ..Default::default()
        }),
        action: Some(route::Action::Route(to_cluster(cluster))),
        ..Default::default()
    };
    let vhost = VirtualHost {
        name: "reviews.default.svc.cluster.local:9080".into(),
        domains: vec![
            "reviews.default.svc.cluster.local".into(),
            "reviews.default.svc.cluster.local:9080".into(),
        ],
        routes: vec![route],
        ..Default::default()
    };
    route_configuration(name, vec![vhost])
}

/// A route configuration sending everything for reviews to `cluster`.
pub(crate) fn route_config(name: &str, cluster: &str) -> Resource {
    route_config_matching(
        name,
        cluster,
        route_match::PathSpecifier::Prefix("/".into()),
    )
}

/// A route configuration whose only route matches on the invalid regex
/// `(`: NACKed at `virtual_hosts[0].routes[0].match.safe_regex.regex`.
pub(crate) fn bad_route_config(name: &str, cluster: &str) -> Resource {
    let regex = RegexMatcher {
        regex: "(".into(),
        ..Default::default()
    };
    route_config_matching(name, cluster, route_match::PathSpecifier::SafeRegex(regex))
}

/// A load assignment with one endpoint, `ip:9080`.
pub(crate) fn load_assignment(name: &str, ip: &str) -> Resource {
    let addr = format!("{ip}:9080").parse().expect("an IP address");
    load_assignment_at(name, &[addr])
}

/// A load assignment with endpoints at `addrs`, in one locality with
/// no name.
pub(crate) fn load_assignment_at(name: &str, addrs: &[SocketAddr]) -> Resource {
    locality_load_assignment(name, ("", ""), addrs)
}

fn lb_endpoint(addr: SocketAddr) -> LbEndpoint {
    host_endpoint(&addr.ip().to_string(), addr.port())
}

/// An endpoint at `host` (an IP address, or a DNS name for LOGICAL_DNS)
/// and `port`.
fn host_endpoint(host: &str, port: u16) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
            address: Some(Address {
                address: Some(address::Address::SocketAddress(SocketAddress {
                    address: host.into(),
                    port_specifier: Some(socket_address::PortSpecifier::PortValue(port.into())),
                    ..Default::default()
                })),
            }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A LOGICAL_DNS cluster resolving `host:port` (gRFC A37).
pub(crate) fn logical_dns_cluster(name: &str, host: &str, port: u16) -> Resource {
    let cluster = Cluster {
        name: name.into(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::LogicalDns as i32,
        )),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: name.into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![host_endpoint(host, port)],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    resource(name, any(&cluster))
}

/// An EDS cluster as istiod's `grpc` generator writes it: round robin,
/// its load assignment named after it and asked for over ADS (gRPC NACKs
/// an EDS cluster without `eds_cluster_config.eds_config`).
pub(crate) fn eds_cluster(name: &str) -> Resource {
    let cluster = Cluster {
        name: name.into(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(ads_source()),
            service_name: name.into(),
        }),
        lb_policy: cluster::LbPolicy::RoundRobin as i32,
        ..Default::default()
    };
    resource(name, any(&cluster))
}

/// A load assignment as istiod writes it: the endpoints at `addrs`,
/// `HEALTHY` and of weight 1, in one locality `region/zone` whose weight
/// is their number (gRPC leaves out a locality without a weight).
pub(crate) fn locality_load_assignment(
    name: &str,
    (region, zone): (&str, &str),
    addrs: &[SocketAddr],
) -> Resource {
    let lb_endpoints = addrs
        .iter()
        .map(|a| LbEndpoint {
            health_status: HealthStatus::Healthy as i32,
            load_balancing_weight: Some(UInt32Value { value: 1 }),
            ..lb_endpoint(*a)
        })
        .collect();
    let weight = u32::try_from(addrs.len()).expect("a few endpoints");
    let cla = ClusterLoadAssignment {
        cluster_name: name.into(),
        endpoints: vec![LocalityLbEndpoints {
            locality: Some(Locality {
                region: region.into(),
                zone: zone.into(),
                sub_zone: String::new(),
            }),
            lb_endpoints,
            load_balancing_weight: Some(UInt32Value { value: weight }),
            ..Default::default()
        }],
        ..Default::default()
    };
    resource(name, any(&cla))
}

/// A route configuration with one virtual host for `domains`, splitting
/// every request over `clusters` by weight.
pub(crate) fn weighted_route_config(
    name: &str,
    domains: &[&str],
    clusters: &[(&str, u32)],
) -> Resource {
    split_route_config(name, name, domains, split(clusters))
}

/// A route configuration as istiod writes one for the service port `name`
/// (`host:port`): one virtual host of that name for `domains`, one route
/// splitting every request over `clusters` by weight, with Istio's default
/// retries and no timeout.
pub(crate) fn istio_route_config(
    name: &str,
    domains: &[&str],
    clusters: &[(&str, u32)],
) -> Resource {
    let action = RouteAction {
        timeout: Some(seconds(0)),
        retry_policy: Some(istio_retries()),
        max_stream_duration: Some(route_action::MaxStreamDuration {
            max_stream_duration: Some(seconds(0)),
            grpc_timeout_header_max: Some(seconds(0)),
            grpc_timeout_header_offset: None,
        }),
        ..split(clusters)
    };
    split_route_config(name, name, domains, action)
}

/// Istio's default retry policy, as istiod writes it on every route.
fn istio_retries() -> RetryPolicy {
    RetryPolicy {
        retry_on: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
            .into(),
        num_retries: Some(UInt32Value { value: 2 }),
        retry_host_predicate: vec![retry_policy::RetryHostPredicate {
            name: "envoy.retry_host_predicates.previous_hosts".into(),
            config_type: None,
        }],
        host_selection_retry_max_attempts: 5,
        retriable_status_codes: vec![503],
        ..Default::default()
    }
}

fn seconds(seconds: i64) -> Duration {
    Duration { seconds, nanos: 0 }
}

/// A route action splitting over `clusters` by weight.
fn split(clusters: &[(&str, u32)]) -> RouteAction {
    let clusters = clusters
        .iter()
        .map(|(name, weight)| weighted_cluster::ClusterWeight {
            name: (*name).into(),
            weight: Some(UInt32Value { value: *weight }),
            ..Default::default()
        })
        .collect();
    RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::WeightedClusters(
            WeightedCluster {
                clusters,
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

/// A route taking requests whose path starts with `prefix` to `action`.
fn prefix_route(prefix: &str, action: RouteAction) -> Route {
    Route {
        r#match: Some(RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::Prefix(prefix.into())),
            ..Default::default()
        }),
        action: Some(route::Action::Route(action)),
        ..Default::default()
    }
}

/// A route action to one cluster.
fn to_cluster(cluster: &str) -> RouteAction {
    RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.into())),
        ..Default::default()
    }
}

/// A route configuration of `virtual_hosts`.
fn route_configuration(name: &str, virtual_hosts: Vec<VirtualHost>) -> Resource {
    let rc = RouteConfiguration {
        name: name.into(),
        virtual_hosts,
        ..Default::default()
    };
    resource(name, any(&rc))
}

/// A route configuration with one virtual host, `vhost`, whose one route
/// takes every request (`/`) to `action`.
fn split_route_config(name: &str, vhost: &str, domains: &[&str], action: RouteAction) -> Resource {
    let vhost = VirtualHost {
        name: vhost.into(),
        domains: domains.iter().map(|d| (*d).into()).collect(),
        routes: vec![prefix_route("/", action)],
        ..Default::default()
    };
    route_configuration(name, vec![vhost])
}

/// A route configuration with one virtual host for `domains` whose
/// routes take each path prefix to its cluster, in order; with no
/// `domains`, a configuration with no virtual host at all.
pub(crate) fn route_config_by_prefix(
    name: &str,
    domains: &[&str],
    routes: &[(&str, &str)],
) -> Resource {
    let vhost = VirtualHost {
        name: name.into(),
        domains: domains.iter().map(|d| (*d).into()).collect(),
        routes: routes
            .iter()
            .map(|(prefix, cluster)| prefix_route(prefix, to_cluster(cluster)))
            .collect(),
        ..Default::default()
    };
    let virtual_hosts = if domains.is_empty() {
        vec![]
    } else {
        vec![vhost]
    };
    route_configuration(name, virtual_hosts)
}

/// A route configuration with one virtual host per cluster, each
/// serving the cluster's name as its domain and sending everything there:
/// the shape of a large mesh's outbound routes.
pub(crate) fn route_config_per_cluster(name: &str, clusters: &[String]) -> Resource {
    let virtual_hosts = clusters
        .iter()
        .enumerate()
        .map(|(i, cluster)| VirtualHost {
            name: cluster.clone(),
            domains: vec![format!("svc-{i}.mesh.local")],
            routes: vec![prefix_route("/", to_cluster(cluster))],
            ..Default::default()
        })
        .collect();
    route_configuration(name, virtual_hosts)
}
