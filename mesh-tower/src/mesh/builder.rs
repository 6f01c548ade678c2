//! [`MeshBuilder`]: what a [`Mesh`] discovers with and who it is, given in
//! code or read from the environment.

use std::sync::Arc;

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
        match mesh_xds::Bootstrap::from_env() {
            Ok(bootstrap) => Ok(Self::default().bootstrap(bootstrap)),
            Err(mesh_xds::bootstrap::BootstrapError::Unset) => {
                Ok(Self::default().dns(mesh_dns::DnsConfig::from_system()?))
            }
            Err(e) => Err(e.into()),
        }
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
                #[cfg(feature = "xds")]
                ads,
            }),
        })
    }
}
