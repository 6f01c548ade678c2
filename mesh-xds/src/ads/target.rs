//! Where the control plane is: the bootstrap's first server, checked,
//! and how to dial it: plain text, or TLS (gRFC A65) with the roots, and
//! the client certificate, the bootstrap's `tls` channel credentials name.
//! The certificate files are read again for every connection, so a
//! rotated certificate is used from the next reconnect on.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::AdsClientError;
use crate::bootstrap::{Bootstrap, ChannelCreds, FileWatcher, ServerUri};

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the control plane is, checked.
#[derive(Clone, Debug)]
pub(super) enum Target {
    Tcp {
        endpoint: Endpoint,
        /// TLS credentials, and the name the server's certificate must
        /// carry; `None` for plain text.
        tls: Option<(FileWatcher, String)>,
    },
    Unix {
        endpoint: Endpoint,
        path: PathBuf,
    },
}

/// Why a connection to the control plane could not be made.
pub(super) type ConnectError = Box<dyn std::error::Error + Send + Sync>;

impl Target {
    pub(super) fn new(bootstrap: &Bootstrap) -> Result<Self, AdsClientError> {
        let server = bootstrap
            .xds_servers
            .first()
            .ok_or(AdsClientError::NoServer)?;
        let name = server.uri.to_string();
        let endpoint = |uri: String| {
            Endpoint::from_shared(uri)
                .map(|e| e.connect_timeout(CONNECT_TIMEOUT))
                .map_err(|source| AdsClientError::InvalidEndpoint {
                    server: name.clone(),
                    source: source.into(),
                })
        };
        let target = match (&server.uri, &server.channel_creds) {
            (ServerUri::Tcp(authority), creds) => {
                let authority = authority.strip_prefix("dns:///").unwrap_or(authority);
                let tls = match creds {
                    ChannelCreds::Tls(files) => {
                        let host = endpoint(format!("https://{authority}"))?
                            .uri()
                            .host()
                            .unwrap_or_default()
                            .trim_matches(['[', ']'])
                            .to_owned();
                        Some((files.clone(), host))
                    }
                    ChannelCreds::Insecure => None,
                };
                let scheme = if tls.is_some() { "https" } else { "http" };
                Target::Tcp {
                    endpoint: endpoint(format!("{scheme}://{authority}"))?,
                    tls,
                }
            }
            (ServerUri::Unix(_), ChannelCreds::Tls(_)) => {
                return Err(AdsClientError::TlsOverUnixSocket { server: name });
            }
            // The URI only names the `:authority`; the connector dials the path.
            (ServerUri::Unix(path), ChannelCreds::Insecure) => Target::Unix {
                endpoint: endpoint("http://localhost".into())?,
                path: path.clone(),
            },
        };
        // Unreadable or malformed credentials are an error now, not a
        // reconnect loop.
        if let Target::Tcp {
            endpoint,
            tls: Some(tls),
        } = &target
        {
            with_tls(endpoint, tls).map_err(|source| AdsClientError::Credentials {
                server: name.clone(),
                source,
            })?;
        }
        Ok(target)
    }

    pub(super) async fn connect(self) -> Result<Channel, ConnectError> {
        match self {
            Target::Tcp {
                endpoint,
                tls: None,
            } => Ok(endpoint.connect().await?),
            Target::Tcp {
                endpoint,
                tls: Some(tls),
            } => Ok(with_tls(&endpoint, &tls)?.connect().await?),
            Target::Unix { endpoint, path } => {
                let connector = tower::service_fn(move |_| {
                    let path = path.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(path).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(stream))
                    }
                });
                Ok(endpoint.connect_with_connector(connector).await?)
            }
        }
    }
}

/// `endpoint` speaking TLS with the credentials in `files`, read now,
/// checking that the server's certificate is for `host`.
fn with_tls(
    endpoint: &Endpoint,
    (files, host): &(FileWatcher, String),
) -> Result<Endpoint, ConnectError> {
    let mut tls = ClientTlsConfig::new().domain_name(host.clone());
    tls = match &files.ca_certificate_file {
        Some(path) => tls.ca_certificate(Certificate::from_pem(read(path)?)),
        None => tls.with_native_roots(),
    };
    if let Some((cert, key)) = files.identity_files()? {
        tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(endpoint.clone().tls_config(tls)?)
}

fn read(path: &Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path).map_err(|source| {
        CredentialFile {
            path: path.to_owned(),
            source,
        }
        .into()
    })
}

/// A credentials file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}", path.display())]
pub(super) struct CredentialFile {
    path: PathBuf,
    source: std::io::Error,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp { endpoint, .. } => write!(f, "{}", endpoint.uri()),
            Target::Unix { path, .. } => write!(f, "unix://{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_tls_credentials_are_refused_at_start() {
        let mut bootstrap = Bootstrap::insecure("localhost:15010", "node").unwrap();
        bootstrap.xds_servers[0].channel_creds = ChannelCreds::Tls(FileWatcher {
            certificate_file: None,
            private_key_file: None,
            ca_certificate_file: Some("/nonexistent/root-cert.pem".into()),
            refresh_interval: Duration::from_secs(600),
        });
        let error = Target::new(&bootstrap).unwrap_err();
        assert_eq!(
            super::super::client::error_chain(&error),
            "xDS server localhost:15010: TLS credentials: cannot read \
             /nonexistent/root-cert.pem: No such file or directory (os error 2)"
        );
        let mut unix = Bootstrap::insecure("unix:///run/xds.sock", "node").unwrap();
        unix.xds_servers[0].channel_creds = bootstrap.xds_servers[0].channel_creds.clone();
        assert!(matches!(
            Target::new(&unix),
            Err(AdsClientError::TlsOverUnixSocket { .. })
        ));
    }

    #[test]
    fn a_certificate_without_its_key_is_refused_at_start() {
        let mut bootstrap = Bootstrap::insecure("localhost:15010", "node").unwrap();
        let dir = std::env::temp_dir();
        let files = |cert: Option<&str>, key: Option<&str>| FileWatcher {
            certificate_file: cert.map(|f| dir.join(f)),
            private_key_file: key.map(|f| dir.join(f)),
            ca_certificate_file: None,
            refresh_interval: Duration::from_secs(600),
        };
        for (watcher, set, missing) in [
            (
                files(Some("cert-chain.pem"), None),
                "certificate_file",
                "private_key_file",
            ),
            (
                files(None, Some("key.pem")),
                "private_key_file",
                "certificate_file",
            ),
        ] {
            bootstrap.xds_servers[0].channel_creds = ChannelCreds::Tls(watcher);
            let error = Target::new(&bootstrap).unwrap_err();
            assert_eq!(
                super::super::client::error_chain(&error),
                format!(
                    "xDS server localhost:15010: TLS credentials: {set} is set but {missing} \
                     is not: certificate_file and private_key_file go together, or neither"
                )
            );
        }
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
