//! A server's inbound listeners, as istiod writes them, with the server's
//! [`Rbac`] filters (DENY, then ALLOW) before the router:
//!
//! - [`server_listener`], a proxyless gRPC server's (gRFC A36): asked for
//!   by name, [`SERVER_LISTENER_PREFIX`] and the address it listens on
//!   (the template Istio's bootstrap gives), on that address, with one
//!   filter chain over an inline route configuration whose one route only
//!   marks requests as not forwarded. With mutual TLS the chain requires a
//!   client certificate, both from gRPC's certificate provider instance
//!   `default` (certificate `default`, roots `ROOTCA`), as Istio's agent
//!   names them.
//! - [`sidecar_inbound`], an Envoy sidecar's for one port: the listener
//!   `IP_PORT`, inbound, routing everything to the static cluster
//!   `inbound|PORT||` of the application's endpoint, in plain text, mutual
//!   TLS, or both side by side ([`InboundTls`]).

use std::net::SocketAddr;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener, filter,
};
use envoy_types::pb::envoy::config::route::v3::{
    NonForwardingAction, Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route,
    route_action, route_match,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager::RouteSpecifier,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateProviderPluginInstance, CertificateValidationContext, CommonTlsContext,
    DownstreamTlsContext, common_tls_context,
};
use envoy_types::pb::google::protobuf::BoolValue;
use mesh_core::policy::ServerTls;
use mesh_core::security::{MtlsMode, Rbac};
use prost::Name;

use super::error::{Refused, TranslateError};
use super::rbac::rbac_filter;
use super::{
    any, connection_manager_filter, downstream_tls_socket, router_filter,
    server_tls_transport_socket, socket_address, static_cluster, tls_inspector,
};

/// The prefix of a proxyless server's inbound listener's name.
pub const SERVER_LISTENER_PREFIX: &str = "xds.istio.io/grpc/lds/inbound/";

/// The address a proxyless server's listener `name` is for: what follows
/// [`SERVER_LISTENER_PREFIX`]; `None` for other names.
///
/// ```
/// use mesh_xds::translate;
///
/// let addr = translate::server_listener_address("xds.istio.io/grpc/lds/inbound/0.0.0.0:50051");
/// assert_eq!(addr, Some("0.0.0.0:50051".parse().unwrap()));
/// assert_eq!(translate::server_listener_address("reviews:9080"), None);
/// ```
pub fn server_listener_address(name: &str) -> Option<SocketAddr> {
    name.strip_prefix(SERVER_LISTENER_PREFIX)?.parse().ok()
}

/// The proxyless server listener `name` on `addr`, enforcing `rbac`,
/// taking connections as `mode` says: mutual TLS only (`STRICT`), plain
/// text only (`DISABLE`), or both, a chain for each told apart by their
/// transport protocol (`PERMISSIVE`, for servers that read it from a
/// connection's first byte, as the mesh's do).
///
/// ```
/// use mesh_core::security::MtlsMode;
/// use mesh_xds::translate;
///
/// let name = "xds.istio.io/grpc/lds/inbound/127.0.0.1:50051";
/// let l = translate::server_listener(name, "127.0.0.1:50051".parse()?, &[], MtlsMode::Strict)?;
/// assert_eq!(l.filter_chains[0].name, "inbound-mtls");
/// assert!(l.filter_chains[0].transport_socket.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn server_listener(
    name: &str,
    addr: SocketAddr,
    rbac: &[Rbac],
    mode: MtlsMode,
) -> Result<Listener, TranslateError> {
    let action = route::Action::NonForwardingAction(NonForwardingAction::default());
    let routes = catch_all("inbound", "inbound", action);
    let manager =
        connection_manager("", routes, rbac).map_err(|e| e.at(Listener::NAME, name, ""))?;
    let chain = |mtls: bool| {
        let suffix = if mtls { "mtls" } else { "plaintext" };
        FilterChain {
            name: format!("inbound-{suffix}"),
            filters: vec![Filter {
                name: format!("inbound-hcm{suffix}"),
                config_type: Some(filter::ConfigType::TypedConfig(any(&manager))),
            }],
            transport_socket: mtls.then(|| downstream_tls_socket(&provider_tls())),
            ..Default::default()
        }
    };
    let matching = |mut chain: FilterChain, transport: &str| {
        chain.filter_chain_match = Some(FilterChainMatch {
            transport_protocol: transport.to_owned(),
            ..Default::default()
        });
        chain
    };
    let filter_chains = match mode {
        MtlsMode::Strict => vec![chain(true)],
        MtlsMode::Disable => vec![chain(false)],
        MtlsMode::Permissive => vec![
            matching(chain(true), "tls"),
            matching(chain(false), "raw_buffer"),
        ],
    };
    Ok(Listener {
        name: name.to_owned(),
        address: Some(socket_address(addr)),
        filter_chains,
        ..Default::default()
    })
}

/// How a sidecar's inbound port takes connections.
#[derive(Clone, Copy, Debug)]
pub enum InboundTls<'a> {
    /// Plain text only.
    Plaintext,
    /// Mutual TLS only, terminated with these certificates.
    Strict(&'a ServerTls),
    /// Mutual TLS with these certificates and plain text side by side, the
    /// TLS inspector telling them apart.
    Permissive(&'a ServerTls),
}

/// An Envoy sidecar's inbound port: its listener and the cluster it
/// routes to.
#[derive(Clone, Debug)]
pub struct SidecarInbound {
    /// The listener `IP_PORT` on the port's address.
    pub listener: Listener,
    /// The static cluster `inbound|PORT||` of the application's endpoint.
    pub cluster: Cluster,
}

/// The inbound side of an Envoy sidecar's port on `addr`, enforcing `rbac`
/// before sending requests to the application at `endpoint`.
///
/// ```
/// use mesh_xds::translate::{self, InboundTls};
///
/// let inbound = translate::sidecar_inbound("10.0.0.2:9080".parse()?, "127.0.0.1:8080".parse()?, &[], InboundTls::Plaintext)?;
/// assert_eq!(inbound.listener.name, "10.0.0.2_9080");
/// assert_eq!(inbound.cluster.name, "inbound|9080||");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn sidecar_inbound(
    addr: SocketAddr,
    endpoint: SocketAddr,
    rbac: &[Rbac],
    tls: InboundTls<'_>,
) -> Result<SidecarInbound, TranslateError> {
    let port = addr.port();
    let cluster_name = format!("inbound|{port}||");
    let name = format!("{}_{port}", addr.ip());
    let action = route::Action::Route(RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
            cluster_name.clone(),
        )),
        ..Default::default()
    });
    let routes = catch_all(&cluster_name, &format!("inbound|http|{port}"), action);
    let manager = connection_manager(&format!("inbound_{name}"), routes, rbac)
        .map_err(|e| e.at(Listener::NAME, &name, ""))?;
    let chain = |tls: Option<&ServerTls>, transport: &str| FilterChain {
        filter_chain_match: (!transport.is_empty()).then(|| FilterChainMatch {
            transport_protocol: transport.to_owned(),
            ..Default::default()
        }),
        filters: vec![connection_manager_filter(&manager)],
        transport_socket: tls.map(server_tls_transport_socket),
        ..Default::default()
    };
    let (filter_chains, inspect) = match tls {
        InboundTls::Plaintext => (vec![chain(None, "")], false),
        InboundTls::Strict(tls) => (vec![chain(Some(tls), "")], false),
        InboundTls::Permissive(tls) => (
            vec![chain(Some(tls), "tls"), chain(None, "raw_buffer")],
            true,
        ),
    };
    let listener = Listener {
        name: name.clone(),
        address: Some(socket_address(addr)),
        filter_chains,
        listener_filters: inspect.then(tls_inspector).into_iter().collect(),
        traffic_direction: TrafficDirection::Inbound as i32,
        ..Default::default()
    };
    Ok(SidecarInbound {
        listener,
        cluster: static_cluster(&cluster_name, endpoint),
    })
}

/// The route configuration `name` whose one virtual host `vhost` takes
/// every request by `action`.
fn catch_all(name: &str, vhost: &str, action: route::Action) -> RouteConfiguration {
    RouteConfiguration {
        name: name.to_owned(),
        virtual_hosts: vec![VirtualHost {
            name: vhost.to_owned(),
            domains: vec!["*".into()],
            routes: vec![Route {
                r#match: Some(RouteMatch {
                    path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
                    ..Default::default()
                }),
                action: Some(action),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The RBAC filters, then the router, over the inline `routes`.
fn connection_manager(
    stat_prefix: &str,
    routes: RouteConfiguration,
    rbac: &[Rbac],
) -> Result<HttpConnectionManager, Refused> {
    let mut http_filters = rbac
        .iter()
        .map(rbac_filter)
        .collect::<Result<Vec<_>, _>>()?;
    http_filters.push(router_filter());
    Ok(HttpConnectionManager {
        stat_prefix: stat_prefix.to_owned(),
        route_specifier: Some(RouteSpecifier::RouteConfig(routes)),
        http_filters,
        ..Default::default()
    })
}

/// A server TLS context requiring a client certificate, both from gRPC's
/// certificate provider instance `default`.
fn provider_tls() -> DownstreamTlsContext {
    let instance = |certificate_name: &str| CertificateProviderPluginInstance {
        instance_name: "default".into(),
        certificate_name: certificate_name.into(),
    };
    DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_provider_instance: Some(instance("default")),
            validation_context_type: Some(
                common_tls_context::ValidationContextType::ValidationContext(
                    CertificateValidationContext {
                        ca_certificate_provider_instance: Some(instance("ROOTCA")),
                        ..Default::default()
                    },
                ),
            ),
            ..Default::default()
        }),
        require_client_certificate: Some(BoolValue { value: true }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::address;
    use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
    use mesh_core::route::StringMatch;
    use mesh_core::security::{Principal, RbacAction, RbacPolicy, ValueMatch};

    use super::*;

    #[test]
    fn a_server_listener_is_on_the_address_it_is_named_for() {
        let name = format!("{SERVER_LISTENER_PREFIX}127.0.0.1:50051");
        let addr = server_listener_address(&name).unwrap();
        let l = server_listener(&name, addr, &[], MtlsMode::Disable).unwrap();
        assert_eq!(l.name, name);
        let Some(address::Address::SocketAddress(a)) = l.address.unwrap().address else {
            panic!()
        };
        assert_eq!(a.address, "127.0.0.1");
        assert_eq!(a.port_specifier, Some(PortSpecifier::PortValue(50051)));
        assert_eq!(l.filter_chains[0].name, "inbound-plaintext");
        assert!(l.filter_chains[0].transport_socket.is_none());
        assert_eq!(
            server_listener_address(&format!("{SERVER_LISTENER_PREFIX}reviews")),
            None
        );
    }

    #[test]
    fn a_regex_that_would_not_read_back_is_refused_naming_the_policy() {
        let unanchored = regex::Regex::new("spiffe://.*").unwrap();
        let policy = RbacPolicy {
            permissions: vec![mesh_core::security::Permission::Any],
            principals: vec![Principal::Not(Box::new(Principal::Authenticated(Some(
                ValueMatch {
                    kind: StringMatch::Regex(unanchored),
                    ignore_case: false,
                },
            ))))],
        };
        let rbac = Rbac {
            action: RbacAction::Deny,
            policies: vec![("default-p-0".into(), policy)],
        };
        let e = server_listener(
            "inbound",
            "127.0.0.1:1".parse().unwrap(),
            &[rbac],
            MtlsMode::Strict,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("Listener \"inbound\": "), "{e}");
        assert!(
            e.contains(
                "envoy.filters.http.rbac.DENY.policies[\"default-p-0\"].principals[0].not.authenticated"
            ),
            "{e}"
        );
    }
}
