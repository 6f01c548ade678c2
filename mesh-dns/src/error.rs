//! [`DnsError`]: why a [`DnsResolve`](crate::DnsResolve) could not be built.

use std::error::Error as StdError;

type BoxError = Box<dyn StdError + Send + Sync>;

/// A DNS discovery source could not be set up: the system configuration is
/// unreadable, or a [`DnsConfig`](crate::DnsConfig) value is invalid.
///
/// Lookups that fail later are not `DnsError`s: they are reported on the
/// target's [`Resolution`](mesh_core::Resolution) as a
/// [`ResolveError`](mesh_core::ResolveError).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The system resolver configuration (`/etc/resolv.conf` on Unix) could
    /// not be read or lists no name servers.
    #[error("cannot read the system DNS configuration (/etc/resolv.conf)")]
    SystemConfig(#[source] BoxError),
    /// A search domain is not a valid DNS name.
    #[error("invalid search domain {domain:?}")]
    SearchDomain {
        /// The domain as written.
        domain: String,
        /// Why it was rejected.
        #[source]
        source: BoxError,
    },
    /// A configuration value is out of range.
    #[error("invalid DNS configuration: {0}")]
    InvalidConfig(&'static str),
    /// hickory could not build the resolver from a valid configuration.
    #[error("cannot build the DNS resolver")]
    Build(#[source] BoxError),
    /// A name given to the local server is not a valid DNS name.
    #[error("invalid DNS name {name:?}")]
    InvalidName {
        /// The name as written.
        name: String,
        /// Why it was rejected.
        #[source]
        source: BoxError,
    },
    /// The local server could not bind its sockets.
    #[error("cannot start the local DNS server on 127.0.0.1")]
    LocalServer(#[source] BoxError),
}

impl DnsError {
    pub(crate) fn system_config(source: impl Into<BoxError>) -> Self {
        Self::SystemConfig(source.into())
    }

    pub(crate) fn build(source: impl Into<BoxError>) -> Self {
        Self::Build(source.into())
    }

    #[cfg_attr(not(feature = "local-server"), allow(dead_code))]
    pub(crate) fn invalid_name(name: &str, source: impl Into<BoxError>) -> Self {
        Self::InvalidName {
            name: name.to_owned(),
            source: source.into(),
        }
    }

    #[cfg_attr(not(feature = "local-server"), allow(dead_code))]
    pub(crate) fn local_server(source: impl Into<BoxError>) -> Self {
        Self::LocalServer(source.into())
    }

    pub(crate) fn search_domain(domain: &str, source: impl Into<BoxError>) -> Self {
        Self::SearchDomain {
            domain: domain.to_owned(),
            source: source.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_does_not_repeat_the_source() {
        let e = DnsError::system_config(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file",
        ));
        assert_eq!(
            e.to_string(),
            "cannot read the system DNS configuration (/etc/resolv.conf)"
        );
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("no such file")
        );
    }
}
