//! [`DnsResolve`]: the mesh's [`Resolve`] over DNS.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use mesh_core::{Authority, Endpoint, EndpointSet, Resolution, Resolve};

use crate::hickory::HickoryLookup;
use crate::refresh::{Targets, Timing};
use crate::{DnsConfig, DnsError};

/// Discovery over DNS: a target's endpoints are its host's A and AAAA
/// records with the target's port, or, for a host starting with `_`, its
/// SRV records' targets with their ports and weights.
///
/// Each target is refreshed by one background task shared by all its
/// [`Resolution`]s, when the answer's TTL (clamped to
/// [`min_ttl`](DnsConfig::min_ttl) ..= [`max_ttl`](DnsConfig::max_ttl)) runs
/// out; the task stops when the last resolution is dropped. A target that
/// resolved once keeps its last endpoints through refreshes that get no
/// answer, and loses them when DNS answers that the name has no records;
/// one without endpoints is
/// [`Failed`](mesh_core::resolve::ResolveState::Failed) with the cause, and
/// is retried every
/// [`failure_refresh`](DnsConfig::failure_refresh) until it resolves. An IP
/// address target resolves at once, without DNS.
///
/// `resolve` must be called inside a tokio runtime, or the resolver must
/// have been built inside one; otherwise the resolution fails with an error
/// saying so.
///
/// ```
/// use mesh_core::Resolve;
/// use mesh_dns::{DnsConfig, DnsResolve};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dns = DnsResolve::new(DnsConfig {
///     name_servers: vec!["127.0.0.1:53".parse()?],
///     ..DnsConfig::default()
/// })?;
/// // An IP address needs no DNS.
/// let set = dns.resolve(&"10.0.0.7:9080".parse()?).ready().await?;
/// assert_eq!(set.iter().next().unwrap().addr, "10.0.0.7:9080".parse()?);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct DnsResolve {
    targets: Arc<Targets<HickoryLookup>>,
    config: Arc<DnsConfig>,
}

impl DnsResolve {
    /// A resolver for `config`. Reads the system's name servers when
    /// `config` lists none.
    ///
    /// Fails when the configuration is invalid (a zero `min_ttl` or
    /// `failure_refresh`, `max_ttl` below `min_ttl`, a malformed search
    /// domain) or the system configuration cannot be read.
    pub fn new(config: DnsConfig) -> Result<Self, DnsError> {
        let lookup = HickoryLookup::new(&config)?;
        let timing = Timing {
            min_ttl: config.min_ttl,
            max_ttl: config.max_ttl,
            failure_refresh: config.failure_refresh,
        };
        Ok(Self {
            targets: Targets::new(lookup, timing),
            config: Arc::new(config),
        })
    }

    /// A resolver configured like the system's own (`/etc/resolv.conf`):
    /// see [`DnsConfig::from_system`].
    ///
    /// ```no_run
    /// # fn main() -> Result<(), mesh_dns::DnsError> {
    /// let dns = mesh_dns::DnsResolve::from_system()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_system() -> Result<Self, DnsError> {
        Self::new(DnsConfig::from_system()?)
    }

    /// The configuration this resolver was built from.
    pub fn config(&self) -> &DnsConfig {
        &self.config
    }
}

impl Resolve for DnsResolve {
    fn resolve(&self, target: &Authority) -> Resolution {
        match target.ip() {
            Some(ip) => Resolution::fixed(
                target.clone(),
                EndpointSet::new([Endpoint::new(SocketAddr::new(ip, target.port()))]),
            ),
            None => self.targets.watch(target),
        }
    }
}

impl fmt::Debug for DnsResolve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsResolve")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
