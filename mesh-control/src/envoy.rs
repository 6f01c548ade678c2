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
//! - **A `Sidecar`** that applies to the node narrows that: its egress
//!   listeners reach only the hosts they select, on their port (or every
//!   port) and `bind` address (a route configuration `BIND_PORT` when
//!   that is not the node's own); its ingress listeners are the node's
//!   inbound side (see [`crate::sidecar_inbound`]): mutual TLS as
//!   PeerAuthentication says, AuthorizationPolicy as RBAC, then the
//!   workload at the listener's default endpoint. An ingress listener's
//!   address is not also an outbound one: no service is reached there,
//!   and an egress listener bound there is an error.
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
//! HTTPS terminated with a server's certificates, from files or a
//! Secret; a Secret's are sent by SDS, see [`gateway_secrets`]); TCP
//! proxying and TLS passthrough are not.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use envoy_types::pb::google::protobuf::Any;
use mesh_core::MeshConfig;
use mesh_core::gateway::GatewayPort;
use mesh_core::registry::Registry;
use mesh_core::route::VirtualHost;
use mesh_core::sidecar::{Egress, HostSelector, SidecarListeners};
use mesh_istio::Resources;
use mesh_xds::translate;

use crate::assemble::{Assembly, BuildError, ByType, routed};
use crate::node::NodeClass;
use crate::sidecar_inbound;

/// The resources of an Envoy sidecar `node` under `config` (converted for
/// it) and `registry`, with the ingress and egress listeners of its
/// `Sidecar`, if one applies, and the policies of `resources`.
pub fn sidecar(
    node: &NodeClass,
    config: &MeshConfig,
    registry: &Registry,
    resources: &Resources,
    listeners: Option<&SidecarListeners>,
) -> Result<ByType, BuildError> {
    let ip = bind_ip(node);
    let mut assembly = Assembly::new(node);
    let ingress = listeners.map_or(&[][..], |l| &l.ingress);
    for i in ingress {
        sidecar_inbound::add(&mut assembly, node, ip, i, resources)?;
    }
    // An ingress listener's address is not also an outbound one.
    let inbound: BTreeSet<SocketAddr> = ingress
        .iter()
        .map(|i| SocketAddr::new(i.bind.unwrap_or(ip), i.port))
        .collect();
    let everything = [Egress {
        port: None,
        bind: None,
        hosts: vec![HostSelector {
            namespace: None,
            host: "*".into(),
        }],
    }];
    let egress = match listeners {
        Some(l) if !l.egress.is_empty() => &l.egress[..],
        _ => &everything[..],
    };
    // The virtual hosts of each outbound listener; one whose egress
    // listener names its port has it even when it reaches no service
    // there, and a listener without a port leaves such ports alone.
    let mut by_addr: BTreeMap<SocketAddr, Vec<VirtualHost>> = egress
        .iter()
        .filter_map(|e| Some(SocketAddr::new(e.bind.unwrap_or(ip), e.port?)))
        .map(|addr| (addr, Vec::new()))
        .collect();
    if let Some(&addr) = by_addr.keys().find(|addr| inbound.contains(addr)) {
        return Err(BuildError::SharedAddress { addr });
    }
    let named = by_addr.keys().copied().collect::<BTreeSet<_>>();
    for e in egress {
        let bind = e.bind.unwrap_or(ip);
        for service in registry.services() {
            let host = service.hostname.as_str();
            if host.starts_with('*') || !e.selects(&service.namespace, host) {
                continue;
            }
            let ports = service.ports.iter().filter(|p| {
                p.protocol.is_http()
                    && e.port.is_none_or(|port| port == p.number)
                    && routed(config, host, p.number)
            });
            for port in ports {
                let addr = SocketAddr::new(bind, port.number);
                if inbound.contains(&addr) || (e.port.is_none() && named.contains(&addr)) {
                    continue;
                }
                let name = format!("{host}:{}", port.number);
                let ported = translate::service_routes(config, &name, host, port.number)?;
                assembly.add_clusters(&ported.clusters, host, port.number);
                let vhosts = by_addr.entry(addr).or_default();
                for vh in ported.virtual_hosts {
                    if !vhosts.iter().any(|v| v.name == vh.name) {
                        vhosts.push(vh);
                    }
                }
            }
        }
    }
    for (addr, virtual_hosts) in by_addr {
        // Named by port, as istiod names them; by address too when bound
        // elsewhere than the sidecar's own.
        let name = if addr.ip() == ip {
            addr.port().to_string()
        } else {
            format!("{}_{}", addr.ip(), addr.port())
        };
        assembly.add_route_configuration(&name, &virtual_hosts)?;
        add_listener(&mut assembly, addr, &name, "outbound");
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
    for port in ports {
        for server in &port.servers {
            assembly.add_gateway_routes(&server.routes, config, registry)?;
        }
        let name = format!("{ip}_{}", port.number);
        let addr = SocketAddr::new(ip, port.number);
        let l = translate::gateway_listener(&name, addr, &format!("gateway_{name}"), port);
        assembly.add(&name, &l);
    }
    assembly.finish(config, registry)
}

/// The SDS secrets of `ports`' servers whose certificates came from a
/// Kubernetes Secret (see [`translate::server_tls_secrets`]), each once:
/// what a gateway allowed them is served beside its listeners.
pub fn gateway_secrets(ports: &[GatewayPort]) -> Vec<(String, Any)> {
    let secrets: BTreeMap<String, Any> = ports
        .iter()
        .flat_map(|p| &p.servers)
        .filter_map(|s| s.tls.as_ref())
        .flat_map(translate::server_tls_secrets)
        .map(|secret| translate::entry(&secret.name, &secret))
        .collect();
    secrets.into_iter().collect()
}

/// The IP an Envoy node's listeners bind: its own, else every address.
fn bind_ip(node: &NodeClass) -> IpAddr {
    node.address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Adds the listener `IP_PORT` on `addr` routed by `routes`.
fn add_listener(assembly: &mut Assembly, addr: SocketAddr, routes: &str, direction: &str) {
    let name = format!("{}_{}", addr.ip(), addr.port());
    let stat_prefix = format!("{direction}_{name}");
    let l = translate::envoy_listener(&name, addr, routes, &stat_prefix);
    assembly.add(&name, &l);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Shape;
    use mesh_core::sidecar::Ingress;

    #[test]
    fn an_egress_listener_on_an_ingress_address_is_an_error() {
        let node = NodeClass {
            shape: Shape::Sidecar,
            namespace: "default".into(),
            cluster_domain: "cluster.local".into(),
            labels: Default::default(),
            address: Some([127, 0, 0, 2].into()),
            locality: Default::default(),
            identity: None,
            cert_files: None,
            mesh: false,
        };
        // The Sidecar binds one on the node's address by default and the
        // other there by name: only the node tells they meet.
        let listeners = SidecarListeners {
            ingress: vec![Ingress {
                port: 9080,
                name: "http".into(),
                bind: None,
                endpoint: "127.0.0.1:8080".parse().unwrap(),
            }],
            egress: vec![Egress {
                port: Some(9080),
                bind: Some([127, 0, 0, 2].into()),
                hosts: vec![HostSelector {
                    namespace: None,
                    host: "*".into(),
                }],
            }],
        };
        let e = sidecar(
            &node,
            &MeshConfig::default(),
            &Registry::default(),
            &Resources::default(),
            Some(&listeners),
        )
        .unwrap_err();
        assert!(
            matches!(e, BuildError::SharedAddress { addr } if addr == "127.0.0.2:9080".parse().unwrap()),
            "{e}"
        );
    }
}
