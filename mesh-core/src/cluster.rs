//! Clusters as routes name them: where their endpoints come from (a
//! service's host and, where known, port, or an endpoint set the resolver
//! keeps by name, as xDS clusters are), an optional subset of the endpoints
//! selected by labels (Istio's DestinationRule `subsets`), and the policy of
//! the whole, which may differ by port when the cluster takes the port of
//! each request.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::name::InvalidAuthority;
use crate::policy::ClusterPolicy;
use crate::resolve::ResolveTarget;
use crate::route::ClusterName;
use crate::{Authority, Endpoint};

/// One cluster: where its endpoints come from and how they are used.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// Its name, as routes refer to it.
    pub name: ClusterName,
    /// Where its endpoints come from.
    pub discovery: Discovery,
    /// Labels an endpoint must carry to belong (Istio's subset `labels`);
    /// empty for the whole service.
    pub subset: BTreeMap<String, String>,
    /// Its policies: those of every request unless the cluster takes the
    /// port of each request, else of requests to ports without an entry in
    /// `port_policies`.
    pub policy: ClusterPolicy,
    /// When the cluster is a [service](Discovery::Service) without a
    /// port, the policies of requests to particular ports,
    /// in place of `policy`. An Istio destination written without a port
    /// takes the port of each request, and istiod builds one cluster per
    /// port of the service, each with that port's `portLevelSettings`; this
    /// keeps those per-port policies on the one cluster. Ignored otherwise
    /// (`policy` is that of every request then). Default empty.
    pub port_policies: BTreeMap<u16, ClusterPolicy>,
}

/// Where a cluster's endpoints come from: what its client's
/// [`Resolve`](crate::Resolve) is asked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Discovery {
    /// A service, resolved by its authority (DNS, a static list).
    Service {
        /// The host, e.g. `reviews.default.svc.cluster.local`.
        host: Arc<str>,
        /// The port; `None` takes the port of each request's authority (an
        /// Istio destination written without a port).
        port: Option<u16>,
    },
    /// An endpoint set the resolver keeps by this name: an xDS cluster,
    /// whatever the source of its endpoints (EDS, its own list, DNS).
    Named(Arc<str>),
    /// Nowhere, for the reason given: routes name the cluster, but it is
    /// not defined (an xDS cluster the control plane deleted, or sent only
    /// rejected copies of). Requests to it fail at once, as Envoy answers
    /// a route to a cluster it does not know: nothing about how to reach
    /// it, its security included, is known.
    Missing(Arc<str>),
}

impl Cluster {
    /// The whole of the service at `authority`, named after it, with the
    /// default policy.
    pub fn service(authority: &Authority) -> Self {
        Self {
            name: ClusterName::new(authority.to_string()),
            discovery: Discovery::Service {
                host: authority.host().into(),
                port: Some(authority.port()),
            },
            subset: BTreeMap::new(),
            policy: ClusterPolicy::default(),
            port_policies: BTreeMap::new(),
        }
    }

    /// The endpoint set named `name`, with the default policy.
    pub fn named(name: &str) -> Self {
        Self {
            name: ClusterName::new(name),
            discovery: Discovery::Named(name.into()),
            subset: BTreeMap::new(),
            policy: ClusterPolicy::default(),
            port_policies: BTreeMap::new(),
        }
    }

    /// A cluster routes name whose definition is missing, for `reason`
    /// ([`Discovery::Missing`]).
    pub fn missing(name: &str, reason: &str) -> Self {
        Self {
            discovery: Discovery::Missing(reason.into()),
            ..Self::named(name)
        }
    }

    /// The port of the service a request sent to `request_port` reaches:
    /// the cluster's own, else the request's; `None` for a named endpoint
    /// set, whose endpoints carry their ports.
    pub fn port_for(&self, request_port: u16) -> Option<u16> {
        match &self.discovery {
            Discovery::Service { port, .. } => Some(port.unwrap_or(request_port)),
            Discovery::Named(_) | Discovery::Missing(_) => None,
        }
    }

    /// The policy of requests sent to `request_port`: its entry in
    /// `port_policies` when the cluster is a service without a port of its
    /// own and there is one, else `policy`.
    ///
    /// ```
    /// use mesh_core::{Cluster, Discovery};
    /// use mesh_core::policy::LoadBalancer;
    ///
    /// let mut c = Cluster::service(&"reviews:9080".parse()?);
    /// c.discovery = Discovery::Service { host: "reviews".into(), port: None };
    /// c.port_policies.entry(9080).or_default().load_balancer = LoadBalancer::Random;
    /// assert_eq!(c.policy_for(9080).load_balancer, LoadBalancer::Random);
    /// assert_eq!(c.policy_for(8080), &c.policy);
    /// # Ok::<(), mesh_core::InvalidAuthority>(())
    /// ```
    pub fn policy_for(&self, request_port: u16) -> &ClusterPolicy {
        match &self.discovery {
            Discovery::Service { port: None, .. } => self
                .port_policies
                .get(&request_port)
                .unwrap_or(&self.policy),
            _ => &self.policy,
        }
    }

    /// What discovery resolves for a request sent to `request_port`.
    pub fn target(&self, request_port: u16) -> Result<ResolveTarget, InvalidAuthority> {
        match &self.discovery {
            Discovery::Service { host, port } => {
                Authority::new(host, port.unwrap_or(request_port)).map(ResolveTarget::Authority)
            }
            Discovery::Named(name) => Ok(ResolveTarget::Named(name.clone())),
            // Never asked: requests to it fail before discovery.
            Discovery::Missing(_) => Ok(ResolveTarget::Named(self.name.as_str().into())),
        }
    }

    /// Whether `endpoint` belongs to the cluster's subset.
    pub fn selects(&self, endpoint: &Endpoint) -> bool {
        self.subset
            .iter()
            .all(|(k, v)| endpoint.labels.get(k) == Some(v))
    }
}

impl fmt::Display for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name.as_str())
    }
}

/// The cluster name Istio gives a service port and subset:
/// `outbound|9080|v1|reviews.default.svc.cluster.local`; the port is empty
/// when not known.
pub fn istio_cluster_name(host: &str, port: Option<u16>, subset: Option<&str>) -> ClusterName {
    let port = port.map(|p| p.to_string()).unwrap_or_default();
    ClusterName::new(format!("outbound|{port}|{}|{host}", subset.unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_policies_apply_only_without_a_port_of_its_own() {
        use crate::policy::LoadBalancer;
        let mut c = Cluster::service(&"reviews:9080".parse().unwrap());
        let random = ClusterPolicy {
            load_balancer: LoadBalancer::Random,
            ..ClusterPolicy::default()
        };
        c.port_policies.insert(9080, random.clone());
        assert_eq!(c.policy_for(9080), &c.policy);
        c.discovery = Discovery::Service {
            host: "reviews".into(),
            port: None,
        };
        assert_eq!(c.policy_for(9080), &random);
        assert_eq!(c.policy_for(9081), &c.policy);
    }

    #[test]
    fn subsets_select_by_labels() {
        let mut c = Cluster::service(&"reviews:9080".parse().unwrap());
        c.subset.insert("version".into(), "v2".into());
        let mut e = Endpoint::new("127.0.0.1:1".parse().unwrap());
        assert!(!c.selects(&e));
        e.labels.insert("version".into(), "v2".into());
        e.labels.insert("app".into(), "reviews".into());
        assert!(c.selects(&e));
        assert_eq!(c.target(1).unwrap().to_string(), "reviews:9080");
        assert_eq!(c.port_for(1), Some(9080));
        c.discovery = Discovery::Service {
            host: "reviews".into(),
            port: None,
        };
        assert_eq!(c.target(1).unwrap().to_string(), "reviews:1");
        assert_eq!(c.port_for(1), Some(1));
        let named = Cluster::named("outbound|9080|v2|reviews");
        assert_eq!(named.port_for(1), None);
        assert_eq!(
            named.target(1).unwrap(),
            ResolveTarget::Named("outbound|9080|v2|reviews".into())
        );
        assert_eq!(
            istio_cluster_name("reviews.default.svc.cluster.local", Some(9080), Some("v1"))
                .as_str(),
            "outbound|9080|v1|reviews.default.svc.cluster.local"
        );
    }
}
