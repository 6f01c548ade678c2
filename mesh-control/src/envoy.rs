//! What Envoy is served, in istiod's shapes for Envoy: listeners with
//! filter chains rather than API listeners.
//!
//! A **sidecar** gets every service it can see:
//!
//! - **Clusters and endpoints**: those the routes of every HTTP service
//!   port send to (`outbound|9080|v1|reviews.default.svc.cluster.local`),
//!   with EDS.
//! - **Routes**: one route configuration per port, named by the port
//!   (`9080`), holding the virtual host of every service on it, as istiod
//!   names a sidecar's outbound routes.
//! - **Listeners**: one per port, `IP_PORT` on the node's IP. istiod binds
//!   `0.0.0.0_PORT` without a socket and relies on iptables to capture
//!   traffic; with no iptables (a laptop, CI) the listener binds the port
//!   on the sidecar's own IP, as Istio's `Sidecar` egress listeners do
//!   with `captureMode: NONE`.
//!
//! A **gateway** (`router~…`) gets the servers of the `Gateway`s whose
//! selector its labels match: a listener `IP_PORT` per server port, bound
//! on its IP, with a filter chain per server, routed by the server's route
//! configuration (`http.PORT` for the port's plain-text servers,
//! `https.PORT.NAME.GATEWAY.NAMESPACE` for one terminating TLS, chosen by
//! the server name a client asks for), made of the VirtualServices bound
//! to those Gateways; and the clusters those routes send to. A
//! destination without a port takes its service's one port.
//!
//! Only HTTP is served (Istio's `http`, `http2`, `grpc`, … protocols, and
//! HTTPS terminated with a server's certificate files); TCP proxying and
//! TLS passthrough are not.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
use envoy_types::pb::google::protobuf::BoolValue;
use mesh_core::MeshConfig;
use mesh_core::gateway::GatewayPort;
use mesh_core::registry::Registry;
use mesh_core::route::ClusterName;
use mesh_xds::translate::{self, EnvoyChain};

use crate::assemble::{Assembly, BuildError, ByType, routed};
use crate::node::NodeClass;

/// The resources of an Envoy sidecar `node` under `config` (converted for
/// it) and `registry`.
pub fn sidecar(
    node: &NodeClass,
    config: &MeshConfig,
    registry: &Registry,
) -> Result<ByType, BuildError> {
    let ip = bind_ip(node);
    let mut assembly = Assembly::new(node);
    let mut by_port: BTreeMap<u16, Vec<VirtualHost>> = BTreeMap::new();
    for service in registry.services() {
        let host = service.hostname.as_str();
        if host.starts_with('*') {
            continue;
        }
        let ports = service.ports.iter().filter(|p| p.protocol.is_http());
        for port in ports.filter(|p| routed(config, host, p.number)) {
            let name = format!("{host}:{}", port.number);
            let served = translate::service_port(config, &name, host, port.number)?;
            assembly.add_clusters(&served.clusters, host, port.number);
            by_port
                .entry(port.number)
                .or_default()
                .extend(served.route_configuration.virtual_hosts);
        }
    }
    for (port, virtual_hosts) in by_port {
        let name = port.to_string();
        let routes = RouteConfiguration {
            name: name.clone(),
            virtual_hosts,
            // Clusters arrive by CDS: Envoy must not refuse routes to ones
            // it has not seen yet.
            validate_clusters: Some(BoolValue { value: false }),
            ..Default::default()
        };
        assembly.add(&name, &routes);
        add_listener(&mut assembly, ip, port, &name, "outbound");
    }
    assembly.finish(config, registry)
}

/// The resources of an Envoy gateway `node` serving `ports` (its
/// Gateways' servers), under `config` (converted for it, with a route
/// table per server) and `registry`.
pub fn gateway(
    node: &NodeClass,
    ports: &[GatewayPort],
    config: &MeshConfig,
    registry: &Registry,
) -> Result<ByType, BuildError> {
    let ip = bind_ip(node);
    let mut assembly = Assembly::new(node);
    // A destination written without a port takes its service's only port.
    let port_of = |c: &ClusterName| {
        let host = c.as_str().rsplit('|').next()?;
        match registry.service(host)?.ports.as_slice() {
            [only] => Some(only.number),
            _ => None,
        }
    };
    for port in ports {
        for server in &port.servers {
            let name = &server.routes;
            let vhosts = config
                .listener(name)
                .map(|t| t.virtual_hosts().to_vec())
                .unwrap_or_default();
            let ported = translate::port_routes(config, name, vhosts, port_of)?;
            let mut routes = ported.route_configuration;
            routes.validate_clusters = Some(BoolValue { value: false });
            assembly.add(name, &routes);
            for c in &ported.clusters {
                if let Some((host, port)) = service_port_of(&c.name) {
                    assembly.add_clusters(std::slice::from_ref(c), host, port);
                }
            }
        }
        let chains: Vec<EnvoyChain<'_>> = port
            .servers
            .iter()
            .map(|s| EnvoyChain {
                routes: &s.routes,
                server_names: &s.server_names,
                tls: s.tls.as_ref(),
            })
            .collect();
        let name = format!("{ip}_{}", port.number);
        let addr = SocketAddr::new(ip, port.number);
        let l = translate::envoy_listener_chains(&name, addr, &format!("gateway_{name}"), &chains);
        assembly.add(&name, &l);
    }
    assembly.finish(config, registry)
}

/// The IP an Envoy node's listeners bind: its own, else every address.
fn bind_ip(node: &NodeClass) -> IpAddr {
    node.address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Adds the listener `IP_PORT` routed by `routes`.
fn add_listener(assembly: &mut Assembly, ip: IpAddr, port: u16, routes: &str, direction: &str) {
    let name = format!("{ip}_{port}");
    let stat_prefix = format!("{direction}_{name}");
    let l = translate::envoy_listener(&name, SocketAddr::new(ip, port), routes, &stat_prefix);
    assembly.add(&name, &l);
}

/// The service and port of a cluster named `outbound|PORT|SUBSET|HOST`.
fn service_port_of(name: &str) -> Option<(&str, u16)> {
    let mut parts = name.split('|');
    let (_, port, _, host) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    Some((host, port.parse().ok()?))
}
