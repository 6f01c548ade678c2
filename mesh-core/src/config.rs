//! The mesh configuration a client routes by: a route table and the
//! clusters its routes name. It is replaced whole on every change (from
//! code, a YAML file, or xDS), never edited in place.

use std::collections::HashMap;
use std::sync::Arc;

use crate::cluster::Cluster;
use crate::policy::{InvalidLoadBalancer, ZeroRateLimit};
use crate::route::{ClusterName, RouteTable};

/// Routes and clusters, checked together; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct MeshConfig {
    routes: RouteTable,
    clusters: Arc<HashMap<ClusterName, Cluster>>,
}

/// Routes and clusters that do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A route names a cluster the configuration does not define.
    #[error("cluster {cluster:?} is named by a route but not defined")]
    UndefinedCluster {
        /// The cluster.
        cluster: String,
    },
    /// A cluster's rate limit lets nothing through.
    #[error("cluster {cluster:?}: {source}")]
    ZeroRateLimit {
        /// The cluster.
        cluster: String,
        /// What is wrong.
        source: ZeroRateLimit,
    },
    /// A cluster's load-balancing policy cannot be used.
    #[error("cluster {cluster:?}: {source}")]
    InvalidLoadBalancer {
        /// The cluster.
        cluster: String,
        /// What is wrong.
        source: InvalidLoadBalancer,
    },
}

impl MeshConfig {
    /// Routes and the clusters they use; every cluster a route names must
    /// be among `clusters`, and every cluster's policy must be usable.
    pub fn new(
        routes: RouteTable,
        clusters: impl IntoIterator<Item = Cluster>,
    ) -> Result<Self, ConfigError> {
        let clusters: HashMap<ClusterName, Cluster> =
            clusters.into_iter().map(|c| (c.name.clone(), c)).collect();
        if let Some(missing) = routes.clusters().find(|c| !clusters.contains_key(*c)) {
            return Err(ConfigError::UndefinedCluster {
                cluster: missing.to_string(),
            });
        }
        for c in clusters.values() {
            if let Some(limit) = &c.policy.rate_limit {
                limit
                    .validate()
                    .map_err(|source| ConfigError::ZeroRateLimit {
                        cluster: c.name.to_string(),
                        source,
                    })?;
            }
            c.policy.load_balancer.validate().map_err(|source| {
                ConfigError::InvalidLoadBalancer {
                    cluster: c.name.to_string(),
                    source,
                }
            })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{LoadBalancer, Maglev};
    use crate::route::{Forward, Route, VirtualHost};

    #[test]
    fn clusters_must_be_defined_and_usable() {
        let table = RouteTable::new(vec![VirtualHost::new(
            "r",
            ["r"],
            vec![Route::forward(Forward::to("r-v1"))],
        )])
        .unwrap();
        let err = MeshConfig::new(table.clone(), []).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cluster \"r-v1\" is named by a route but not defined"
        );
        let mut cluster = Cluster::service(&"r:80".parse().unwrap());
        cluster.name = "r-v1".into();
        cluster.policy.load_balancer = LoadBalancer::Maglev(Maglev { table_size: 10 });
        let err = MeshConfig::new(table.clone(), [cluster.clone()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cluster \"r-v1\": maglev table size 10 is not a prime number"
        );
        cluster.policy.load_balancer = LoadBalancer::Maglev(Maglev::default());
        assert!(MeshConfig::new(table, [cluster]).is_ok());
    }
}
