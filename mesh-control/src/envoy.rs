//! What an Envoy sidecar is served, in istiod's shape for Envoy: every
//! service it can see, as listeners with filter chains rather than API
//! listeners.
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
//! Only HTTP ports (Istio's `http`, `http2`, `grpc`, … protocols) are
//! served; TCP proxying is not.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
use envoy_types::pb::google::protobuf::BoolValue;
use mesh_core::MeshConfig;
use mesh_core::registry::Registry;
use mesh_xds::translate;

use crate::assemble::{Assembly, BuildError, ByType};
use crate::node::NodeClass;

/// The resources of an Envoy sidecar `node` under `config` (converted for
/// it) and `registry`.
pub fn sidecar(
    node: &NodeClass,
    config: &MeshConfig,
    registry: &Registry,
) -> Result<ByType, BuildError> {
    let ip = node.address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let mut assembly = Assembly::default();
    let mut by_port: BTreeMap<u16, Vec<VirtualHost>> = BTreeMap::new();
    for service in registry.services() {
        let host = service.hostname.as_str();
        if host.starts_with('*') {
            continue;
        }
        for port in service.ports.iter().filter(|p| p.protocol.is_http()) {
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
        let listener = format!("{ip}_{port}");
        let l = translate::envoy_listener(
            &listener,
            SocketAddr::new(ip, port),
            &name,
            &format!("outbound_{listener}"),
        );
        assembly.add(&listener, &l);
    }
    assembly.finish(config, registry)
}
