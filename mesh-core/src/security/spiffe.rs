//! A workload's identity: a SPIFFE id of Istio's form,
//! `spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT`, as a workload
//! certificate carries it in its URI SAN and authorization matches it.

use std::fmt;
use std::str::FromStr;

/// A SPIFFE id naming a Kubernetes-style service account, as Istio puts in
/// a workload certificate's URI SAN.
///
/// ```
/// use mesh_core::security::SpiffeId;
///
/// let id: SpiffeId = "spiffe://cluster.local/ns/default/sa/reviews".parse().unwrap();
/// assert_eq!(id.trust_domain(), "cluster.local");
/// assert_eq!(id.namespace(), "default");
/// assert_eq!(id.service_account(), "reviews");
/// assert_eq!(id.to_string(), "spiffe://cluster.local/ns/default/sa/reviews");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpiffeId {
    trust_domain: String,
    namespace: String,
    service_account: String,
}

impl SpiffeId {
    /// The trust domain, e.g. `cluster.local`.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The namespace, the segment after `/ns/`.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The service account, the segment after `/sa/`.
    pub fn service_account(&self) -> &str {
        &self.service_account
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spiffe://{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }
}

/// Why a string is not a workload SPIFFE id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a workload identity of the form spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT: {reason}"
)]
pub struct InvalidIdentity {
    input: String,
    reason: &'static str,
}

impl InvalidIdentity {
    /// The string that was rejected.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl FromStr for SpiffeId {
    type Err = InvalidIdentity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason| InvalidIdentity {
            input: s.to_owned(),
            reason,
        };
        let rest = s
            .strip_prefix("spiffe://")
            .ok_or_else(|| fail("it does not start with spiffe://"))?;
        let (trust_domain, path) = rest.split_once('/').ok_or_else(|| fail("it has no path"))?;
        if trust_domain.is_empty() {
            return Err(fail("the trust domain is empty"));
        }
        // SPIFFE: lowercase letters, digits, dots, dashes and underscores.
        if !trust_domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_".contains(&b))
        {
            return Err(fail(
                "the trust domain may hold only lowercase letters, digits, '.', '-' and '_'",
            ));
        }
        let segments: Vec<&str> = path.split('/').collect();
        let [ns_key, namespace, sa_key, service_account] = segments[..] else {
            return Err(fail("the path is not /ns/NAMESPACE/sa/SERVICE_ACCOUNT"));
        };
        if ns_key != "ns" || sa_key != "sa" {
            return Err(fail("the path is not /ns/NAMESPACE/sa/SERVICE_ACCOUNT"));
        }
        for segment in [namespace, service_account] {
            if segment.is_empty() {
                return Err(fail("the namespace and service account must not be empty"));
            }
            if segment == "." || segment == ".." {
                return Err(fail("a path segment may not be '.' or '..'"));
            }
            // SPIFFE: path segments hold letters, digits, dots, dashes and underscores.
            if !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b))
            {
                return Err(fail(
                    "the namespace and service account may hold only letters, digits, '.', '-' and '_'",
                ));
            }
        }
        Ok(Self {
            trust_domain: trust_domain.to_owned(),
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_istio_form() {
        let id: SpiffeId = "spiffe://example.org/ns/bookinfo/sa/bookinfo-ratings"
            .parse()
            .unwrap();
        assert_eq!(id.trust_domain(), "example.org");
        assert_eq!(id.namespace(), "bookinfo");
        assert_eq!(id.service_account(), "bookinfo-ratings");
        assert_eq!(
            id.to_string(),
            "spiffe://example.org/ns/bookinfo/sa/bookinfo-ratings"
        );
    }

    #[test]
    fn rejects_what_is_not_a_workload_id() {
        for bad in [
            "",
            "cluster.local/ns/a/sa/b",
            "https://cluster.local/ns/a/sa/b",
            "spiffe://",
            "spiffe://cluster.local",
            "spiffe://cluster.local/",
            "spiffe:///ns/a/sa/b",
            "spiffe://Cluster.Local/ns/a/sa/b",
            "spiffe://cluster.local:8080/ns/a/sa/b",
            "spiffe://user@cluster.local/ns/a/sa/b",
            "spiffe://cluster.local/ns/a",
            "spiffe://cluster.local/ns/a/sa/",
            "spiffe://cluster.local/ns//sa/b",
            "spiffe://cluster.local/ns/a/sa/b/",
            "spiffe://cluster.local/ns/a/sa/b/extra",
            "spiffe://cluster.local/sa/b/ns/a",
            "spiffe://cluster.local/ns/../sa/b",
            "spiffe://cluster.local/ns/a/sa/b?x=1",
            "spiffe://cluster.local/ns/a/sa/b#f",
            "spiffe://cluster.local/ns/a b/sa/b",
        ] {
            let err = bad.parse::<SpiffeId>().unwrap_err();
            assert_eq!(err.input(), bad);
            assert!(err.to_string().contains("spiffe://TRUST_DOMAIN"), "{err}");
        }
    }

    #[test]
    fn error_says_why() {
        let err = "spiffe://cluster.local/ns/a"
            .parse::<SpiffeId>()
            .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("the path is not /ns/NAMESPACE/sa/SERVICE_ACCOUNT"),
            "{err}"
        );
    }
}
