//! What a sidecar proxy listens on when nothing redirects traffic to it
//! (Istio's `Sidecar` with `captureMode: NONE`): ingress ports, each
//! handing requests to the workload at an address of its own, and egress
//! listeners, each reaching the hosts it selects.

use std::net::{IpAddr, SocketAddr};

/// A sidecar's listeners.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SidecarListeners {
    /// Ports it takes requests for its workload on.
    pub ingress: Vec<Ingress>,
    /// What it sends its workload's requests to; every service on every
    /// port when empty.
    pub egress: Vec<Egress>,
}

/// A port a sidecar takes requests on for its workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ingress {
    /// The port.
    pub port: u16,
    /// The port's name, as the Sidecar writes it.
    pub name: String,
    /// The address it binds; the workload's own when `None`.
    pub bind: Option<IpAddr>,
    /// Where the workload takes the requests.
    pub endpoint: SocketAddr,
}

/// A listener of a sidecar's outbound side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Egress {
    /// The port; every port of the hosts when `None`.
    pub port: Option<u16>,
    /// The address it binds; the workload's own when `None`.
    pub bind: Option<IpAddr>,
    /// The hosts it reaches.
    pub hosts: Vec<HostSelector>,
}

/// Hosts of the registry, by namespace and name (Istio's
/// `namespace/dnsName`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSelector {
    /// The namespace the host's service is in; `None` for any.
    pub namespace: Option<String>,
    /// The host: `*`, `*.suffix` or a name.
    pub host: String,
}

impl HostSelector {
    /// Whether it selects the service `hostname` of `namespace`.
    ///
    /// ```
    /// use mesh_core::sidecar::HostSelector;
    /// let any_default = HostSelector { namespace: Some("default".into()), host: "*".into() };
    /// assert!(any_default.selects("default", "reviews.default.svc.cluster.local"));
    /// assert!(!any_default.selects("prod", "reviews.prod.svc.cluster.local"));
    /// let example = HostSelector { namespace: None, host: "*.example.com".into() };
    /// assert!(example.selects("web", "api.example.com"));
    /// ```
    pub fn selects(&self, namespace: &str, hostname: &str) -> bool {
        let in_namespace = self.namespace.as_deref().is_none_or(|ns| ns == namespace);
        let host = match self.host.strip_prefix('*') {
            None => self.host == hostname,
            Some(suffix) => hostname.ends_with(suffix),
        };
        in_namespace && host
    }
}

impl Egress {
    /// Whether it reaches the service `hostname` of `namespace`.
    pub fn selects(&self, namespace: &str, hostname: &str) -> bool {
        self.hosts.iter().any(|h| h.selects(namespace, hostname))
    }
}
