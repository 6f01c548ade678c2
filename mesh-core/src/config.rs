//! The mesh configuration a client routes by: a route table, route tables
//! of particular listeners (xDS gives each target its own), and the
//! clusters their routes name. It is replaced whole on every change (from
//! code, a YAML file, or xDS), never edited in place.

use std::collections::HashMap;
use std::sync::Arc;

use crate::cluster::Cluster;
use crate::name::InvalidAuthority;
use crate::policy::{ClusterPolicy, InvalidLoadBalancer, ZeroRateLimit};
use crate::route::{ClusterName, RouteTable};

/// Routes and clusters, checked together; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct MeshConfig {
    routes: RouteTable,
    listeners: Arc<HashMap<Arc<str>, RouteTable>>,
    clusters: Arc<HashMap<ClusterName, Arc<Cluster>>>,
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
    /// A cluster's host is no DNS name or IP address.
    #[error("cluster {cluster:?}: {source}")]
    InvalidHost {
        /// The cluster.
        cluster: String,
        /// What is wrong.
        source: InvalidAuthority,
    },
    /// A cluster's rate limit lets nothing through.
    #[error("cluster {cluster:?}{}: {source}", for_port(*port))]
    ZeroRateLimit {
        /// The cluster.
        cluster: String,
        /// The port whose policy it is (an entry of the cluster's
        /// `port_policies`); `None` for the cluster's `policy`.
        port: Option<u16>,
        /// What is wrong.
        source: ZeroRateLimit,
    },
    /// A cluster's load-balancing policy cannot be used.
    #[error("cluster {cluster:?}{}: {source}", for_port(*port))]
    InvalidLoadBalancer {
        /// The cluster.
        cluster: String,
        /// The port whose policy it is (an entry of the cluster's
        /// `port_policies`); `None` for the cluster's `policy`.
        port: Option<u16>,
        /// What is wrong.
        source: InvalidLoadBalancer,
    },
}

fn for_port(port: Option<u16>) -> String {
    port.map(|p| format!(" (port {p})")).unwrap_or_default()
}

impl MeshConfig {
    /// Routes and the clusters they use; every cluster a route names must
    /// be among `clusters`, and every cluster's policy, and each of its
    /// port policies, must be usable.
    pub fn new(
        routes: RouteTable,
        clusters: impl IntoIterator<Item = Cluster>,
    ) -> Result<Self, ConfigError> {
        Self::with_listeners(routes, [], clusters)
    }

    /// As [`new`](Self::new), with route tables of particular listeners:
    /// a request whose authority, as written, is a listener's name is
    /// routed by its table, any other by `routes`. This is how xDS routes:
    /// each target (`reviews.default.svc.cluster.local:9080`) is a listener
    /// with a route configuration of its own.
    pub fn with_listeners(
        routes: RouteTable,
        listeners: impl IntoIterator<Item = (Arc<str>, RouteTable)>,
        clusters: impl IntoIterator<Item = Cluster>,
    ) -> Result<Self, ConfigError> {
        let clusters = clusters.into_iter().map(Arc::new);
        Self::after(&MeshConfig::default(), routes, listeners, clusters)
    }

    /// As [`with_listeners`](Self::with_listeners), for the configuration
    /// that replaces `previous`: a cluster that is the very one `previous`
    /// holds (the same `Arc`) was checked when `previous` was made and is
    /// not checked again, so that a change costs what it changes.
    pub fn after(
        previous: &MeshConfig,
        routes: RouteTable,
        listeners: impl IntoIterator<Item = (Arc<str>, RouteTable)>,
        clusters: impl IntoIterator<Item = Arc<Cluster>>,
    ) -> Result<Self, ConfigError> {
        let listeners: HashMap<Arc<str>, RouteTable> = listeners.into_iter().collect();
        let clusters: HashMap<ClusterName, Arc<Cluster>> =
            clusters.into_iter().map(|c| (c.name.clone(), c)).collect();
        let named = std::iter::once(&routes)
            .chain(listeners.values())
            .flat_map(RouteTable::clusters);
        if let Some(missing) = named.into_iter().find(|c| !clusters.contains_key(*c)) {
            return Err(ConfigError::UndefinedCluster {
                cluster: missing.to_string(),
            });
        }
        for c in clusters.values() {
            if previous
                .shared_cluster(&c.name)
                .is_some_and(|p| Arc::ptr_eq(p, c))
            {
                continue;
            }
            // Checked here so that requests never meet a bad host.
            c.target(1).map_err(|source| ConfigError::InvalidHost {
                cluster: c.name.to_string(),
                source,
            })?;
            let policies = std::iter::once((None, &c.policy))
                .chain(c.port_policies.iter().map(|(p, policy)| (Some(*p), policy)));
            for (port, policy) in policies {
                validate(c, port, policy)?;
            }
        }
        Ok(Self {
            routes,
            listeners: Arc::new(listeners),
            clusters: Arc::new(clusters),
        })
    }

    /// The route table of requests to authorities no listener is named
    /// after.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// The route table of the listener `name`, if there is one.
    pub fn listener(&self, name: &str) -> Option<&RouteTable> {
        self.listeners.get(name)
    }

    /// The names of the listeners with route tables of their own.
    pub fn listener_names(&self) -> impl Iterator<Item = &str> {
        self.listeners.keys().map(|k| &**k)
    }

    /// The route table of a request sent to `authority`, as written: its
    /// listener's when there is one, else [`routes`](Self::routes).
    pub fn routes_for(&self, authority: &str) -> &RouteTable {
        if self.listeners.is_empty() {
            return &self.routes;
        }
        self.listener(authority).unwrap_or(&self.routes)
    }

    /// A cluster by name.
    pub fn cluster(&self, name: &ClusterName) -> Option<&Cluster> {
        self.clusters.get(name).map(|c| &**c)
    }

    /// A cluster by name, as the configuration shares it: a configuration
    /// made [`after`](Self::after) this one that keeps the cluster holds
    /// the same `Arc`.
    pub fn shared_cluster(&self, name: &ClusterName) -> Option<&Arc<Cluster>> {
        self.clusters.get(name)
    }

    /// Every cluster.
    pub fn clusters(&self) -> impl Iterator<Item = &Cluster> {
        self.clusters.values().map(|c| &**c)
    }
}

/// Checks the parts of a cluster's policy (for `port`, or its own) that
/// can be wrong.
fn validate(c: &Cluster, port: Option<u16>, policy: &ClusterPolicy) -> Result<(), ConfigError> {
    let cluster = || c.name.to_string();
    if let Some(limit) = &policy.rate_limit {
        limit
            .validate()
            .map_err(|source| ConfigError::ZeroRateLimit {
                cluster: cluster(),
                port,
                source,
            })?;
    }
    policy
        .load_balancer
        .validate()
        .map_err(|source| ConfigError::InvalidLoadBalancer {
            cluster: cluster(),
            port,
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Limit, LoadBalancer, LocalRateLimit, Maglev};
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
        let mut bad_host = cluster.clone();
        bad_host.discovery = crate::Discovery::Service {
            host: "reviews..default".into(),
            port: None,
        };
        let err = MeshConfig::new(table.clone(), [bad_host]).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidHost { .. }), "{err}");
        assert!(err.to_string().starts_with("cluster \"r-v1\": "), "{err}");
        assert!(MeshConfig::new(table.clone(), [cluster.clone()]).is_ok());

        // A port's policy is checked as the cluster's own is.
        let mut port = cluster.policy.clone();
        port.load_balancer = LoadBalancer::Maglev(Maglev { table_size: 12 });
        cluster.port_policies.insert(9080, port.clone());
        let err = MeshConfig::new(table.clone(), [cluster.clone()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cluster \"r-v1\" (port 9080): maglev table size 12 is not a prime number"
        );
        port.load_balancer = LoadBalancer::RoundRobin;
        port.rate_limit = Some(LocalRateLimit {
            total: Some(Limit {
                requests_per_second: 0,
            }),
            ..Default::default()
        });
        cluster.port_policies.insert(9080, port);
        let err = MeshConfig::new(table, [cluster]).unwrap_err();
        assert_eq!(
            err,
            ConfigError::ZeroRateLimit {
                cluster: "r-v1".into(),
                port: Some(9080),
                source: ZeroRateLimit,
            }
        );
    }

    #[test]
    fn a_configuration_after_another_shares_its_clusters_and_checks_new_ones() {
        let table = RouteTable::new(vec![VirtualHost::new(
            "r",
            ["r"],
            vec![Route::forward(Forward::to("r-v1"))],
        )])
        .unwrap();
        let mut cluster = Cluster::service(&"r:80".parse().unwrap());
        cluster.name = "r-v1".into();
        let first = MeshConfig::new(table.clone(), [cluster.clone()]).unwrap();
        let shared = first.shared_cluster(&"r-v1".into()).unwrap().clone();
        let next = MeshConfig::after(&first, table.clone(), [], [shared.clone()]).unwrap();
        assert!(Arc::ptr_eq(
            next.shared_cluster(&"r-v1".into()).unwrap(),
            &shared
        ));
        // A cluster that is not the same one is checked.
        cluster.policy.load_balancer = LoadBalancer::Maglev(Maglev { table_size: 10 });
        let err = MeshConfig::after(&first, table, [], [Arc::new(cluster)]).unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidLoadBalancer { .. }),
            "{err}"
        );
    }

    #[test]
    fn listeners_route_their_own_authority() {
        let table = |cluster: &str| {
            RouteTable::new(vec![VirtualHost::new(
                "all",
                ["*"],
                vec![Route::forward(Forward::to(cluster))],
            )])
            .unwrap()
        };
        let listeners = [
            ("echo".into(), table("a")),
            ("echo:8080".into(), table("b")),
        ];
        let err =
            MeshConfig::with_listeners(RouteTable::default(), listeners.clone(), []).unwrap_err();
        assert!(matches!(err, ConfigError::UndefinedCluster { .. }), "{err}");
        let config = MeshConfig::with_listeners(
            RouteTable::default(),
            listeners,
            [Cluster::named("a"), Cluster::named("b")],
        )
        .unwrap();
        let cluster_of = |authority: &str| {
            let t = config.routes_for(authority);
            let req = http::Request::get("/").body(()).unwrap();
            let id = t.find(&"echo:80".parse().unwrap(), &req)?;
            t.route(id)
                .forwarding()?
                .destination
                .clusters()
                .next()
                .cloned()
        };
        assert_eq!(cluster_of("echo"), Some("a".into()));
        assert_eq!(cluster_of("echo:8080"), Some("b".into()));
        assert_eq!(cluster_of("other"), None);
        let mut names: Vec<_> = config.listener_names().collect();
        names.sort();
        assert_eq!(names, ["echo", "echo:8080"]);
    }
}
