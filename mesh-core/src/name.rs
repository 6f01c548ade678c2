//! Service authorities: the `host:port` a request is addressed to, and the
//! Kubernetes short forms (`reviews`, `reviews.default`, `reviews.default.svc`)
//! that kube-dns expands through its search domains.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A `host:port` pair naming a service or an address.
///
/// Hosts are stored lower-cased (DNS names are case-insensitive) and without a
/// trailing dot, so two spellings of one name compare equal.
///
/// ```
/// use mesh_core::Authority;
/// let a: Authority = "Reviews.default.svc.cluster.local:9080".parse().unwrap();
/// assert_eq!(a.host(), "reviews.default.svc.cluster.local");
/// assert_eq!(a.port(), 9080);
/// assert_eq!(a.to_string(), "reviews.default.svc.cluster.local:9080");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Authority {
    host: Arc<str>,
    port: u16,
}

/// An authority that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid authority {input:?}: {reason}")]
pub struct InvalidAuthority {
    input: String,
    reason: &'static str,
}

impl InvalidAuthority {
    fn new(input: &str, reason: &'static str) -> Self {
        Self {
            input: input.to_owned(),
            reason,
        }
    }
}

impl Authority {
    /// An authority from a host and a port. The host is validated as a DNS
    /// name or an IP literal (IPv6 with or without brackets).
    pub fn new(host: &str, port: u16) -> Result<Self, InvalidAuthority> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if bare.parse::<std::net::IpAddr>().is_ok() {
            return Ok(Self {
                host: bare.into(),
                port,
            });
        }
        let name = host.strip_suffix('.').unwrap_or(host);
        validate_dns_name(host, name)?;
        Ok(Self {
            // One allocation for the common, already lower-case name.
            host: if name.bytes().any(|b| b.is_ascii_uppercase()) {
                name.to_ascii_lowercase().into()
            } else {
                name.into()
            },
            port,
        })
    }

    /// Parses `host[:port]`, using `default_port` when no port is written
    /// (80 for `http`, 443 for `https`).
    pub fn parse_with_default_port(s: &str, default_port: u16) -> Result<Self, InvalidAuthority> {
        if s.is_empty() {
            return Err(InvalidAuthority::new(s, "empty"));
        }
        if s.contains('@') {
            return Err(InvalidAuthority::new(s, "user info is not allowed"));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| InvalidAuthority::new(s, "unclosed '[' in IPv6 address"))?;
            let port = match after {
                "" => default_port,
                p => parse_port(
                    s,
                    p.strip_prefix(':').ok_or_else(|| {
                        InvalidAuthority::new(s, "expected ':' after IPv6 address")
                    })?,
                )?,
            };
            (h, port)
        } else if s.matches(':').count() > 1 {
            return Err(InvalidAuthority::new(
                s,
                "IPv6 addresses must be in brackets",
            ));
        } else {
            match s.split_once(':') {
                Some((h, p)) => (h, parse_port(s, p)?),
                None => (s, default_port),
            }
        };
        let a = Self::new(host, port).map_err(|e| InvalidAuthority::new(s, e.reason))?;
        Ok(a)
    }

    /// The authority of an HTTP URI, with the scheme's default port when
    /// none is written.
    pub fn from_uri(uri: &http::Uri) -> Result<Self, InvalidAuthority> {
        let auth = uri
            .authority()
            .ok_or_else(|| InvalidAuthority::new(&uri.to_string(), "the URI has no authority"))?;
        let default_port = match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        };
        Self::parse_with_default_port(auth.as_str(), default_port)
    }

    /// The host: a lower-case DNS name, or an IP literal without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host as an IP address, when it is one.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.host.parse().ok()
    }
}

fn parse_port(input: &str, p: &str) -> Result<u16, InvalidAuthority> {
    match p.parse::<u16>() {
        Ok(0) => Err(InvalidAuthority::new(input, "port 0 is not allowed")),
        Ok(port) => Ok(port),
        Err(_) => Err(InvalidAuthority::new(
            input,
            "the port is not a number from 1 to 65535",
        )),
    }
}

fn validate_dns_name(input: &str, name: &str) -> Result<(), InvalidAuthority> {
    if name.is_empty() {
        return Err(InvalidAuthority::new(input, "empty host"));
    }
    if name.len() > 253 {
        return Err(InvalidAuthority::new(
            input,
            "host longer than 253 characters",
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(InvalidAuthority::new(input, "empty label in host"));
        }
        if label.len() > 63 {
            return Err(InvalidAuthority::new(
                input,
                "label longer than 63 characters",
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(InvalidAuthority::new(
                input,
                "host has a character other than letters, digits, '-', '_' and '.'",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(InvalidAuthority::new(
                input,
                "label starts or ends with '-'",
            ));
        }
    }
    Ok(())
}

impl FromStr for Authority {
    type Err = InvalidAuthority;

    /// Parses `host:port`; the port is required.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(InvalidAuthority::new(s, "empty"));
        }
        let has_port = if s.starts_with('[') {
            !s.contains(']') || s.contains("]:")
        } else {
            s.contains(':')
        };
        if !has_port {
            return Err(InvalidAuthority::new(s, "missing port"));
        }
        Self::parse_with_default_port(s, 0)
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Kubernetes service naming: expands short forms the way kube-dns search
/// domains do for a pod in `namespace`.
///
/// | written | expanded |
/// |---|---|
/// | `reviews` | `reviews.NAMESPACE.svc.CLUSTER_DOMAIN` |
/// | `reviews.other.svc` | `reviews.other.svc.CLUSTER_DOMAIN` |
/// | anything else, and IP literals | unchanged |
///
/// A two-label name (`reviews.other`) is left alone, as istiod does: it
/// cannot be told apart from an external name such as `example.com`. DNS
/// discovery still finds it through the [`search_domains`](Self::search_domains).
///
/// ```
/// use mesh_core::{Authority, KubernetesNames};
/// let names = KubernetesNames::default();
/// let a = names.expand(&"reviews:9080".parse().unwrap());
/// assert_eq!(a.to_string(), "reviews.default.svc.cluster.local:9080");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubernetesNames {
    /// The namespace short names are relative to. Default `default`.
    pub namespace: String,
    /// The cluster domain. Default `cluster.local`.
    pub cluster_domain: String,
}

impl Default for KubernetesNames {
    fn default() -> Self {
        Self {
            namespace: "default".into(),
            cluster_domain: "cluster.local".into(),
        }
    }
}

impl KubernetesNames {
    /// The fully qualified form of `authority`.
    pub fn expand(&self, authority: &Authority) -> Authority {
        if authority.ip().is_some() {
            return authority.clone();
        }
        let host = authority.host();
        let labels = host.split('.').count();
        let fqdn = match labels {
            1 => format!("{host}.{}.svc.{}", self.namespace, self.cluster_domain),
            3 if host.ends_with(".svc") => format!("{host}.{}", self.cluster_domain),
            _ => return authority.clone(),
        };
        Authority::new(&fqdn, authority.port()).unwrap_or_else(|_| authority.clone())
    }

    /// The search domains kube-dns gives a pod in this namespace, most
    /// specific first.
    pub fn search_domains(&self) -> Vec<String> {
        vec![
            format!("{}.svc.{}", self.namespace, self.cluster_domain),
            format!("svc.{}", self.cluster_domain),
            self.cluster_domain.clone(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_ips() {
        let a: Authority = "reviews:9080".parse().unwrap();
        assert_eq!((a.host(), a.port()), ("reviews", 9080));
        let a: Authority = "[::1]:80".parse().unwrap();
        assert_eq!(a.host(), "::1");
        assert_eq!(a.to_string(), "[::1]:80");
        let a: Authority = "127.0.0.1:1".parse().unwrap();
        assert!(a.ip().is_some());
        let a = Authority::parse_with_default_port("example.com.", 80).unwrap();
        assert_eq!(a.to_string(), "example.com:80");
    }

    #[test]
    fn rejects_bad_authorities_with_a_reason() {
        for (input, reason) in [
            ("", "empty"),
            ("reviews", "missing port"),
            ("reviews:http", "not a number"),
            ("reviews:0", "port 0"),
            ("reviews:70000", "not a number"),
            ("re views:80", "character"),
            ("a..b:80", "empty label"),
            ("::1:80", "brackets"),
            ("[::1:80", "unclosed"),
            ("user@host:80", "user info"),
            ("-bad:80", "starts or ends"),
        ] {
            let err = input.parse::<Authority>().unwrap_err();
            let text = err.to_string();
            assert!(text.contains(reason), "{input:?}: {text}");
            assert!(text.contains(&format!("{input:?}")), "{text}");
        }
    }

    #[test]
    fn from_uri_uses_scheme_default_port() {
        let uri: http::Uri = "http://reviews/x".parse().unwrap();
        assert_eq!(Authority::from_uri(&uri).unwrap().port(), 80);
        let uri: http::Uri = "https://reviews/x".parse().unwrap();
        assert_eq!(Authority::from_uri(&uri).unwrap().port(), 443);
        let uri: http::Uri = "/x".parse().unwrap();
        assert!(
            Authority::from_uri(&uri)
                .unwrap_err()
                .to_string()
                .contains("no authority")
        );
    }

    #[test]
    fn expands_kubernetes_short_forms() {
        let k = KubernetesNames {
            namespace: "bookinfo".into(),
            cluster_domain: "cluster.local".into(),
        };
        let e = |s: &str| k.expand(&s.parse().unwrap()).to_string();
        assert_eq!(e("reviews:9080"), "reviews.bookinfo.svc.cluster.local:9080");
        assert_eq!(e("reviews.default:9080"), "reviews.default:9080");
        assert_eq!(
            e("reviews.default.svc:9080"),
            "reviews.default.svc.cluster.local:9080"
        );
        assert_eq!(e("example.com:443"), "example.com:443");
        assert_eq!(e("10.0.0.1:80"), "10.0.0.1:80");
        assert_eq!(k.search_domains()[0], "bookinfo.svc.cluster.local");
    }
}
