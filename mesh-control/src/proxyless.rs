//! What a proxyless node is served, as istiod's `grpc` generator serves
//! it: for each listener name it asked for, the listeners of the service
//! ports the name stands for, their route configurations, the clusters
//! those route to and the clusters' endpoints.
//!
//! Names are read as istiod reads them:
//!
//! - `host:port` asks for that port of the service, `host` for every port
//!   of it; each listener is named `host:port` with the host as asked.
//! - A host without a dot is a short name in the node's namespace
//!   (`reviews` → `reviews.NS.svc.DOMAIN`); `reviews.NS` and
//!   `reviews.NS.svc` are completed the same way when NS is the node's own
//!   namespace. Any other host is taken as written.
//! - A name that matches no service of the registry gets nothing: the
//!   client is told the listener does not exist.

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::google::protobuf::Any;
use mesh_core::cluster::istio_cluster_name;
use mesh_core::registry::Registry;
use mesh_core::{EndpointSet, MeshConfig};
use mesh_xds::ads::ResourceType;
use mesh_xds::translate::{self, TranslateError};

use crate::node::NodeClass;

/// Resources by type, packed and named, as
/// [`ResourceCache::set_all`](mesh_xds::server::ResourceCache::set_all)
/// takes them.
pub type ByType = Vec<(ResourceType, Vec<(String, Any)>)>;

/// One listener a name stands for: its name, the service's FQDN and port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListenerFor {
    /// The listener's name, `host:port` with the host as asked.
    pub name: String,
    /// The service's FQDN.
    pub host: String,
    /// The service port.
    pub port: u16,
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
    config: &MeshConfig,
    registry: &Registry,
) -> Result<ByType, TranslateError> {
    let mut by_type: BTreeMap<ResourceType, BTreeMap<String, Any>> = BTreeMap::new();
    let mut endpoints: BTreeMap<String, (String, u16)> = BTreeMap::new();
    for name in names {
        for l in listeners_for(name, node, registry) {
            let served = translate::service_port(config, &l.name, &l.host, l.port)?;
            for c in &served.clusters {
                endpoints.insert(c.name.clone(), (l.host.clone(), l.port));
            }
            for (kind, entries) in served.entries() {
                by_type.entry(kind).or_default().extend(entries);
            }
        }
    }
    let mut assignments = BTreeMap::new();
    for (name, (host, port)) in endpoints {
        let set = cluster_endpoints(&name, &host, port, config, registry);
        let cla = translate::load_assignment(&name, &set)?;
        assignments.extend([translate::entry(&name, &cla)]);
    }
    by_type.insert(ResourceType::LoadAssignment, assignments);
    Ok(ResourceType::ALL
        .into_iter()
        .map(|kind| {
            let entries = by_type.remove(&kind).unwrap_or_default();
            (kind, entries.into_iter().collect())
        })
        .collect())
}

/// The endpoints of the cluster `name` (`outbound|PORT|SUBSET|HOST`): the
/// service's instances its subset selects, each locality weighted by the
/// sum of its endpoints' weights, as istiod weighs them.
fn cluster_endpoints(
    name: &str,
    host: &str,
    port: u16,
    config: &MeshConfig,
    registry: &Registry,
) -> EndpointSet {
    let subset = name.split('|').nth(2).filter(|s| !s.is_empty());
    let cluster = [Some(port), None]
        .into_iter()
        .find_map(|p| config.cluster(&istio_cluster_name(host, p, subset)));
    let Some(cluster) = cluster else {
        return EndpointSet::default();
    };
    let set = registry.endpoints(host, port, cluster);
    let mut totals: BTreeMap<_, u32> = BTreeMap::new();
    for e in &set {
        *totals.entry((e.priority, e.locality.clone())).or_default() += e.weight.max(1);
    }
    set.iter()
        .map(|e| {
            let total = totals[&(e.priority, e.locality.clone())];
            e.clone().with_locality_weight(total)
        })
        .collect()
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
}
