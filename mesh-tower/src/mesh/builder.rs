//! [`MeshBuilder`]: what a [`Mesh`] discovers with and who it is, given in
//! code or read from the environment.

use std::sync::Arc;

use mesh_core::telemetry::WorkloadMetadata;
use mesh_core::{Resolve, StaticResolve};

use super::{Inner, Mesh};
use crate::tls::IdentitySource;

/// Why a mesh could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    /// The xDS bootstrap could not be read.
    #[cfg(feature = "xds")]
    #[error(transparent)]
    Bootstrap(#[from] mesh_xds::bootstrap::BootstrapError),
    /// The ADS client could not be started.
    #[cfg(feature = "xds")]
    #[error(transparent)]
    Ads(#[from] mesh_xds::ads::AdsClientError),
    /// DNS discovery could not be set up.
    #[cfg(feature = "dns")]
    #[error(transparent)]
    Dns(#[from] mesh_dns::DnsError),
    /// The bootstrap's certificate provider `default` is not usable.
    #[error("{0}")]
    Identity(&'static str),
}

/// Builds a [`Mesh`]: discovery (a static list unless given), an optional
/// control plane and an optional identity.
#[derive(Default)]
pub struct MeshBuilder {
    resolve: Option<Arc<dyn Resolve>>,
    identity: Option<IdentitySource>,
    workload: Option<WorkloadMetadata>,
    access_log: Option<crate::access_log::AccessLog>,
    #[cfg(feature = "xds")]
    bootstrap: Option<mesh_xds::Bootstrap>,
    #[cfg(feature = "dns")]
    dns: Option<mesh_dns::DnsConfig>,
}

impl std::fmt::Debug for MeshBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshBuilder")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl MeshBuilder {
    /// What [`Mesh::from_env`] reads: the xDS bootstrap the environment
    /// names, else the system's DNS configuration.
    #[cfg(all(feature = "xds", feature = "dns"))]
    pub fn from_env() -> Result<Self, MeshError> {
        let mut builder = match mesh_xds::Bootstrap::from_env() {
            Ok(bootstrap) => Self::default().bootstrap(bootstrap),
            Err(mesh_xds::bootstrap::BootstrapError::Unset) => {
                Self::default().dns(mesh_dns::DnsConfig::from_system()?)
            }
            Err(e) => return Err(e.into()),
        };
        builder.workload = workload_from_env(|name| std::env::var(name).ok());
        Ok(builder)
    }

    /// Who the workload is, for its peers and its metrics: told to the
    /// servers of the clusters its clients are configured with, and the
    /// `destination_*` labels of its servers' metrics.
    pub fn workload(mut self, workload: WorkloadMetadata) -> Self {
        self.workload = Some(workload);
        self
    }

    /// Writes a line for each request its servers and reported clients
    /// record to `log` ([`access_log`](crate::access_log)).
    pub fn access_log(mut self, log: crate::access_log::AccessLog) -> Self {
        self.access_log = Some(log);
        self
    }

    /// Targets resolved by `resolve` (for a control plane's LOGICAL_DNS
    /// clusters, the resolver they are asked of).
    pub fn resolve(mut self, resolve: impl Resolve) -> Self {
        self.resolve = Some(Arc::new(resolve));
        self
    }

    /// Targets resolved by DNS as `config` says (feature `dns`).
    #[cfg(feature = "dns")]
    pub fn dns(mut self, config: mesh_dns::DnsConfig) -> Self {
        self.dns = Some(config);
        self
    }

    /// Routes, clusters and endpoints, and servers' inbound policies, from
    /// the control plane `bootstrap` names (feature `xds`); the identity
    /// from its certificate provider `default` unless
    /// [`identity`](Self::identity) gives one.
    #[cfg(feature = "xds")]
    pub fn bootstrap(mut self, bootstrap: mesh_xds::Bootstrap) -> Self {
        self.bootstrap = Some(bootstrap);
        self
    }

    /// The workload's identity, presented by its clients and servers.
    pub fn identity(mut self, identity: impl Into<IdentitySource>) -> Self {
        self.identity = Some(identity.into());
        self
    }

    /// The mesh; with a control plane, its ADS client started (within a
    /// Tokio runtime).
    pub fn build(self) -> Result<Mesh, MeshError> {
        #[cfg_attr(not(feature = "xds"), allow(unused_mut))]
        let mut identity = self.identity;
        #[cfg(feature = "xds")]
        let ads = match &self.bootstrap {
            Some(bootstrap) => {
                if identity.is_none() {
                    identity = crate::tls::bootstrap_identity(bootstrap)
                        .transpose()
                        .map_err(MeshError::Identity)?;
                }
                Some(mesh_xds::ads::AdsClient::start(bootstrap)?)
            }
            None => None,
        };
        let resolve = match self.resolve {
            Some(resolve) => resolve,
            #[cfg(feature = "dns")]
            None if self.dns.is_some() => {
                let dns = self.dns.expect("checked");
                Arc::new(mesh_dns::DnsResolve::new(dns)?)
            }
            None => Arc::new(StaticResolve::default()),
        };
        Ok(Mesh {
            inner: Arc::new(Inner {
                resolve,
                identity,
                workload: self.workload,
                access_log: self.access_log,
                metrics: crate::metrics::IstioMetrics::default(),
                #[cfg(feature = "xds")]
                ads,
            }),
        })
    }
}

/// The workload as Istio's injector describes it to the pod's containers:
/// `POD_NAME`, `POD_NAMESPACE`, `ISTIO_META_WORKLOAD_NAME`,
/// `ISTIO_META_CLUSTER_ID` and the labels in `ISTIO_METAJSON_LABELS`;
/// `None` without a pod name and namespace.
#[cfg_attr(not(all(feature = "xds", feature = "dns")), allow(dead_code))]
fn workload_from_env(var: impl Fn(&str) -> Option<String>) -> Option<WorkloadMetadata> {
    let (name, namespace) = (var("POD_NAME")?, var("POD_NAMESPACE")?);
    let labels: std::collections::BTreeMap<String, String> = var("ISTIO_METAJSON_LABELS")
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    let workload = var("ISTIO_META_WORKLOAD_NAME").unwrap_or_else(|| name.clone());
    Some(WorkloadMetadata {
        cluster_id: var("ISTIO_META_CLUSTER_ID").map(Into::into),
        ..WorkloadMetadata::from_labels(&name, &namespace, &workload, &labels)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_is_read_as_istios_injector_describes_it() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let w = workload_from_env(env(&[
            ("POD_NAME", "reviews-v2-5f7b-x"),
            ("POD_NAMESPACE", "default"),
            ("ISTIO_META_WORKLOAD_NAME", "reviews-v2"),
            ("ISTIO_META_CLUSTER_ID", "Kubernetes"),
            (
                "ISTIO_METAJSON_LABELS",
                r#"{"app":"reviews","version":"v2"}"#,
            ),
        ]))
        .unwrap();
        assert_eq!(w.workload_name.as_deref(), Some("reviews-v2"));
        assert_eq!(w.canonical_service.as_deref(), Some("reviews"));
        assert_eq!(w.canonical_revision.as_deref(), Some("v2"));
        assert_eq!(w.cluster_id.as_deref(), Some("Kubernetes"));
        assert!(workload_from_env(env(&[("POD_NAME", "p")])).is_none());
    }
}
