//! Where the control plane is: the bootstrap's first server, checked,
//! and how to dial it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

use super::AdsClientError;
use crate::bootstrap::{Bootstrap, ChannelCreds, ServerUri};

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the control plane is, checked.
#[derive(Clone, Debug)]
pub(super) enum Target {
    Tcp(Endpoint),
    Unix { endpoint: Endpoint, path: PathBuf },
}

impl Target {
    pub(super) fn new(bootstrap: &Bootstrap) -> Result<Self, AdsClientError> {
        let server = bootstrap
            .xds_servers
            .first()
            .ok_or(AdsClientError::NoServer)?;
        let name = server.uri.to_string();
        if let ChannelCreds::Tls(_) = server.channel_creds {
            return Err(AdsClientError::TlsUnsupported { server: name });
        }
        let endpoint = |uri: String| {
            Endpoint::from_shared(uri)
                .map(|e| e.connect_timeout(CONNECT_TIMEOUT))
                .map_err(|source| AdsClientError::InvalidEndpoint {
                    server: name.clone(),
                    source,
                })
        };
        Ok(match &server.uri {
            ServerUri::Tcp(authority) => {
                let authority = authority.strip_prefix("dns:///").unwrap_or(authority);
                Target::Tcp(endpoint(format!("http://{authority}"))?)
            }
            // The URI only names the `:authority`; the connector dials the path.
            ServerUri::Unix(path) => Target::Unix {
                endpoint: endpoint("http://localhost".into())?,
                path: path.clone(),
            },
        })
    }

    pub(super) async fn connect(self) -> Result<Channel, tonic::transport::Error> {
        match self {
            Target::Tcp(endpoint) => endpoint.connect().await,
            Target::Unix { endpoint, path } => {
                let connector = tower::service_fn(move |_| {
                    let path = path.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(path).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(stream))
                    }
                });
                endpoint.connect_with_connector(connector).await
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp(endpoint) => write!(f, "{}", endpoint.uri()),
            Target::Unix { path, .. } => write!(f, "unix://{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_credentials_are_refused() {
        let mut bootstrap = Bootstrap::insecure("localhost:15010", "node").unwrap();
        bootstrap.xds_servers[0].channel_creds = ChannelCreds::Tls(crate::bootstrap::FileWatcher {
            certificate_file: None,
            private_key_file: None,
            ca_certificate_file: None,
            refresh_interval: Duration::from_secs(600),
        });
        let error = Target::new(&bootstrap).unwrap_err();
        assert!(matches!(error, AdsClientError::TlsUnsupported { .. }));
        assert_eq!(
            error.to_string(),
            "xDS server localhost:15010: TLS channel credentials are not supported yet"
        );
    }

    #[test]
    fn no_server_is_an_error() {
        let mut bootstrap = Bootstrap::insecure("localhost:15010", "node").unwrap();
        bootstrap.xds_servers.clear();
        assert!(matches!(
            Target::new(&bootstrap),
            Err(AdsClientError::NoServer)
        ));
    }
}
