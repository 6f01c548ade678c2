//! An Envoy sidecar's inbound side, for the ingress listeners of its
//! `Sidecar` (traffic reaches the listener at its address; nothing
//! redirects it): per port a listener `IP_PORT` on the sidecar's address
//! (or the listener's `bind`), inbound, whose HTTP connection manager
//! runs the workload's AuthorizationPolicies as RBAC filters (DENY, then
//! ALLOW) and routes everything to the cluster `inbound|PORT||`, a static
//! cluster of the listener's default endpoint, as istiod writes them.
//!
//! Mutual TLS follows the workload's PeerAuthentication for the port,
//! with the certificate files the node's metadata names (Istio's mounted
//! certificates): STRICT takes mutual TLS only; PERMISSIVE, the default,
//! takes mutual TLS and plain text side by side (the TLS inspector tells
//! them apart), or plain text alone when the node has no certificates;
//! DISABLE takes plain text. STRICT without certificate files cannot be
//! served and is an error.

use std::net::{IpAddr, SocketAddr};

use mesh_core::policy::{Pem, ServerTls};
use mesh_core::security::MtlsMode;
use mesh_core::sidecar::Ingress;
use mesh_istio::Resources;
use mesh_xds::translate::{self, InboundTls};

use crate::assemble::{Assembly, BuildError};
use crate::node::NodeClass;

/// Adds the listener and cluster of `ingress` for the sidecar `node`
/// bound on `ip` (its own address) unless the listener binds another.
pub(crate) fn add(
    assembly: &mut Assembly,
    node: &NodeClass,
    ip: IpAddr,
    ingress: &Ingress,
    resources: &Resources,
) -> Result<(), BuildError> {
    let port = ingress.port;
    let workload = node.workload();
    let mesh_tls = node.cert_files.as_ref().map(|f| ServerTls {
        certificate_chain: Pem::File(f.chain.clone()),
        private_key: Pem::File(f.key.clone()),
        client_ca: Some(Pem::File(f.root.clone())),
        ..ServerTls::default()
    });
    let tls = match (resources.mtls_mode(&workload, port), &mesh_tls) {
        (MtlsMode::Strict, None) => return Err(BuildError::NoCertificates { port }),
        (MtlsMode::Strict, Some(tls)) => InboundTls::Strict(tls),
        (MtlsMode::Permissive, Some(tls)) => InboundTls::Permissive(tls),
        (MtlsMode::Permissive | MtlsMode::Disable, _) => InboundTls::Plaintext,
    };
    let rbac = resources.authorization(&workload)?;
    let addr = SocketAddr::new(ingress.bind.unwrap_or(ip), port);
    let inbound = translate::sidecar_inbound(addr, ingress.endpoint, &rbac, tls)?;
    assembly.add(&inbound.cluster.name, &inbound.cluster);
    assembly.add(&inbound.listener.name, &inbound.listener);
    Ok(())
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::listener::v3::Listener;

    use super::*;
    use crate::node::{CertFiles, Shape};
    use mesh_xds::resource::ResourceType;

    fn sidecar(cert_files: Option<CertFiles>) -> NodeClass {
        NodeClass {
            shape: Shape::Sidecar,
            namespace: "default".into(),
            cluster_domain: "cluster.local".into(),
            labels: [("app".to_owned(), "reviews".to_owned())].into(),
            address: Some([127, 0, 0, 2].into()),
            locality: Default::default(),
            identity: None,
            cert_files,
            mesh: false,
        }
    }

    /// The ingress listener for `node` under the PeerAuthentication
    /// `mode`, or why there is none.
    fn listener(node: &NodeClass, mode: &str) -> Result<Listener, BuildError> {
        let yaml = format!(
            "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n\
             metadata: {{name: default, namespace: default}}\nspec: {{mtls: {{mode: {mode}}}}}\n"
        );
        let resources = mesh_istio::parse("p.yaml", &yaml).unwrap().0;
        let ingress = Ingress {
            port: 9080,
            name: "http".into(),
            bind: None,
            endpoint: "127.0.0.1:8080".parse().unwrap(),
        };
        let mut assembly = Assembly::new(node);
        add(
            &mut assembly,
            node,
            node.address.unwrap(),
            &ingress,
            &resources,
        )?;
        let registry = mesh_core::Registry::default();
        let by_type = assembly.finish(&mesh_core::MeshConfig::default(), &registry)?;
        let (_, listeners) = by_type
            .iter()
            .find(|(kind, _)| *kind == ResourceType::Listener)
            .unwrap();
        let [(name, any)] = listeners.as_slice() else {
            panic!("{listeners:?}")
        };
        assert_eq!(name, "127.0.0.2_9080");
        Ok(prost::Message::decode(any.value.as_slice()).unwrap())
    }

    fn transports(l: &Listener) -> Vec<(String, bool)> {
        l.filter_chains
            .iter()
            .map(|c| {
                let m = c.filter_chain_match.as_ref();
                let transport = m.map(|m| m.transport_protocol.clone()).unwrap_or_default();
                (transport, c.transport_socket.is_some())
            })
            .collect()
    }

    #[test]
    fn the_peer_authentication_mode_picks_the_chains() {
        let files = CertFiles {
            chain: "/certs/cert-chain.pem".into(),
            key: "/certs/key.pem".into(),
            root: "/certs/root-cert.pem".into(),
        };
        let with = sidecar(Some(files));
        let without = sidecar(None);
        let strict = listener(&with, "STRICT").unwrap();
        assert_eq!(transports(&strict), [(String::new(), true)]);
        let permissive = listener(&with, "PERMISSIVE").unwrap();
        assert_eq!(
            transports(&permissive),
            [("tls".into(), true), ("raw_buffer".into(), false)]
        );
        assert_eq!(permissive.listener_filters.len(), 1, "the TLS inspector");
        let plain = listener(&with, "DISABLE").unwrap();
        assert_eq!(transports(&plain), [(String::new(), false)]);
        // Without certificates: PERMISSIVE is plain text, STRICT cannot be.
        let plain = listener(&without, "PERMISSIVE").unwrap();
        assert_eq!(transports(&plain), [(String::new(), false)]);
        let e = listener(&without, "STRICT").unwrap_err();
        assert!(
            e.to_string().contains("port 9080 takes mutual TLS only"),
            "{e}"
        );
    }
}
