//! Kubernetes' own `Service` (`apiVersion: v1`), as far as the registry
//! reads it: its ports and the selector of the pods, or WorkloadEntries,
//! that serve it; and `Secret`, whose certificates a Gateway server's
//! `credentialName` names.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ObjectMeta, string_map};

/// A Kubernetes `Service` resource.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// `v1`.
    pub api_version: String,
    /// `Service`.
    pub kind: String,
    /// Name, namespace, and the annotation `networking.istio.io/exportTo`.
    pub metadata: ObjectMeta,
    /// The service.
    #[serde(default)]
    pub spec: ServiceSpec,
}

/// A Kubernetes Service's ports and selector.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// The ports.
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    /// Labels of the workloads of its namespace that serve it; none
    /// selected when empty.
    #[serde(default, deserialize_with = "string_map")]
    pub selector: BTreeMap<String, String>,
    /// `ClusterIP` (the default), `NodePort`, `LoadBalancer` or
    /// `ExternalName`.
    #[serde(rename = "type")]
    pub service_type: Option<String>,
    /// Its virtual IP address; `None` (the text) for a headless service.
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<String>,
}

/// A port of a Kubernetes Service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// Its name; its prefix names the protocol for Istio (`http`,
    /// `grpc-api`).
    #[serde(default)]
    pub name: String,
    /// The port clients call; required (0 when absent).
    #[serde(default)]
    pub port: u32,
    /// The port the pods listen on, by number or by the name of a
    /// container port; `port` when absent.
    pub target_port: Option<IntOrString>,
    /// `TCP` (the default), `UDP` or `SCTP`.
    pub protocol: Option<String>,
    /// The application protocol, which Istio prefers to the name's prefix.
    pub app_protocol: Option<String>,
    /// The port on each node; not used by the mesh.
    pub node_port: Option<u32>,
}

/// A number or a name (Kubernetes' `IntOrString`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged, expecting = "a port number or a port name")]
pub enum IntOrString {
    /// A number.
    Int(u32),
    /// A name.
    String(String),
}

/// A Kubernetes `Secret`: a TLS certificate and key (type
/// `kubernetes.io/tls`, keys `tls.crt`, `tls.key`, `ca.crt`) or Istio's
/// generic layout (`cert`, `key`, `cacert`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// `v1`.
    pub api_version: String,
    /// `Secret`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// `kubernetes.io/tls`, `Opaque`, …
    #[serde(default, rename = "type")]
    pub secret_type: String,
    /// Values by key, base64-encoded.
    #[serde(default, deserialize_with = "string_map")]
    pub data: BTreeMap<String, String>,
    /// Values by key, as text; over `data` for the same key.
    #[serde(default, deserialize_with = "string_map")]
    pub string_data: BTreeMap<String, String>,
    /// Whether it may change; nothing here changes it.
    #[serde(default)]
    pub immutable: bool,
}

impl Secret {
    /// The value of `key`, decoded: `stringData`'s, else `data`'s; `Err`
    /// says why when `data` holds something that is not base64 of text.
    pub fn value(&self, key: &str) -> Result<Option<String>, String> {
        use base64::Engine;

        if let Some(text) = self.string_data.get(key) {
            return Ok(Some(text.clone()));
        }
        let Some(encoded) = self.data.get(key) else {
            return Ok(None);
        };
        let compact: String = encoded.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|e| format!("not base64 ({e})"))?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| "not text (expected PEM)".to_owned())
    }
}
