//! What a proxyless node is served, as istiod's `grpc` generator serves
//! it: for each listener name it asked for, the listeners of the service
//! ports the name stands for, their route configurations, the clusters
//! those route to and the clusters' endpoints. A proxyless gateway asks
//! for its Gateway servers' route tables by name instead ([`gateway`]).
//!
//! Names are read as istiod reads them:
//!
//! - `host:port` asks for that port of the service, `host` for every port
//!   of it; each listener is named `host:port` with the host as asked.
//! - A host without a dot is a short name in the node's namespace
//!   (`reviews` → `reviews.NS.svc.DOMAIN`); `reviews.NS` and
//!   `reviews.NS.svc` are completed the same way when NS is the node's own
//!   namespace. Any other host is taken as written.
//! - A name that matches no service of the registry, or one not exported
//!   to the node's namespace, gets nothing: the client is told the
//!   listener does not exist.
//! - Each listener carries the service's virtual IP and port as its
//!   address, as istiod writes it (`0.0.0.0` without one); gRPC ignores it.
//! - A server's name, `xds.istio.io/grpc/lds/inbound/HOST:PORT`, gets its
//!   inbound listener ([`translate::server_listener`]) with the RBAC
//!   filters of the AuthorizationPolicies that select the node
//!   ([`Resources::authorization`]). It takes mutual TLS by the
//!   PeerAuthentication of its port ([`Resources::mtls_mode`]): STRICT
//!   requires a client certificate; PERMISSIVE takes both, a chain each,
//!   for the mesh's own servers (user agent `mesh`), which tell them
//!   apart by a connection's first byte; for gRPC, whose filter chain
//!   matching cannot, it is plain text, as istiod serves it, unless the
//!   node carries `security.istio.io/tlsMode: istio`, when it is STRICT;
//!   DISABLE is plain text.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use mesh_core::MeshConfig;
use mesh_core::gateway::GatewayPort;
use mesh_core::registry::Registry;
use mesh_core::security::MtlsMode;
use mesh_istio::Resources;
use mesh_xds::translate;

use crate::assemble::{Assembly, BuildError, ByType, routed};
use crate::node::NodeClass;

/// One listener a name stands for: its name, the service's FQDN and port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListenerFor {
    /// The listener's name, `host:port` with the host as asked.
    pub name: String,
    /// The service's FQDN.
    pub host: String,
    /// The service port.
    pub port: u16,
    /// The service's virtual IP, where istiod puts the listener (gRPC
    /// does not read it); `0.0.0.0` when it has none.
    pub address: IpAddr,
}

/// The listeners `name` stands for, for `node`, among the services of
/// `registry`.
pub fn listeners_for(name: &str, node: &NodeClass, registry: &Registry) -> Vec<ListenerFor> {
    let (host, port) = match name.rsplit_once(':') {
        Some((h, p)) => match p.parse::<u16>() {
            Ok(p) => (h, Some(p)),
            Err(_) => return Vec::new(),
        },
        None => (name, None),
    };
    let fqdn = complete(host, node);
    let Some(service) = [host, fqdn.as_str()]
        .into_iter()
        .find_map(|h| registry.service(h))
    else {
        return Vec::new();
    };
    service
        .ports
        .iter()
        .filter(|p| port.is_none_or(|want| want == p.number))
        .map(|p| ListenerFor {
            name: format!("{host}:{}", p.number),
            host: service.hostname.to_string(),
            port: p.number,
            address: service
                .addresses
                .iter()
                .find_map(|a| a.parse().ok())
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        })
        .collect()
}

/// `host` completed with the node's DNS domain, as istiod completes a
/// short name; `host` itself when it is not one.
fn complete(host: &str, node: &NodeClass) -> String {
    let domain = node.dns_domain();
    if !host.contains('.') {
        return format!("{host}.{domain}");
    }
    let ns = &node.namespace;
    for suffix in [ns.clone(), format!("{ns}.svc")] {
        if let Some(short) = host.strip_suffix(&format!(".{suffix}"))
            && !short.contains('.')
        {
            return format!("{short}.{domain}");
        }
    }
    host.to_owned()
}

/// The resources, by type, a node asking for `names` is served under
/// `config` (converted for the node) and `registry`. Any service port
/// that cannot be written fails the whole, so that the node keeps what it
/// had.
pub fn resources(
    names: &BTreeSet<String>,
    node: &NodeClass,
    istio: &Resources,
    config: &MeshConfig,
    registry: &Registry,
) -> Result<ByType, BuildError> {
    let mut assembly = Assembly::new(node);
    for name in names {
        if let Some(addr) = translate::server_listener_address(name) {
            add_server_listener(&mut assembly, name, addr, node, istio)?;
            continue;
        }
        let visible = listeners_for(name, node, registry)
            .into_iter()
            .filter(|l| routed(config, &l.host, l.port));
        for l in visible {
            let ported = translate::service_routes(config, &l.name, &l.host, l.port)?;
            let addr = SocketAddr::new(l.address, l.port);
            let listener = translate::api_listener_on(&l.name, &ported.name, addr);
            assembly.add(&l.name, &listener);
            assembly.add_routes(&ported, &l.host, l.port)?;
        }
    }
    assembly.finish(config, registry)
}

/// The resources, by type, a proxyless gateway asking for `names` is
/// served: for each name that is the route table of one of its Gateway
/// servers on `ports` (`http.8080`), an API listener of that name routed
/// by it, the route configuration Envoy gateways get (of `config`,
/// converted for the gateway) and the clusters it sends to; for a server
/// listener's name on one of its ports
/// (`xds.istio.io/grpc/lds/inbound/0.0.0.0:8443`), that port as an Envoy
/// gateway's listener is written ([`translate::envoy_listener_chains`]:
/// a chain per server, chosen by server name, with the TLS it
/// terminates), under that name. Any other name gets nothing: the gateway
/// is told it does not exist. The secrets its servers' certificates come
/// from are served apart (see [`crate::envoy::gateway_secrets`]).
pub fn gateway(
    names: &BTreeSet<String>,
    node: &NodeClass,
    ports: &[GatewayPort],
    config: &MeshConfig,
    registry: &Registry,
) -> Result<ByType, BuildError> {
    let mut assembly = Assembly::new(node);
    let servers = ports.iter().flat_map(|p| &p.servers);
    for server in servers.filter(|s| names.contains(&s.routes)) {
        assembly.add_gateway_routes(&server.routes, config, registry)?;
        let listener = translate::api_listener(&server.routes, &server.routes);
        assembly.add(&server.routes, &listener);
    }
    for name in names {
        let Some(addr) = translate::server_listener_address(name) else {
            continue;
        };
        let Some(port) = ports.iter().find(|p| p.number == addr.port()) else {
            continue;
        };
        for server in &port.servers {
            assembly.add_gateway_routes(&server.routes, config, registry)?;
        }
        let l = translate::gateway_listener(name, addr, "gateway", port);
        assembly.add(name, &l);
    }
    assembly.finish(config, registry)
}

/// Adds the inbound listener `name` of a proxyless server on `addr`.
fn add_server_listener(
    assembly: &mut Assembly,
    name: &str,
    addr: SocketAddr,
    node: &NodeClass,
    istio: &Resources,
) -> Result<(), BuildError> {
    let workload = node.workload();
    let mode = match istio.mtls_mode(&workload, addr.port()) {
        // The mesh's servers tell TLS from plain text by the first byte.
        MtlsMode::Permissive if node.mesh => MtlsMode::Permissive,
        // gRPC's filter chain matching cannot: plain text, or mutual TLS
        // for a workload in the mesh.
        MtlsMode::Permissive
            if node
                .labels
                .get("security.istio.io/tlsMode")
                .map(String::as_str)
                == Some("istio") =>
        {
            MtlsMode::Strict
        }
        MtlsMode::Permissive => MtlsMode::Disable,
        mode => mode,
    };
    let rbac = istio.authorization(&workload)?;
    let listener = translate::server_listener(name, addr, &rbac, mode)?;
    assembly.add(name, &listener);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Shape;

    fn node(namespace: &str) -> NodeClass {
        NodeClass {
            shape: Shape::Proxyless,
            namespace: namespace.into(),
            cluster_domain: "cluster.local".into(),
            labels: Default::default(),
            address: None,
            locality: Default::default(),
            identity: None,
            cert_files: None,
            mesh: false,
        }
    }

    #[test]
    fn short_names_are_completed_in_the_nodes_namespace_only() {
        let n = node("default");
        let fqdn = "reviews.default.svc.cluster.local";
        assert_eq!(complete("reviews", &n), fqdn);
        assert_eq!(complete("reviews.default", &n), fqdn);
        assert_eq!(complete("reviews.default.svc", &n), fqdn);
        assert_eq!(complete("reviews.shop", &n), "reviews.shop");
        assert_eq!(complete(fqdn, &n), fqdn);
    }

    #[test]
    fn permissive_is_both_chains_for_the_mesh_and_one_for_grpc() {
        let yaml = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n\
            metadata: {name: default, namespace: default}\nspec:\n  mtls: {mode: PERMISSIVE}\n";
        let loaded =
            crate::config_dir::load_texts([("pa.yaml".into(), yaml.into())], "cluster.local")
                .unwrap();
        let name = "xds.istio.io/grpc/lds/inbound/127.0.0.1:9080".to_owned();
        let chains = |node: &NodeClass| -> Vec<String> {
            let config = loaded
                .resources
                .to_mesh_config_for(&node.workload())
                .unwrap();
            let asked = BTreeSet::from([name.clone()]);
            let served =
                resources(&asked, node, &loaded.resources, &config, &loaded.registry).unwrap();
            let (_, listeners) = served
                .iter()
                .find(|(kind, _)| *kind == mesh_xds::resource::ResourceType::Listener)
                .unwrap();
            let listener: envoy_types::pb::envoy::config::listener::v3::Listener =
                prost::Message::decode(listeners[0].1.value.as_slice()).unwrap();
            listener.filter_chains.into_iter().map(|c| c.name).collect()
        };
        let grpc = node("default");
        assert_eq!(chains(&grpc), ["inbound-plaintext"]);
        let mut in_mesh = node("default");
        in_mesh
            .labels
            .insert("security.istio.io/tlsMode".into(), "istio".into());
        assert_eq!(chains(&in_mesh), ["inbound-mtls"]);
        let mesh = NodeClass {
            mesh: true,
            ..in_mesh
        };
        assert_eq!(chains(&mesh), ["inbound-mtls", "inbound-plaintext"]);
    }
}
