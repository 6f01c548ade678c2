//! Walks bootstrap JSON by hand, keeping the path of every key, so that an
//! error says exactly which key is wrong and what was expected there.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::resource::proto;
use mesh_core::Locality;
use serde_json::Value;

use super::{
    Bootstrap, BootstrapError, CertificateProvider, ChannelCreds, FileWatcher, Node, ServerUri,
    XdsServer,
};

/// A JSON value and where it is.
#[derive(Clone, Copy)]
pub(super) struct Doc<'a> {
    source: &'a str,
    value: &'a Value,
}

/// A value at a path.
#[derive(Clone)]
struct At<'a> {
    source: &'a str,
    path: String,
    value: Option<&'a Value>,
}

impl<'a> Doc<'a> {
    pub(super) fn new(source: &'a str, value: &'a Value) -> Self {
        Self { source, value }
    }
}

impl<'a> At<'a> {
    fn err(&self, expected: impl Into<String>) -> BootstrapError {
        BootstrapError::Invalid {
            source_name: self.source.to_owned(),
            key: if self.path.is_empty() {
                "(top level)".into()
            } else {
                self.path.clone()
            },
            expected: expected.into(),
        }
    }

    fn key(&self, key: &str) -> At<'a> {
        let path = if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        };
        At {
            source: self.source,
            path,
            value: self.value.and_then(|v| v.get(key)),
        }
    }

    fn is_set(&self) -> bool {
        self.value.is_some_and(|v| !v.is_null())
    }

    fn object(&self) -> Result<(), BootstrapError> {
        match self.value {
            Some(Value::Object(_)) => Ok(()),
            _ => Err(self.err("an object")),
        }
    }

    /// The elements of an array; `[]` when absent.
    fn array(&self) -> Result<Vec<At<'a>>, BootstrapError> {
        match self.value {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, v)| At {
                    source: self.source,
                    path: format!("{}[{i}]", self.path),
                    value: Some(v),
                })
                .collect()),
            Some(_) => Err(self.err("an array")),
        }
    }

    /// The entries of an object; none when absent.
    fn entries(&self) -> Result<Vec<(String, At<'a>)>, BootstrapError> {
        match self.value {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(map)) => Ok(map
                .iter()
                .map(|(k, v)| {
                    let at = At {
                        source: self.source,
                        path: format!("{}.{k}", self.path),
                        value: Some(v),
                    };
                    (k.clone(), at)
                })
                .collect()),
            Some(_) => Err(self.err("an object")),
        }
    }

    fn opt_str(&self) -> Result<Option<&'a str>, BootstrapError> {
        match self.value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.err("a string")),
        }
    }

    fn str(&self) -> Result<&'a str, BootstrapError> {
        self.opt_str()?.ok_or_else(|| self.err("a string"))
    }

    fn opt_path(&self) -> Result<Option<PathBuf>, BootstrapError> {
        Ok(self.opt_str()?.filter(|s| !s.is_empty()).map(PathBuf::from))
    }
}

pub(super) fn bootstrap(doc: &Doc<'_>) -> Result<Bootstrap, BootstrapError> {
    let root = At {
        source: doc.source,
        path: String::new(),
        value: Some(doc.value),
    };
    root.object()?;
    let servers = root.key("xds_servers");
    let xds_servers = servers
        .array()?
        .iter()
        .map(xds_server)
        .collect::<Result<Vec<_>, _>>()?;
    if xds_servers.is_empty() {
        return Err(servers.err("a list of at least one xDS server"));
    }
    let certificate_providers = root
        .key("certificate_providers")
        .entries()?
        .into_iter()
        .map(|(name, at)| Ok((name, certificate_provider(&at)?)))
        .collect::<Result<BTreeMap<_, _>, BootstrapError>>()?;
    let template = root.key("client_default_listener_resource_name_template");
    Ok(Bootstrap {
        xds_servers,
        node: node(&root.key("node"))?,
        certificate_providers,
        server_listener_resource_name_template: root
            .key("server_listener_resource_name_template")
            .opt_str()?
            .map(str::to_owned),
        client_default_listener_resource_name_template: template
            .opt_str()?
            .unwrap_or("%s")
            .to_owned(),
    })
}

fn xds_server(at: &At<'_>) -> Result<XdsServer, BootstrapError> {
    at.object()?;
    let uri_at = at.key("server_uri");
    let uri = server_uri(uri_at.str()?).ok_or_else(|| {
        uri_at.err("a gRPC target such as host:port, dns:///host:port or unix:///path")
    })?;
    let creds_at = at.key("channel_creds");
    let mut offered = Vec::new();
    let mut channel_creds = None;
    for cred in creds_at.array()? {
        cred.object()?;
        let kind = cred.key("type").str()?;
        offered.push(kind.to_owned());
        channel_creds = match kind {
            "insecure" => Some(ChannelCreds::Insecure),
            "tls" => Some(ChannelCreds::Tls(file_watcher(&cred.key("config"))?)),
            // gRPC takes the first type it supports.
            _ => continue,
        };
        break;
    }
    let channel_creds = channel_creds.ok_or_else(|| {
        creds_at.err(format!(
            "a list naming a supported channel credential type (insecure, tls); found {offered:?}"
        ))
    })?;
    let server_features = at
        .key("server_features")
        .array()?
        .iter()
        .map(|f| f.str().map(str::to_owned))
        .collect::<Result<_, _>>()?;
    Ok(XdsServer {
        uri,
        channel_creds,
        server_features,
    })
}

/// A gRPC target URI naming a control plane.
pub(super) fn server_uri(uri: &str) -> Option<ServerUri> {
    if let Some(path) = uri.strip_prefix("unix://") {
        return (!path.is_empty()).then(|| ServerUri::Unix(PathBuf::from(path)));
    }
    if let Some(path) = uri.strip_prefix("unix:") {
        return (!path.is_empty()).then(|| ServerUri::Unix(PathBuf::from(path)));
    }
    let authority = uri
        .strip_prefix("dns:///")
        .or_else(|| uri.strip_prefix("ipv4:"))
        .or_else(|| uri.strip_prefix("ipv6:"))
        .unwrap_or(uri);
    let valid = !authority.is_empty()
        && !authority.contains('/')
        && authority.parse::<http::uri::Authority>().is_ok();
    valid.then(|| ServerUri::Tcp(authority.to_owned()))
}

fn node(at: &At<'_>) -> Result<Node, BootstrapError> {
    if !at.is_set() {
        return Ok(Node::default());
    }
    at.object()?;
    let locality = at.key("locality");
    let text = |key: &str, at: &At<'_>| -> Result<String, BootstrapError> {
        Ok(at.key(key).opt_str()?.unwrap_or_default().to_owned())
    };
    let metadata = match at.key("metadata").value {
        None | Some(Value::Null) => Default::default(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(at.key("metadata").err("an object")),
    };
    if locality.is_set() {
        locality.object()?;
    }
    Ok(Node {
        id: text("id", at)?,
        cluster: text("cluster", at)?,
        locality: Locality {
            region: text("region", &locality)?,
            zone: text("zone", &locality)?,
            sub_zone: text("sub_zone", &locality)?,
        },
        metadata,
    })
}

fn certificate_provider(at: &At<'_>) -> Result<CertificateProvider, BootstrapError> {
    at.object()?;
    let plugin = at.key("plugin_name");
    match plugin.str()? {
        "file_watcher" => Ok(CertificateProvider {
            file_watcher: file_watcher(&at.key("config"))?,
        }),
        other => Err(plugin.err(format!(
            "\"file_watcher\", the one plugin there is; not {other:?}"
        ))),
    }
}

fn file_watcher(at: &At<'_>) -> Result<FileWatcher, BootstrapError> {
    if at.is_set() {
        at.object()?;
    }
    let watcher = FileWatcher {
        certificate_file: at.key("certificate_file").opt_path()?,
        private_key_file: at.key("private_key_file").opt_path()?,
        ca_certificate_file: at.key("ca_certificate_file").opt_path()?,
        refresh_interval: match at.key("refresh_interval").opt_str()? {
            None => Duration::from_secs(600),
            Some(s) => proto::json_duration(s).ok_or_else(|| {
                at.key("refresh_interval")
                    .err("a duration in seconds such as \"600s\" or \"0.5s\"")
            })?,
        },
    };
    watcher
        .identity_files()
        .map_err(|_| at.err("certificate_file and private_key_file together, or neither"))?;
    Ok(watcher)
}
