//! [`DnsConfig`]: where DNS discovery sends its queries, how it expands short
//! names, and how often it refreshes.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
    ResolverOpts,
};
use hickory_resolver::proto::rr::Name;
use mesh_core::KubernetesNames;

use crate::{DnsError, names};

/// How DNS discovery resolves targets.
///
/// The defaults follow a Kubernetes pod in the `default` namespace: the
/// system's name servers, kube-dns's search domains with `ndots:5`, and
/// refreshes driven by the records' TTLs, clamped to 5 s ..= 300 s.
///
/// ```
/// use std::time::Duration;
/// use mesh_dns::DnsConfig;
///
/// let config = DnsConfig {
///     name_servers: vec!["10.96.0.10:53".parse().unwrap()],
///     min_ttl: Duration::from_secs(1),
///     ..DnsConfig::kubernetes("bookinfo", "cluster.local")
/// };
/// assert_eq!(config.search_domains[0], "bookinfo.svc.cluster.local");
/// assert_eq!(config.ndots, 5);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsConfig {
    /// Name servers to query (UDP, falling back to TCP for truncated
    /// answers), in order. Empty, the default: the name servers of the
    /// system's configuration (`/etc/resolv.conf`), read when the resolver
    /// is built.
    pub name_servers: Vec<SocketAddr>,
    /// Domains a name is also tried in, most specific first; see
    /// [`ndots`](Self::ndots) for when the name as written is tried.
    /// Default: kube-dns's for the `default` namespace
    /// (`default.svc.cluster.local`, `svc.cluster.local`, `cluster.local`).
    pub search_domains: Vec<String>,
    /// A name with at least this many dots is tried as written before the
    /// search domains; a name with fewer is tried in the search domains
    /// first and as written last (resolv.conf's `ndots`). Default 5, as
    /// kube-dns sets it, so `reviews` is tried as
    /// `reviews.default.svc.cluster.local` first.
    pub ndots: usize,
    /// The shortest time an answer is used before it is refreshed, whatever
    /// its TTL. Must be greater than zero. Default 5 s.
    pub min_ttl: Duration,
    /// The longest time an answer is used before it is refreshed, whatever
    /// its TTL. Default 300 s.
    pub max_ttl: Duration,
    /// How long to wait before trying again after a failed lookup. Must be
    /// greater than zero. Default 5 s.
    pub failure_refresh: Duration,
    /// Whether a host starting with `_` (`_http._tcp.reviews...`) is looked
    /// up as an SRV name, taking ports and weights from the SRV records.
    /// Default `true`.
    pub srv: bool,
    /// How long to wait for one name server's answer. Default 5 s.
    pub query_timeout: Duration,
    /// How many times a failed query is retried (resolv.conf's `attempts`).
    /// Default 2.
    pub query_attempts: usize,
    /// Whether the system hosts file (`/etc/hosts`) answers before DNS, as
    /// it does for the C library. Default `true`.
    pub hosts_file: bool,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            name_servers: Vec::new(),
            search_domains: KubernetesNames::default().search_domains(),
            ndots: 5,
            min_ttl: Duration::from_secs(5),
            max_ttl: Duration::from_secs(300),
            failure_refresh: Duration::from_secs(5),
            srv: true,
            query_timeout: Duration::from_secs(5),
            query_attempts: 2,
            hosts_file: true,
        }
    }
}

impl DnsConfig {
    /// The defaults, with the search domains kube-dns gives a pod in
    /// `namespace` of a cluster whose domain is `cluster_domain`.
    ///
    /// ```
    /// let config = mesh_dns::DnsConfig::kubernetes("bookinfo", "example.internal");
    /// assert_eq!(
    ///     config.search_domains,
    ///     ["bookinfo.svc.example.internal", "svc.example.internal", "example.internal"]
    /// );
    /// ```
    pub fn kubernetes(namespace: impl Into<String>, cluster_domain: impl Into<String>) -> Self {
        let names = KubernetesNames {
            namespace: namespace.into(),
            cluster_domain: cluster_domain.into(),
        };
        Self {
            search_domains: names.search_domains(),
            ..Self::default()
        }
    }

    /// The defaults, with the name servers, search domains, `ndots`,
    /// `timeout` and `attempts` of the system's configuration
    /// (`/etc/resolv.conf` on Unix): what a process in a pod sees.
    pub fn from_system() -> Result<Self, DnsError> {
        let (config, opts) =
            hickory_resolver::system_conf::read_system_conf().map_err(DnsError::system_config)?;
        Ok(Self::from_hickory(&config, &opts))
    }

    /// The defaults, overridden by a hickory system configuration.
    fn from_hickory(config: &ResolverConfig, opts: &ResolverOpts) -> Self {
        let name_servers = config
            .name_servers()
            .iter()
            .map(|ns| {
                let port = ns.connections.first().map_or(53, |c| c.port);
                SocketAddr::new(ns.ip, port)
            })
            .collect();
        let mut search: Vec<String> = config.search().iter().map(names::display).collect();
        if search.is_empty() {
            search.extend(config.domain().map(names::display));
        }
        Self {
            name_servers,
            search_domains: search,
            ndots: opts.ndots,
            query_timeout: opts.timeout,
            query_attempts: opts.attempts,
            ..Self::default()
        }
    }

    /// Checks the values that would make the refresh loop misbehave.
    pub(crate) fn validate(&self) -> Result<(), DnsError> {
        if self.min_ttl.is_zero() {
            return Err(DnsError::InvalidConfig("min_ttl must be greater than zero"));
        }
        if self.max_ttl < self.min_ttl {
            return Err(DnsError::InvalidConfig(
                "max_ttl must not be less than min_ttl",
            ));
        }
        if self.failure_refresh.is_zero() {
            return Err(DnsError::InvalidConfig(
                "failure_refresh must be greater than zero",
            ));
        }
        if self.query_timeout.is_zero() {
            return Err(DnsError::InvalidConfig(
                "query_timeout must be greater than zero",
            ));
        }
        Ok(())
    }

    /// The search domains as fully qualified names.
    pub(crate) fn search_names(&self) -> Result<Vec<Name>, DnsError> {
        self.search_domains
            .iter()
            .map(|d| search_domain(d))
            .collect()
    }

    /// The hickory configuration for this config. Reads the system's name
    /// servers when none are configured.
    pub(crate) fn to_hickory(&self) -> Result<(ResolverConfig, ResolverOpts), DnsError> {
        self.validate()?;
        let name_servers = if self.name_servers.is_empty() {
            let (system, _) = hickory_resolver::system_conf::read_system_conf()
                .map_err(DnsError::system_config)?;
            system.name_servers().to_vec()
        } else {
            self.name_servers.iter().map(|a| name_server(*a)).collect()
        };
        // Search domains are applied by `HickoryLookup`, which asks hickory
        // for fully qualified names only.
        let config = ResolverConfig::from_parts(None, Vec::new(), name_servers);

        let mut opts = ResolverOpts::default();
        opts.timeout = self.query_timeout;
        opts.attempts = self.query_attempts;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.use_hosts_file = if self.hosts_file {
            ResolveHosts::Always
        } else {
            ResolveHosts::Never
        };
        // No cache of hickory's: each target's refresh task is the cache,
        // asking again when the answer's TTL runs out, on the runtime's
        // clock. A second cache would answer a refresh from memory (a
        // deleted name would seem to live on) and keep time by another
        // clock.
        opts.cache_size = 0;
        Ok((config, opts))
    }
}

fn name_server(addr: SocketAddr) -> NameServerConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
}

fn search_domain(domain: &str) -> Result<Name, DnsError> {
    let bare = domain.strip_suffix('.').unwrap_or(domain);
    if bare.is_empty() {
        return Err(DnsError::InvalidConfig("a search domain is empty"));
    }
    names::fqdn(bare).map_err(|e| DnsError::search_domain(domain, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_kube_dns() {
        let c = DnsConfig::default();
        assert_eq!(
            c.search_domains,
            [
                "default.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local"
            ]
        );
        assert_eq!(c.ndots, 5);
        assert_eq!(c.min_ttl, Duration::from_secs(5));
        assert_eq!(c.max_ttl, Duration::from_secs(300));
        assert_eq!(c.failure_refresh, Duration::from_secs(5));
        assert!(c.srv);
        assert!(c.name_servers.is_empty());
    }

    #[test]
    fn explicit_name_servers_keep_their_port() {
        let c = DnsConfig {
            name_servers: vec!["127.0.0.1:5353".parse().unwrap()],
            ..DnsConfig::default()
        };
        let (config, opts) = c.to_hickory().unwrap();
        let ns = &config.name_servers()[0];
        assert_eq!(ns.ip.to_string(), "127.0.0.1");
        assert!(ns.connections.iter().all(|c| c.port == 5353));
        assert_eq!(ns.connections.len(), 2);
        let search = c.search_names().unwrap();
        assert_eq!(search.len(), 3);
        assert!(search.iter().all(Name::is_fqdn));
        assert_eq!(opts.cache_size, 0);
    }

    #[test]
    fn rejects_values_that_would_spin() {
        let base = DnsConfig {
            name_servers: vec!["127.0.0.1:53".parse().unwrap()],
            ..DnsConfig::default()
        };
        for (config, words) in [
            (
                DnsConfig {
                    min_ttl: Duration::ZERO,
                    ..base.clone()
                },
                "min_ttl",
            ),
            (
                DnsConfig {
                    max_ttl: Duration::from_secs(1),
                    ..base.clone()
                },
                "max_ttl",
            ),
            (
                DnsConfig {
                    failure_refresh: Duration::ZERO,
                    ..base.clone()
                },
                "failure_refresh",
            ),
            (
                DnsConfig {
                    search_domains: vec![".".into()],
                    ..base.clone()
                },
                "search domain is empty",
            ),
        ] {
            let err = config
                .to_hickory()
                .and_then(|_| config.search_names())
                .unwrap_err()
                .to_string();
            assert!(err.contains(words), "{err}");
        }
    }

    #[cfg(all(unix, not(any(target_os = "android", target_vendor = "apple"))))]
    #[test]
    fn reads_a_pod_resolv_conf() {
        let text = "search bookinfo.svc.cluster.local svc.cluster.local cluster.local\n\
                    nameserver 10.96.0.10\n\
                    options ndots:5 timeout:2 attempts:3\n";
        let (config, opts) = hickory_resolver::system_conf::parse_resolv_conf(text).unwrap();
        let c = DnsConfig::from_hickory(&config, &opts);
        assert_eq!(c.name_servers, ["10.96.0.10:53".parse().unwrap()]);
        assert_eq!(
            c.search_domains,
            [
                "bookinfo.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local"
            ]
        );
        assert_eq!(c.ndots, 5);
        assert_eq!(c.query_timeout, Duration::from_secs(2));
        assert_eq!(c.query_attempts, 3);
    }
}
