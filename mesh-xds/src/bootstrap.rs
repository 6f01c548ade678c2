//! The gRPC xDS bootstrap: the control plane to talk to (`xds_servers`),
//! who this client is (`node`), where its certificates are
//! (`certificate_providers`) and how server listeners are named
//! (`server_listener_resource_name_template`), in the JSON format gRPC reads
//! (gRFC A27, A29, A36, A65).
//!
//! [`Bootstrap::from_env`] reads it as gRPC does: from the file named by
//! `GRPC_XDS_BOOTSTRAP`, else from the JSON in `GRPC_XDS_BOOTSTRAP_CONFIG`.
//! Unknown keys are ignored, as gRPC ignores them, so a file written by
//! Istio's agent for proxyless gRPC loads unchanged. Every error names the
//! file (or variable), the key, and what was expected there.
//!
//! ```
//! use mesh_xds::Bootstrap;
//!
//! let bootstrap = Bootstrap::from_json("inline", r#"{
//!   "xds_servers": [{
//!     "server_uri": "unix:///etc/istio/proxy/XDS",
//!     "channel_creds": [{"type": "insecure"}],
//!     "server_features": ["xds_v3"]
//!   }],
//!   "node": {"id": "sidecar~10.0.0.1~productpage-v1.default~default.svc.cluster.local"}
//! }"#)?;
//! assert_eq!(bootstrap.node.id, "sidecar~10.0.0.1~productpage-v1.default~default.svc.cluster.local");
//! # Ok::<(), mesh_xds::BootstrapError>(())
//! ```

mod parse;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mesh_core::Locality;
use serde_json::{Map, Value};

use parse::Doc;

/// The environment variable naming a bootstrap file.
pub const BOOTSTRAP_FILE_ENV: &str = "GRPC_XDS_BOOTSTRAP";
/// The environment variable holding bootstrap JSON.
pub const BOOTSTRAP_CONFIG_ENV: &str = "GRPC_XDS_BOOTSTRAP_CONFIG";

/// A bootstrap, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Bootstrap {
    /// The control planes, in order of preference; at least one.
    pub xds_servers: Vec<XdsServer>,
    /// Who this client is.
    pub node: Node,
    /// Certificate sources by instance name (`default` is the one Istio
    /// writes).
    pub certificate_providers: BTreeMap<String, CertificateProvider>,
    /// The name of a server's listener resource, `%s` standing for its
    /// address (Istio: `xds.istio.io/grpc/lds/inbound/%s`).
    pub server_listener_resource_name_template: Option<String>,
    /// The name of a client's listener resource, `%s` standing for the
    /// target's authority. Default `%s`.
    pub client_default_listener_resource_name_template: String,
}

/// One control plane.
#[derive(Clone, Debug, PartialEq)]
pub struct XdsServer {
    /// Where it is.
    pub uri: ServerUri,
    /// How to secure the channel: the first of the listed credentials this
    /// client supports.
    pub channel_creds: ChannelCreds,
    /// Features the server supports, such as `xds_v3` or
    /// `ignore_resource_deletion`.
    pub server_features: Vec<String>,
}

impl XdsServer {
    /// Whether the server lists `feature`.
    pub fn supports(&self, feature: &str) -> bool {
        self.server_features.iter().any(|f| f == feature)
    }
}

/// A control plane's address, as gRPC target URIs write it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerUri {
    /// `host:port`, `dns:///host:port` or `ipv4:…`: a TCP address.
    Tcp(String),
    /// `unix:///path` or `unix:path`: a Unix domain socket (Istio's agent
    /// serves `unix:///etc/istio/proxy/XDS`).
    Unix(PathBuf),
}

impl fmt::Display for ServerUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerUri::Tcp(a) => f.write_str(a),
            ServerUri::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

/// Channel credentials for the control plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelCreds {
    /// Plain text.
    Insecure,
    /// TLS (gRFC A65); with a certificate and key, mutual TLS.
    Tls(FileWatcher),
}

/// Who this client is, as the control plane sees it (Envoy's `Node`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    /// Its id; Istio's form is `sidecar~IP~POD.NS~NS.svc.cluster.local`.
    pub id: String,
    /// Its cluster.
    pub cluster: String,
    /// Where it runs.
    pub locality: Locality,
    /// Anything else the control plane reads (Istio: `GENERATOR: grpc`,
    /// `LABELS`, `NAMESPACE`, ...), as JSON.
    pub metadata: Map<String, Value>,
}

/// A source of certificates (gRFC A29): the `file_watcher` plugin, the
/// one gRPC defines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateProvider {
    /// The files and how often they are read again.
    pub file_watcher: FileWatcher,
}

/// Certificate files, read again every `refresh_interval`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileWatcher {
    /// This client's certificate chain (PEM).
    pub certificate_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub private_key_file: Option<PathBuf>,
    /// The roots it trusts (PEM); `None` for the system's.
    pub ca_certificate_file: Option<PathBuf>,
    /// Default 10 minutes, as gRPC.
    pub refresh_interval: Duration,
}

impl FileWatcher {
    /// The client certificate chain and its key, when both are named;
    /// `None` when neither is. One without the other is an error: a
    /// client told to present a certificate must not connect without one.
    pub fn identity_files(&self) -> Result<Option<(&Path, &Path)>, HalfIdentity> {
        match (&self.certificate_file, &self.private_key_file) {
            (Some(cert), Some(key)) => Ok(Some((cert, key))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(HalfIdentity {
                set: "certificate_file",
                missing: "private_key_file",
            }),
            (None, Some(_)) => Err(HalfIdentity {
                set: "private_key_file",
                missing: "certificate_file",
            }),
        }
    }
}

/// A certificate without its key, or a key without its certificate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{set} is set but {missing} is not: certificate_file and private_key_file go together, or neither"
)]
pub struct HalfIdentity {
    set: &'static str,
    missing: &'static str,
}

/// A bootstrap that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// Neither variable is set.
    #[error(
        "no xDS bootstrap: set {BOOTSTRAP_FILE_ENV} to a file or {BOOTSTRAP_CONFIG_ENV} to its JSON"
    )]
    Unset,
    /// The file could not be read.
    #[error("cannot read the xDS bootstrap {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not JSON.
    #[error("{source_name}: not JSON at line {line}, column {column}: {reason}")]
    Syntax {
        /// The file or variable.
        source_name: String,
        /// Where.
        line: usize,
        /// Where.
        column: usize,
        /// What the JSON parser said.
        reason: String,
    },
    /// A key is missing or holds the wrong thing.
    #[error("{source_name}: {key}: expected {expected}")]
    Invalid {
        /// The file or variable.
        source_name: String,
        /// The key, such as `xds_servers[0].server_uri`.
        key: String,
        /// What should be there.
        expected: String,
    },
}

impl Bootstrap {
    /// The bootstrap gRPC would read: the file `GRPC_XDS_BOOTSTRAP` names,
    /// else the JSON in `GRPC_XDS_BOOTSTRAP_CONFIG`.
    pub fn from_env() -> Result<Self, BootstrapError> {
        Self::from_vars(
            std::env::var_os(BOOTSTRAP_FILE_ENV),
            std::env::var(BOOTSTRAP_CONFIG_ENV).ok(),
        )
    }

    /// As [`from_env`](Self::from_env), given the two variables' values.
    fn from_vars(
        file: Option<std::ffi::OsString>,
        config: Option<String>,
    ) -> Result<Self, BootstrapError> {
        if let Some(path) = file.filter(|p| !p.is_empty()) {
            return Self::from_file(path);
        }
        match config {
            Some(json) if !json.is_empty() => Self::from_json(BOOTSTRAP_CONFIG_ENV, &json),
            _ => Err(BootstrapError::Unset),
        }
    }

    /// The bootstrap in the file at `path`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, BootstrapError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| BootstrapError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&path.display().to_string(), &text)
    }

    /// The bootstrap in `json`; `source` names it in errors.
    pub fn from_json(source: &str, json: &str) -> Result<Self, BootstrapError> {
        let value: Value = serde_json::from_str(json).map_err(|e| BootstrapError::Syntax {
            source_name: source.to_owned(),
            line: e.line(),
            column: e.column(),
            reason: e.to_string(),
        })?;
        parse::bootstrap(&Doc::new(source, &value))
    }

    /// A bootstrap for a plain-text control plane at `server_uri`, as
    /// `node_id`: for tests and launchers that build it in code.
    pub fn insecure(server_uri: &str, node_id: impl Into<String>) -> Result<Self, BootstrapError> {
        let uri = parse::server_uri(server_uri).ok_or_else(|| BootstrapError::Invalid {
            source_name: "code".into(),
            key: "server_uri".into(),
            expected: format!(
                "a gRPC target such as host:port or unix:///path, not {server_uri:?}"
            ),
        })?;
        Ok(Self {
            xds_servers: vec![XdsServer {
                uri,
                channel_creds: ChannelCreds::Insecure,
                server_features: vec!["xds_v3".into()],
            }],
            node: Node {
                id: node_id.into(),
                ..Node::default()
            },
            certificate_providers: BTreeMap::new(),
            server_listener_resource_name_template: None,
            client_default_listener_resource_name_template: "%s".into(),
        })
    }

    /// The listener resource a client asks for to reach `authority`
    /// (`reviews.default.svc.cluster.local:9080`).
    pub fn client_listener_name(&self, authority: &str) -> String {
        self.client_default_listener_resource_name_template
            .replace("%s", authority)
    }

    /// The listener resource a server listening on `addr` asks for (gRFC
    /// A36): the bootstrap's `server_listener_resource_name_template`
    /// with `HOST:PORT` for `%s`, else Istio's
    /// `xds.istio.io/grpc/lds/inbound/%s`.
    ///
    /// ```
    /// let bootstrap = mesh_xds::Bootstrap::insecure("127.0.0.1:15010", "node")?;
    /// let name = bootstrap.server_listener_name("0.0.0.0:50051".parse().unwrap());
    /// assert_eq!(name, "xds.istio.io/grpc/lds/inbound/0.0.0.0:50051");
    /// # Ok::<(), mesh_xds::bootstrap::BootstrapError>(())
    /// ```
    pub fn server_listener_name(&self, addr: std::net::SocketAddr) -> String {
        self.server_listener_resource_name_template
            .as_deref()
            .unwrap_or(ISTIO_SERVER_LISTENER_TEMPLATE)
            .replace("%s", &addr.to_string())
    }
}

/// The server listener names Istio's agent writes into a proxyless
/// workload's bootstrap.
const ISTIO_SERVER_LISTENER_TEMPLATE: &str = "xds.istio.io/grpc/lds/inbound/%s";

#[cfg(test)]
mod tests;
