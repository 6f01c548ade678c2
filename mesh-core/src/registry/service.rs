//! A service of the registry: its host name, ports and how its endpoints
//! are found, as Istio's service model (`model.Service`) holds it for a
//! Kubernetes Service or a ServiceEntry host.

use std::collections::BTreeMap;
use std::fmt;

use super::Instance;

/// A service: a host name clients call, its ports, and the instances that
/// serve it.
///
/// Its endpoints are the [`Instance`]s of its namespace whose labels carry
/// every label of `selector` (as a Kubernetes Service selects pods and a
/// ServiceEntry's `workloadSelector` selects WorkloadEntries), and its
/// inline `endpoints` (a ServiceEntry's). An empty selector selects no
/// instance, as in Kubernetes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// The fully qualified host name: `reviews.default.svc.cluster.local`
    /// for a Kubernetes Service, a ServiceEntry's host as written.
    pub hostname: String,
    /// The namespace it is defined in.
    pub namespace: String,
    /// Its ports.
    pub ports: Vec<ServicePort>,
    /// Labels an instance of its namespace must carry to serve it; empty
    /// selects none.
    pub selector: BTreeMap<String, String>,
    /// Endpoints written with the service (a ServiceEntry's `endpoints`),
    /// whatever their labels.
    pub endpoints: Vec<Instance>,
    /// How clients find its endpoints.
    pub resolution: Resolution,
    /// Its virtual IP addresses or CIDR ranges (a ServiceEntry's
    /// `addresses`, a Kubernetes Service's `clusterIP`); informational.
    pub addresses: Vec<String>,
    /// The namespaces that may see it: all when empty or with `*`, its own
    /// with `.`, and those listed (Istio's `exportTo`).
    pub export_to: Vec<String>,
    /// Where it was defined, for messages, such as
    /// `ServiceEntry default/api (api.yaml, document 2)`.
    pub origin: String,
}

impl Service {
    /// A service in `namespace` with no ports, no selector and no
    /// endpoints, resolved [`Static`](Resolution::Static)ally, seen by
    /// every namespace.
    pub fn new(hostname: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            hostname: hostname.into(),
            namespace: namespace.into(),
            ports: Vec::new(),
            selector: BTreeMap::new(),
            endpoints: Vec::new(),
            resolution: Resolution::Static,
            addresses: Vec::new(),
            export_to: Vec::new(),
            origin: String::new(),
        }
    }

    /// Its port numbered `number`.
    pub fn port(&self, number: u16) -> Option<&ServicePort> {
        self.ports.iter().find(|p| p.number == number)
    }

    /// Whether `instance` serves it through its selector: it is of the
    /// service's namespace and carries every label of a non-empty
    /// selector. Inline `endpoints` are not asked.
    pub fn selects(&self, instance: &Instance) -> bool {
        !self.selector.is_empty()
            && instance.namespace == self.namespace
            && self
                .selector
                .iter()
                .all(|(k, v)| instance.labels.get(k) == Some(v))
    }
}

/// A port of a service (Istio's `ServicePort`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    /// The port clients call.
    pub number: u16,
    /// Its name, by which an instance may give a port of its own for it
    /// ([`Instance::ports`]); may be empty.
    pub name: String,
    /// What it speaks.
    pub protocol: Protocol,
    /// The port the instances listen on, when not `number` and the
    /// instance gives none of its own.
    pub target_port: Option<u16>,
}

impl ServicePort {
    /// The port of `instance` that serves this one: the instance's own
    /// for this port's name, else `target_port`, else `number` (Istio's
    /// order for WorkloadEntries).
    pub fn instance_port(&self, instance: &Instance) -> u16 {
        (!self.name.is_empty())
            .then(|| instance.ports.get(&self.name).copied())
            .flatten()
            .or(self.target_port)
            .unwrap_or(self.number)
    }
}

/// The protocol of a port, as Istio names and reads it (its `protocol`
/// package): case-insensitive names, anything else
/// [`Unsupported`](Protocol::Unsupported), which Istio sniffs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `HTTP`: HTTP/1.1 (or HTTP/2 when sniffed).
    Http,
    /// `HTTP2`.
    Http2,
    /// `HTTP_PROXY`.
    HttpProxy,
    /// `HTTPS`: TLS carrying HTTP, terminated by the application.
    Https,
    /// `GRPC`.
    Grpc,
    /// `GRPC-Web`.
    GrpcWeb,
    /// `TCP`.
    Tcp,
    /// `TLS`.
    Tls,
    /// `UDP`.
    Udp,
    /// `Mongo`.
    Mongo,
    /// `Redis`.
    Redis,
    /// `MySQL`.
    MySql,
    /// Not named or not known: Istio detects the protocol of each
    /// connection. The default.
    #[default]
    Unsupported,
}

impl Protocol {
    /// The protocol named `name`, case-insensitively (Istio's
    /// `protocol.Parse`).
    ///
    /// ```
    /// use mesh_core::registry::Protocol;
    /// assert_eq!(Protocol::parse("grpc"), Protocol::Grpc);
    /// assert_eq!(Protocol::parse("HTTP2"), Protocol::Http2);
    /// assert_eq!(Protocol::parse("thrift"), Protocol::Unsupported);
    /// ```
    pub fn parse(name: &str) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "http" => Self::Http,
            "http2" => Self::Http2,
            "http_proxy" => Self::HttpProxy,
            "https" => Self::Https,
            "grpc" => Self::Grpc,
            "grpc-web" => Self::GrpcWeb,
            "tcp" => Self::Tcp,
            "tls" => Self::Tls,
            "udp" => Self::Udp,
            "mongo" => Self::Mongo,
            "redis" => Self::Redis,
            "mysql" => Self::MySql,
            _ => Self::Unsupported,
        }
    }

    /// Istio's name of it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "HTTP",
            Self::Http2 => "HTTP2",
            Self::HttpProxy => "HTTP_PROXY",
            Self::Https => "HTTPS",
            Self::Grpc => "GRPC",
            Self::GrpcWeb => "GRPC-Web",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
            Self::Udp => "UDP",
            Self::Mongo => "Mongo",
            Self::Redis => "Redis",
            Self::MySql => "MySQL",
            Self::Unsupported => "UnsupportedProtocol",
        }
    }

    /// Whether it is HTTP in plain text (Istio's `IsHTTP`): HTTP, HTTP/2,
    /// HTTP_PROXY, gRPC and gRPC-Web.
    pub fn is_http(self) -> bool {
        matches!(
            self,
            Self::Http | Self::Http2 | Self::HttpProxy | Self::Grpc | Self::GrpcWeb
        )
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How clients find a service's endpoints (a ServiceEntry's
/// `resolution`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// `STATIC`: the endpoints are the addresses the registry lists. A
    /// Kubernetes Service with a cluster IP is resolved so.
    #[default]
    Static,
    /// `DNS`: the endpoints' addresses, or the host itself when it lists
    /// none, are resolved by DNS, and every address answered is used.
    Dns,
    /// `DNS_ROUND_ROBIN`: as `DNS`, but one address answered is used at a
    /// time.
    DnsRoundRobin,
    /// `NONE`: requests go to the address the application asked for. A
    /// headless Kubernetes Service (`clusterIP: None`) is resolved so.
    None,
}

impl Resolution {
    /// Istio's name of it: `STATIC`, `DNS`, `DNS_ROUND_ROBIN` or `NONE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "STATIC",
            Self::Dns => "DNS",
            Self::DnsRoundRobin => "DNS_ROUND_ROBIN",
            Self::None => "NONE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(ns: &str, labels: &[(&str, &str)]) -> Instance {
        let mut i = Instance::new("10.0.0.1");
        i.namespace = ns.into();
        i.labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        i
    }

    #[test]
    fn selects_instances_of_its_namespace_by_every_label() {
        let mut s = Service::new("reviews.default.svc.cluster.local", "default");
        let reviews = instance("default", &[("app", "reviews"), ("version", "v1")]);
        assert!(!s.selects(&reviews), "an empty selector selects none");
        s.selector.insert("app".into(), "reviews".into());
        assert!(s.selects(&reviews));
        assert!(!s.selects(&instance("prod", &[("app", "reviews")])));
        assert!(!s.selects(&instance("default", &[("app", "ratings")])));
        s.selector.insert("tier".into(), "web".into());
        assert!(!s.selects(&reviews));
    }

    #[test]
    fn an_instance_port_is_its_own_then_the_target_then_the_service_port() {
        let mut port = ServicePort {
            number: 9080,
            name: "http".into(),
            protocol: Protocol::Http,
            target_port: None,
        };
        let mut i = Instance::new("10.0.0.1");
        assert_eq!(port.instance_port(&i), 9080);
        port.target_port = Some(8080);
        assert_eq!(port.instance_port(&i), 8080);
        i.ports.insert("http".into(), 7070);
        assert_eq!(port.instance_port(&i), 7070);
        port.name.clear();
        assert_eq!(port.instance_port(&i), 8080);
    }

    #[test]
    fn protocols_as_istio_names_them() {
        for p in [
            Protocol::Http,
            Protocol::Http2,
            Protocol::HttpProxy,
            Protocol::Https,
            Protocol::Grpc,
            Protocol::GrpcWeb,
            Protocol::Tcp,
            Protocol::Tls,
            Protocol::Udp,
            Protocol::Mongo,
            Protocol::Redis,
            Protocol::MySql,
        ] {
            assert_eq!(Protocol::parse(p.as_str()), p, "{p}");
        }
        assert_eq!(Protocol::parse(""), Protocol::Unsupported);
        assert!(Protocol::Grpc.is_http());
        assert!(!Protocol::Https.is_http());
        assert_eq!(Resolution::DnsRoundRobin.as_str(), "DNS_ROUND_ROBIN");
    }
}
