//! xDS protos shaped as istiod writes them for the reviews service.

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, address, socket_address};
use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ConfigSource, config_source::ConfigSourceSpecifier,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::listener::v3::{ApiListener, Listener};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route, route_action,
    route_match,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager::RouteSpecifier,
    http_filter::ConfigType,
};
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
use envoy_types::pb::google::protobuf::{Any, Duration as PbDuration};
use prost::{Message, Name};

use super::super::ResourceType;

pub(super) const LISTENER: &str = "reviews.default.svc.cluster.local:9080";
pub(super) const ROUTES: &str = "reviews.default.svc.cluster.local:9080";
pub(super) const V1: &str = "outbound|9080|v1|reviews.default.svc.cluster.local";
pub(super) const V2: &str = "outbound|9080|v2|reviews.default.svc.cluster.local";
pub(super) const V3: &str = "outbound|9080|v3|reviews.default.svc.cluster.local";

pub(super) fn any<T: Message + Name>(m: &T) -> Any {
    Any {
        type_url: T::type_url(),
        value: m.encode_to_vec(),
    }
}

pub(super) fn listener(name: &str, route_config_name: &str) -> Any {
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
    any(&Listener {
        name: name.into(),
        api_listener: Some(ApiListener {
            api_listener: Some(any(&hcm)),
        }),
        ..Default::default()
    })
}

/// A route configuration sending `/i` to the i-th cluster; an empty
/// cluster name makes it invalid.
pub(super) fn route_config(name: &str, clusters: &[&str]) -> Any {
    let routes = clusters
        .iter()
        .enumerate()
        .map(|(i, c)| Route {
            r#match: Some(RouteMatch {
                path_specifier: Some(route_match::PathSpecifier::Prefix(format!("/{i}"))),
                ..Default::default()
            }),
            action: Some(route::Action::Route(RouteAction {
                cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(c.to_string())),
                ..Default::default()
            })),
            ..Default::default()
        })
        .collect();
    any(&RouteConfiguration {
        name: name.into(),
        virtual_hosts: vec![VirtualHost {
            name: "reviews".into(),
            domains: vec!["reviews.default.svc.cluster.local".into()],
            routes,
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// An EDS cluster whose load assignment, named after it, comes over ADS.
pub(super) fn eds_cluster(name: &str) -> Cluster {
    Cluster {
        name: name.into(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(ConfigSource {
                config_source_specifier: Some(ConfigSourceSpecifier::Ads(
                    AggregatedConfigSource {},
                )),
                ..Default::default()
            }),
            service_name: String::new(),
        }),
        ..Default::default()
    }
}

pub(super) fn good_cluster(name: &str) -> Any {
    any(&eds_cluster(name))
}

/// A cluster NACKed for its zero connect timeout.
pub(super) fn bad_cluster(name: &str) -> Any {
    any(&Cluster {
        connect_timeout: Some(PbDuration {
            seconds: 0,
            nanos: 0,
        }),
        ..eds_cluster(name)
    })
}

pub(super) fn load_assignment(name: &str, ip: &str) -> Any {
    any(&ClusterLoadAssignment {
        cluster_name: name.into(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: vec![LbEndpoint {
                host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                    address: Some(Address {
                        address: Some(address::Address::SocketAddress(SocketAddress {
                            address: ip.into(),
                            port_specifier: Some(socket_address::PortSpecifier::PortValue(9080)),
                            ..Default::default()
                        })),
                    }),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            load_balancing_weight: Some(envoy_types::pb::google::protobuf::UInt32Value {
                value: 1,
            }),
            ..Default::default()
        }],
        ..Default::default()
    })
}

pub(super) fn response(
    kind: ResourceType,
    version: &str,
    nonce: &str,
    resources: Vec<Any>,
) -> DiscoveryResponse {
    DiscoveryResponse {
        version_info: version.into(),
        resources,
        type_url: kind.type_url().into(),
        nonce: nonce.into(),
        ..Default::default()
    }
}
