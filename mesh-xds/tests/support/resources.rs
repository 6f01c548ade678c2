//! xDS resources shaped as istiod writes them for the reviews service.

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ConfigSource, SocketAddress, address,
    config_source::ConfigSourceSpecifier, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::listener::v3::{ApiListener, Listener};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, WeightedCluster, route,
    route_action, route_match, weighted_cluster,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager::RouteSpecifier,
    http_filter::ConfigType,
};
use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatcher;
use envoy_types::pb::google::protobuf::Any;
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

/// A client listener: HCM on an api_listener, routes by RDS over ADS, the
/// router filter.
pub(crate) fn listener(name: &str, route_config_name: &str) -> Resource {
    let hcm = HttpConnectionManager {
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            config_source: Some(ConfigSource {
                config_source_specifier: Some(ConfigSourceSpecifier::Ads(
                    AggregatedConfigSource {},
                )),
                ..Default::default()
            }),
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
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.into())),
            ..Default::default()
        })),
        ..Default::default()
    };
    let rc = RouteConfiguration {
        name: name.into(),
        virtual_hosts: vec![VirtualHost {
            name: "reviews.default.svc.cluster.local:9080".into(),
            domains: vec![
                "reviews.default.svc.cluster.local".into(),
                "reviews.default.svc.cluster.local:9080".into(),
            ],
            routes: vec![route],
            ..Default::default()
        }],
        ..Default::default()
    };
    resource(name, any(&rc))
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

/// An EDS cluster, its load assignment named after it.
pub(crate) fn eds_cluster(name: &str) -> Resource {
    let cluster = Cluster {
        name: name.into(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        ..Default::default()
    };
    resource(name, any(&cluster))
}

/// A load assignment with one endpoint, `ip:9080`.
pub(crate) fn load_assignment(name: &str, ip: &str) -> Resource {
    let addr = format!("{ip}:9080").parse().expect("an IP address");
    load_assignment_at(name, &[addr])
}

/// A load assignment with endpoints at `addrs`, all healthy.
pub(crate) fn load_assignment_at(name: &str, addrs: &[SocketAddr]) -> Resource {
    let lb_endpoints = addrs
        .iter()
        .map(|addr| LbEndpoint {
            host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                address: Some(Address {
                    address: Some(address::Address::SocketAddress(SocketAddress {
                        address: addr.ip().to_string(),
                        port_specifier: Some(socket_address::PortSpecifier::PortValue(
                            addr.port().into(),
                        )),
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            })),
            ..Default::default()
        })
        .collect();
    let cla = ClusterLoadAssignment {
        cluster_name: name.into(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints,
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
    let clusters = clusters
        .iter()
        .map(|(name, weight)| weighted_cluster::ClusterWeight {
            name: (*name).into(),
            weight: Some(envoy_types::pb::google::protobuf::UInt32Value { value: *weight }),
            ..Default::default()
        })
        .collect();
    let route = Route {
        r#match: Some(RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
            ..Default::default()
        }),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::WeightedClusters(
                WeightedCluster {
                    clusters,
                    ..Default::default()
                },
            )),
            ..Default::default()
        })),
        ..Default::default()
    };
    let rc = RouteConfiguration {
        name: name.into(),
        virtual_hosts: vec![VirtualHost {
            name: name.into(),
            domains: domains.iter().map(|d| (*d).into()).collect(),
            routes: vec![route],
            ..Default::default()
        }],
        ..Default::default()
    };
    resource(name, any(&rc))
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
            routes: vec![Route {
                r#match: Some(RouteMatch {
                    path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
                    ..Default::default()
                }),
                action: Some(route::Action::Route(RouteAction {
                    cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                        cluster.clone(),
                    )),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    let rc = RouteConfiguration {
        name: name.into(),
        virtual_hosts,
        ..Default::default()
    };
    resource(name, any(&rc))
}
