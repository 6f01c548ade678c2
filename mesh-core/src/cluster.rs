//! Clusters as routes name them: a service (host and, where known, port),
//! an optional subset of its endpoints selected by labels (Istio's
//! DestinationRule `subsets`), and the policy of the whole.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::name::InvalidAuthority;
use crate::policy::ClusterPolicy;
use crate::route::ClusterName;
use crate::{Authority, Endpoint};

/// One cluster: where its endpoints come from and how they are used.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// Its name, as routes refer to it.
    pub name: ClusterName,
    /// The service host discovery is asked about, e.g.
    /// `reviews.default.svc.cluster.local`.
    pub host: Arc<str>,
    /// The service port; `None` takes the port of each request's authority
    /// (an Istio destination written without a port).
    pub port: Option<u16>,
    /// Labels an endpoint must carry to belong (Istio's subset `labels`);
    /// empty for the whole service.
    pub subset: BTreeMap<String, String>,
    /// Its policies.
    pub policy: ClusterPolicy,
}

impl Cluster {
    /// The whole of the service at `authority`, named after it, with the
    /// default policy.
    pub fn service(authority: &Authority) -> Self {
        Self {
            name: ClusterName::new(authority.to_string()),
            host: authority.host().into(),
            port: Some(authority.port()),
            subset: BTreeMap::new(),
            policy: ClusterPolicy::default(),
        }
    }

    /// The authority discovery resolves for a request sent to
    /// `request_port`.
    pub fn target(&self, request_port: u16) -> Result<Authority, InvalidAuthority> {
        Authority::new(&self.host, self.port.unwrap_or(request_port))
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
    fn subsets_select_by_labels() {
        let mut c = Cluster::service(&"reviews:9080".parse().unwrap());
        c.subset.insert("version".into(), "v2".into());
        let mut e = Endpoint::new("127.0.0.1:1".parse().unwrap());
        assert!(!c.selects(&e));
        e.labels.insert("version".into(), "v2".into());
        e.labels.insert("app".into(), "reviews".into());
        assert!(c.selects(&e));
        assert_eq!(c.target(1).unwrap().to_string(), "reviews:9080");
        c.port = None;
        assert_eq!(c.target(1).unwrap().to_string(), "reviews:1");
        assert_eq!(
            istio_cluster_name("reviews.default.svc.cluster.local", Some(9080), Some("v1"))
                .as_str(),
            "outbound|9080|v1|reviews.default.svc.cluster.local"
        );
    }
}
