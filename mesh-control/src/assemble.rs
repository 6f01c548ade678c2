//! Putting a node's resources together service port by service port:
//! listeners, route configurations and clusters as they come (one name,
//! one resource), then the endpoints of every cluster from the registry.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::cluster::v3 as cds;
use envoy_types::pb::google::protobuf::Any;
use mesh_core::cluster::istio_cluster_name;
use mesh_core::registry::Registry;
use mesh_core::{EndpointSet, MeshConfig};
use mesh_xds::ads::ResourceType;
use mesh_xds::translate::{self, TranslateError};
use prost::{Message, Name};

/// Resources by type, packed and named, as
/// [`ResourceCache::set_all`](mesh_xds::server::ResourceCache::set_all)
/// takes them.
pub type ByType = Vec<(ResourceType, Vec<(String, Any)>)>;

/// Why a node's resources could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A route, cluster or endpoint set xDS cannot say.
    #[error(transparent)]
    Translate(#[from] TranslateError),
    /// An authorization policy gRPC cannot enforce.
    #[error(transparent)]
    Authz(#[from] crate::authz::AuthzError),
}

/// The resources of one node, being gathered.
#[derive(Debug, Default)]
pub(crate) struct Assembly {
    by_type: BTreeMap<ResourceType, BTreeMap<String, Any>>,
    /// Each cluster's service and port, whose endpoints it takes.
    clusters: BTreeMap<String, (String, u16)>,
}

impl Assembly {
    /// Adds the resource `m` named `name`; a later one of the same name
    /// replaces it.
    pub(crate) fn add<T: Message + Name>(&mut self, name: &str, m: &T) {
        let Some(kind) = ResourceType::from_type_url(&T::type_url()) else {
            return;
        };
        let (name, any) = translate::entry(name, m);
        self.by_type.entry(kind).or_default().insert(name, any);
    }

    /// Adds `clusters` of the service `host` on `port`.
    pub(crate) fn add_clusters(&mut self, clusters: &[cds::Cluster], host: &str, port: u16) {
        for c in clusters {
            self.add(&c.name, c);
            self.clusters
                .insert(c.name.clone(), (host.to_owned(), port));
        }
    }

    /// Everything, with an EDS resource per cluster.
    pub(crate) fn finish(
        mut self,
        config: &MeshConfig,
        registry: &Registry,
    ) -> Result<ByType, BuildError> {
        let mut assignments = BTreeMap::new();
        for (name, (host, port)) in &self.clusters {
            let set = cluster_endpoints(name, host, *port, config, registry);
            let cla = translate::load_assignment(name, &set)?;
            assignments.extend([translate::entry(name, &cla)]);
        }
        self.by_type
            .insert(ResourceType::LoadAssignment, assignments);
        Ok(ResourceType::ALL
            .into_iter()
            .map(|kind| {
                let entries = self.by_type.remove(&kind).unwrap_or_default();
                (kind, entries.into_iter().collect())
            })
            .collect())
    }
}

/// Whether `config` routes the service `host` on `port`: a service not
/// exported to the node has no virtual host, and is left out rather than
/// failing the node's other resources.
pub(crate) fn routed(config: &MeshConfig, host: &str, port: u16) -> bool {
    let with_port = format!("{host}:{port}");
    config
        .routes()
        .virtual_hosts()
        .iter()
        .any(|vh| vh.domains.iter().any(|d| *d == host || *d == with_port))
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
