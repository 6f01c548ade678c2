//! Client listeners as LDS, in istiod's shapes: for a proxyless client an
//! API listener named as the client asked; for Envoy a listener on an
//! address with one filter chain. Either way an `HttpConnectionManager`
//! fetches its routes over RDS from the same ADS stream and runs the
//! fault filter, then the router.

use std::net::SocketAddr;

use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, TrafficDirection, address};
use envoy_types::pb::envoy::config::listener::v3::{
    ApiListener, Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter, filter,
    listener_filter,
};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager::RouteSpecifier,
    http_filter::ConfigType,
};

use mesh_core::gateway::GatewayPort;
use mesh_core::policy::ServerTls;

use super::{FAULT_FILTER, ads, any, server_tls_transport_socket};

/// The router filter's name.
const ROUTER_FILTER: &str = "envoy.filters.http.router";

/// The listener `name` (the target as the client asked for it, such as
/// `reviews.default.svc.cluster.local:9080` or `reviews:9080`), routed by
/// the RDS resource `route_config_name`.
///
/// ```
/// use mesh_xds::resource::{FilterKind, RouteSource, XdsListener};
/// use mesh_xds::translate;
///
/// let l = translate::api_listener("reviews:9080", "outbound|9080||reviews.default.svc.cluster.local");
/// let back = XdsListener::try_from(&l)?;
/// assert!(matches!(back.routes, RouteSource::Rds { .. }));
/// assert_eq!(back.http_filters.last().map(|f| &f.kind), Some(&FilterKind::Router));
/// # Ok::<(), mesh_xds::ResourceError>(())
/// ```
pub fn api_listener(name: &str, route_config_name: &str) -> Listener {
    Listener {
        name: name.to_owned(),
        api_listener: Some(ApiListener {
            api_listener: Some(any(&connection_manager("", route_config_name))),
        }),
        ..Default::default()
    }
}

/// The API listener [`api_listener`] writes, carrying `addr` (the
/// service's virtual IP and port) as its address, as istiod writes it;
/// gRPC ignores it.
pub fn api_listener_on(name: &str, route_config_name: &str, addr: SocketAddr) -> Listener {
    Listener {
        address: Some(socket_address(addr)),
        ..api_listener(name, route_config_name)
    }
}

/// The Envoy listener `name` (istiod writes `0.0.0.0_9080` for a sidecar's
/// outbound port, `0.0.0.0_8080` for a gateway's server) on `addr`, whose
/// one filter chain routes HTTP by the RDS resource `route_config_name`;
/// its statistics are prefixed `stat_prefix`.
///
/// ```
/// use mesh_xds::translate;
///
/// let l = translate::envoy_listener("127.0.0.1_9080", "127.0.0.1:9080".parse()?, "9080", "outbound_127.0.0.1_9080");
/// assert_eq!(l.filter_chains.len(), 1);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn envoy_listener(
    name: &str,
    addr: SocketAddr,
    route_config_name: &str,
    stat_prefix: &str,
) -> Listener {
    let chain = EnvoyChain {
        routes: route_config_name,
        server_names: &[],
        tls: None,
    };
    envoy_listener_chains(name, addr, stat_prefix, &[chain])
}

/// One filter chain of an Envoy listener: HTTP routed by the RDS resource
/// `routes`, for connections asking for one of `server_names` (SNI; any
/// when empty), terminating `tls` when given.
#[derive(Clone, Copy, Debug)]
pub struct EnvoyChain<'a> {
    /// The route configuration's name.
    pub routes: &'a str,
    /// The server names it is chosen by.
    pub server_names: &'a [String],
    /// The TLS it terminates; plain text when `None`.
    pub tls: Option<&'a ServerTls>,
}

/// The Envoy listener `name` on `addr` of the gateway port `port`, a
/// filter chain per server (see [`envoy_listener_chains`]).
pub fn gateway_listener(
    name: &str,
    addr: SocketAddr,
    stat_prefix: &str,
    port: &GatewayPort,
) -> Listener {
    let chains: Vec<EnvoyChain<'_>> = port
        .servers
        .iter()
        .map(|s| EnvoyChain {
            routes: &s.routes,
            server_names: &s.server_names,
            tls: s.tls.as_ref(),
        })
        .collect();
    envoy_listener_chains(name, addr, stat_prefix, &chains)
}

/// The Envoy listener `name` on `addr` with a filter chain per `chains`,
/// as istiod writes a gateway port with several servers; with TLS in any
/// of them, the TLS inspector reads the server name a client asks for.
///
/// ```
/// use mesh_core::policy::ServerTls;
/// use mesh_xds::translate::{self, EnvoyChain};
///
/// let tls = ServerTls { certificate_chain: "/c.pem".into(), private_key: "/k.pem".into(), ..ServerTls::default() };
/// let names = ["app.example.com".to_owned()];
/// let chain = EnvoyChain { routes: "https.443.https.edge.default", server_names: &names, tls: Some(&tls) };
/// let l = translate::envoy_listener_chains("0.0.0.0_443", "0.0.0.0:443".parse()?, "gateway", &[chain]);
/// assert_eq!(l.filter_chains[0].filter_chain_match.as_ref().unwrap().server_names, names);
/// assert_eq!(l.listener_filters[0].name, "envoy.filters.listener.tls_inspector");
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn envoy_listener_chains(
    name: &str,
    addr: SocketAddr,
    stat_prefix: &str,
    chains: &[EnvoyChain<'_>],
) -> Listener {
    let filter_chains = chains
        .iter()
        .map(|c| FilterChain {
            filter_chain_match: (!c.server_names.is_empty()).then(|| FilterChainMatch {
                server_names: c.server_names.to_vec(),
                ..Default::default()
            }),
            filters: vec![connection_manager_filter(&connection_manager(
                stat_prefix,
                c.routes,
            ))],
            transport_socket: c.tls.map(server_tls_transport_socket),
            ..Default::default()
        })
        .collect();
    let inspect = chains.iter().any(|c| c.tls.is_some());
    let listener_filters = inspect.then(tls_inspector).into_iter().collect();
    Listener {
        name: name.to_owned(),
        address: Some(socket_address(addr)),
        filter_chains,
        listener_filters,
        traffic_direction: TrafficDirection::Outbound as i32,
        ..Default::default()
    }
}

/// Envoy's TLS inspector, the listener filter that reads whether a
/// connection is TLS and the server name it asks for, which filter chains
/// match on.
pub fn tls_inspector() -> ListenerFilter {
    ListenerFilter {
        name: "envoy.filters.listener.tls_inspector".to_owned(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(any(
            &TlsInspector::default(),
        ))),
        ..Default::default()
    }
}

/// `addr` as an xDS `Address`.
pub fn socket_address(addr: SocketAddr) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: addr.ip().to_string(),
            port_specifier: Some(PortSpecifier::PortValue(u32::from(addr.port()))),
            ..Default::default()
        })),
    }
}

/// The network filter's name.
const HCM_FILTER: &str = "envoy.filters.network.http_connection_manager";

/// `manager` as the network filter of an Envoy filter chain.
pub fn connection_manager_filter(manager: &HttpConnectionManager) -> Filter {
    Filter {
        name: HCM_FILTER.to_owned(),
        config_type: Some(filter::ConfigType::TypedConfig(any(manager))),
    }
}

/// The router, the last HTTP filter of a connection manager.
pub fn router_filter() -> HttpFilter {
    HttpFilter {
        name: ROUTER_FILTER.to_owned(),
        config_type: Some(ConfigType::TypedConfig(any(&Router::default()))),
        ..Default::default()
    }
}

/// An `HttpConnectionManager` routing by RDS over ADS, with the fault
/// filter and the router.
fn connection_manager(stat_prefix: &str, route_config_name: &str) -> HttpConnectionManager {
    HttpConnectionManager {
        stat_prefix: stat_prefix.to_owned(),
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: route_config_name.to_owned(),
        })),
        http_filters: vec![
            HttpFilter {
                name: FAULT_FILTER.to_owned(),
                config_type: Some(ConfigType::TypedConfig(any(&HttpFault::default()))),
                ..Default::default()
            },
            router_filter(),
        ],
        ..Default::default()
    }
}
