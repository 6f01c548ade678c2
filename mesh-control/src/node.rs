//! What a connecting node is, read from its `Node` as istiod reads it:
//! the shape of resources it takes, its namespace, DNS domain and labels.
//!
//! - **Shape.** Node metadata `GENERATOR: grpc` is a proxyless gRPC
//!   client, as istiod reads it. Envoy (user agent `envoy`) is a gateway
//!   when its id starts `router~`, else a sidecar. Every other client —
//!   the mesh's own (user agent `mesh`), gRPC's with or without the
//!   metadata — takes proxyless resources, the only ones it can use; one
//!   whose id starts `router~` is a proxyless gateway (`mesh-sidecar
//!   gateway`), served its Gateway servers' route tables by name.
//! - **Where.** Istio's ids are `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.DOMAIN`.
//!   Metadata `NAMESPACE` wins over the id; without either the node is in
//!   `default`, in `cluster.local`.
//! - **Address.** An Envoy node's IP is the id's second part; its
//!   listeners are bound there.
//! - **Locality.** The node's `locality`, for locality failover.
//! - **Certificates.** For Envoy, the files metadata `TLS_CLIENT_CERT_CHAIN`,
//!   `TLS_CLIENT_KEY` and `TLS_CLIENT_ROOT_CERT` name, as Istio reads them
//!   for mounted certificates.
//! - **Labels.** Metadata `LABELS`, a map of strings, as Istio's agent
//!   sends the pod's labels.
//! - **The mesh's own.** User agent `mesh`: its servers take `PERMISSIVE`
//!   as it is, both chains on one port.
//! - **Identity.** All of that is what a node says of itself. A node that
//!   connected over mutual TLS has proved an identity, its certificate's
//!   SPIFFE id ([`NodeClass::authenticated`]): that gives its namespace,
//!   and a node claiming another is refused, as istiod refuses it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use mesh_core::Locality;
use mesh_core::security::SpiffeId;
use mesh_istio::Workload;

/// The user agent of the mesh's own xDS client.
const MESH_USER_AGENT: &str = "mesh";

/// The shape of resources a node is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Shape {
    /// A proxyless gRPC client or a mesh client: API listeners named as
    /// asked, as istiod's `grpc` generator makes them.
    Proxyless,
    /// An Envoy sidecar.
    Sidecar,
    /// An Envoy gateway.
    Router,
    /// A proxyless gateway (the mesh's `mesh-sidecar gateway`): API
    /// listeners named by its Gateway servers' route tables (`http.8080`),
    /// as asked.
    ProxylessRouter,
}

impl Shape {
    /// Whether its listeners are made as it asks for them, by name (else
    /// all are there from the start, as Envoy takes them).
    pub fn asks_by_name(self) -> bool {
        matches!(self, Shape::Proxyless | Shape::ProxylessRouter)
    }

    /// Whether it is a gateway, implementing the Gateways its labels
    /// select.
    pub fn is_gateway(self) -> bool {
        matches!(self, Shape::Router | Shape::ProxylessRouter)
    }
}

/// A node as the control plane sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeClass {
    /// How it is served.
    pub shape: Shape,
    /// Its namespace.
    pub namespace: String,
    /// The cluster's DNS domain (`cluster.local`).
    pub cluster_domain: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// For Envoy, its IP (the id's second part), where its listeners are
    /// bound; `None` for proxyless clients, which bind nothing.
    pub address: Option<IpAddr>,
    /// Where it runs (the node's `locality`), which orders endpoints'
    /// priorities for locality failover.
    pub locality: Locality,
    /// The identity the node proved with its certificate (over mutual
    /// TLS), whose namespace is the node's; `None` for a node that only
    /// says who it is.
    pub identity: Option<SpiffeId>,
    /// For Envoy, the files of its workload certificate, when its metadata
    /// names them as Istio's does for mounted certificates
    /// (`TLS_CLIENT_CERT_CHAIN`, `TLS_CLIENT_KEY`, `TLS_CLIENT_ROOT_CERT`):
    /// its mutual TLS clusters read them.
    pub cert_files: Option<CertFiles>,
    /// Whether it is the mesh's own client (user agent `mesh`), whose
    /// servers tell mutual TLS from plain text on one port.
    pub mesh: bool,
}

/// A workload certificate's files, as Istio's agent writes them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CertFiles {
    /// The certificate chain (`cert-chain.pem`).
    pub chain: String,
    /// The private key (`key.pem`).
    pub key: String,
    /// The mesh's roots (`root-cert.pem`).
    pub root: String,
}

impl NodeClass {
    /// Reads `node`.
    ///
    /// ```
    /// use envoy_types::pb::envoy::config::core::v3::Node;
    /// use mesh_control::node::{NodeClass, Shape};
    ///
    /// let node = Node {
    ///     id: "sidecar~10.0.0.1~reviews-v1.shop~shop.svc.example.org".into(),
    ///     user_agent_name: "envoy".into(),
    ///     ..Node::default()
    /// };
    /// let class = NodeClass::of(&node);
    /// assert_eq!((class.shape, class.namespace.as_str()), (Shape::Sidecar, "shop"));
    /// assert_eq!(class.cluster_domain, "example.org");
    /// ```
    pub fn of(node: &Node) -> Self {
        let metadata = node.metadata.as_ref();
        let parts: Vec<&str> = node.id.split('~').collect();
        let generator = metadata.and_then(|m| string(m, "GENERATOR"));
        let envoy = node.user_agent_name == "envoy" && generator != Some("grpc");
        let router = parts.first() == Some(&"router");
        let shape = match (envoy, router) {
            (false, false) => Shape::Proxyless,
            (false, true) => Shape::ProxylessRouter,
            (true, true) => Shape::Router,
            (true, false) => Shape::Sidecar,
        };
        let domain = id_domain(node);
        let defaults = Workload::default();
        let namespace = stated_namespace(node)
            .unwrap_or(&defaults.namespace)
            .to_owned();
        let cluster_domain = domain
            .map(|(_, d)| d.to_owned())
            .unwrap_or(defaults.cluster_domain);
        let labels = metadata
            .and_then(|m| m.fields.get("LABELS"))
            .and_then(|v| match &v.kind {
                Some(Kind::StructValue(s)) => Some(s),
                _ => None,
            })
            .map(|s| {
                s.fields
                    .keys()
                    .filter_map(|k| string(s, k).map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let address = match shape {
            Shape::Proxyless | Shape::ProxylessRouter => None,
            Shape::Sidecar | Shape::Router => parts.get(1).and_then(|ip| ip.parse().ok()),
        };
        let locality = node
            .locality
            .as_ref()
            .map(|l| Locality {
                region: l.region.clone(),
                zone: l.zone.clone(),
                sub_zone: l.sub_zone.clone(),
            })
            .unwrap_or_default();
        let cert_files = metadata.filter(|_| !shape.asks_by_name()).and_then(|m| {
            Some(CertFiles {
                chain: string(m, "TLS_CLIENT_CERT_CHAIN")?.to_owned(),
                key: string(m, "TLS_CLIENT_KEY")?.to_owned(),
                root: string(m, "TLS_CLIENT_ROOT_CERT")?.to_owned(),
            })
        });
        Self {
            shape,
            namespace,
            cluster_domain,
            labels,
            address,
            locality,
            identity: None,
            cert_files,
            mesh: node.user_agent_name == MESH_USER_AGENT,
        }
    }

    /// Reads `node`, which proved `identity` (its certificate's SPIFFE
    /// id): the node is in the identity's namespace. Refused, with why,
    /// when the identity is not an Istio SPIFFE id, or the node says it
    /// is in another namespace.
    ///
    /// ```
    /// use mesh_control::node::{NodeClass, node};
    ///
    /// let id = "spiffe://cluster.local/ns/shop/sa/reviews";
    /// let class = NodeClass::authenticated(&node("reviews-1", false, &[]), id).unwrap();
    /// assert_eq!(class.namespace, "shop");
    /// let claims = node("sidecar~10.0.0.1~r.default~default.svc.cluster.local", true, &[]);
    /// assert!(NodeClass::authenticated(&claims, id).is_err());
    /// ```
    pub fn authenticated(node: &Node, identity: &str) -> Result<Self, String> {
        let id: SpiffeId = identity
            .parse()
            .map_err(|e| format!("the client certificate's identity {identity:?}: {e}"))?;
        if let Some(claimed) = stated_namespace(node)
            && claimed != id.namespace()
        {
            return Err(format!(
                "node {:?} says it is in namespace {claimed}; its certificate ({id}) is of namespace {}",
                node.id,
                id.namespace()
            ));
        }
        let mut class = Self::of(node);
        class.namespace = id.namespace().to_owned();
        class.identity = Some(id);
        Ok(class)
    }

    /// The client the Istio configuration is converted for.
    pub fn workload(&self) -> Workload {
        Workload {
            namespace: self.namespace.clone(),
            cluster_domain: self.cluster_domain.clone(),
            labels: self.labels.clone(),
            ..Workload::default()
        }
    }

    /// The node's DNS search domain, `NAMESPACE.svc.DOMAIN`, which
    /// completes a short host name.
    pub fn dns_domain(&self) -> String {
        format!("{}.svc.{}", self.namespace, self.cluster_domain)
    }
}

/// The `Node` a client would send with `id` and `labels` (as metadata
/// `LABELS`), with Envoy's user agent when `envoy`: what `mesh-control
/// translate` stands for.
///
/// ```
/// use mesh_control::node::{NodeClass, Shape, node};
///
/// let n = node("router~10.0.0.1~gw.istio-system~istio-system.svc.cluster.local", true, &[("istio", "ingressgateway")]);
/// let class = NodeClass::of(&n);
/// assert_eq!(class.shape, Shape::Router);
/// assert_eq!(class.labels["istio"], "ingressgateway");
/// ```
pub fn node(id: &str, envoy: bool, labels: &[(&str, &str)]) -> Node {
    let text = |s: &str| Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    };
    let labels = Struct {
        fields: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), text(v)))
            .collect(),
    };
    let metadata = Struct {
        fields: [(
            "LABELS".to_owned(),
            Value {
                kind: Some(Kind::StructValue(labels)),
            },
        )]
        .into(),
    };
    Node {
        id: id.to_owned(),
        user_agent_name: if envoy { "envoy".into() } else { String::new() },
        metadata: Some(metadata),
        ..Node::default()
    }
}

/// The namespace and DNS domain of an id in Istio's form: its last part,
/// `NAMESPACE.svc.DOMAIN`.
fn id_domain(node: &Node) -> Option<(&str, &str)> {
    let parts: Vec<&str> = node.id.split('~').collect();
    let (ns, rest) = (parts.len() == 4).then(|| parts[3])?.split_once('.')?;
    let domain = rest.strip_prefix("svc.")?;
    (!ns.is_empty() && !domain.is_empty()).then_some((ns, domain))
}

/// The namespace `node` says it is in: metadata `NAMESPACE`, else its
/// id's.
fn stated_namespace(node: &Node) -> Option<&str> {
    node.metadata
        .as_ref()
        .and_then(|m| string(m, "NAMESPACE"))
        .or_else(|| id_domain(node).map(|(ns, _)| ns))
}

fn string<'a>(s: &'a Struct, key: &str) -> Option<&'a str> {
    match &s.fields.get(key)?.kind {
        Some(Kind::StringValue(v)) => Some(v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> Value {
        Value {
            kind: Some(Kind::StringValue(s.into())),
        }
    }

    fn node(id: &str, metadata: &[(&str, Value)]) -> Node {
        Node {
            id: id.into(),
            user_agent_name: "envoy".into(),
            metadata: Some(Struct {
                fields: metadata
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            }),
            ..Node::default()
        }
    }

    #[test]
    fn a_grpc_generator_is_proxyless_whatever_its_id() {
        let n = node(
            "sidecar~10.0.0.1~ratings.shop~shop.svc.cluster.local",
            &[("GENERATOR", value("grpc"))],
        );
        let class = NodeClass::of(&n);
        assert_eq!(class.shape, Shape::Proxyless);
        assert_eq!(class.namespace, "shop");
        assert_eq!(class.dns_domain(), "shop.svc.cluster.local");
    }

    #[test]
    fn envoy_ids_are_sidecars_and_routers() {
        let id = "router~10.0.0.2~gw.istio-system~istio-system.svc.cluster.local";
        assert_eq!(NodeClass::of(&node(id, &[])).shape, Shape::Router);
        let id = "sidecar~10.0.0.2~p.default~default.svc.cluster.local";
        assert_eq!(NodeClass::of(&node(id, &[])).shape, Shape::Sidecar);
    }

    #[test]
    fn any_other_client_is_proxyless() {
        let mut n = node("sidecar~10.0.0.2~p.default~default.svc.cluster.local", &[]);
        n.user_agent_name = "mesh".into();
        assert_eq!(NodeClass::of(&n).shape, Shape::Proxyless);
        n.user_agent_name = "gRPC Python".into();
        assert_eq!(NodeClass::of(&n).shape, Shape::Proxyless);
        // The mesh's own gateway.
        n.id = "router~10.0.0.2~gw.istio-system~istio-system.svc.cluster.local".into();
        n.user_agent_name = "mesh".into();
        let class = NodeClass::of(&n);
        assert_eq!((class.shape, class.address), (Shape::ProxylessRouter, None));
    }

    #[test]
    fn an_id_not_in_istios_form_is_in_default() {
        let class = NodeClass::of(&node("productpage-1", &[]));
        assert_eq!(class.workload(), Workload::default());
    }

    #[test]
    fn metadata_gives_the_namespace_and_labels() {
        let labels = Value {
            kind: Some(Kind::StructValue(Struct {
                fields: [("app".to_owned(), value("reviews"))].into(),
            })),
        };
        let n = node(
            "sidecar~10.0.0.1~r.a~a.svc.cluster.local",
            &[("NAMESPACE", value("b")), ("LABELS", labels)],
        );
        let class = NodeClass::of(&n);
        assert_eq!(class.namespace, "b");
        assert_eq!(class.labels["app"], "reviews");
    }
}
