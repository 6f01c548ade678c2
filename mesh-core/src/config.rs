//! The mesh configuration a client routes by: a route table and the
//! clusters its routes name. It is replaced whole on every change (from
//! code, a YAML file, or xDS), never edited in place.

use std::collections::HashMap;
use std::sync::Arc;

use crate::cluster::Cluster;
use crate::route::{ClusterName, RouteTable};

/// Routes and clusters, checked together; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct MeshConfig {
    routes: RouteTable,
    clusters: Arc<HashMap<ClusterName, Cluster>>,
}

/// A route names a cluster the configuration does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cluster {cluster:?} is named by a route but not defined")]
pub struct UndefinedCluster {
    /// The cluster.
    pub cluster: String,
}

impl MeshConfig {
    /// Routes and the clusters they use; every cluster a route names must
    /// be among `clusters`.
    pub fn new(
        routes: RouteTable,
        clusters: impl IntoIterator<Item = Cluster>,
    ) -> Result<Self, UndefinedCluster> {
        let clusters: HashMap<ClusterName, Cluster> =
            clusters.into_iter().map(|c| (c.name.clone(), c)).collect();
        if let Some(missing) = routes.clusters().find(|c| !clusters.contains_key(*c)) {
            return Err(UndefinedCluster {
                cluster: missing.to_string(),
            });
        }
        Ok(Self {
            routes,
            clusters: Arc::new(clusters),
        })
    }

    /// The route table.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// A cluster by name.
    pub fn cluster(&self, name: &ClusterName) -> Option<&Cluster> {
        self.clusters.get(name)
    }

    /// Every cluster.
    pub fn clusters(&self) -> impl Iterator<Item = &Cluster> {
        self.clusters.values()
    }
}
