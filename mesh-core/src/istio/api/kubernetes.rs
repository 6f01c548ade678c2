//! Kubernetes' own `Service` (`apiVersion: v1`), as far as the registry
//! reads it: its ports and the selector of the pods, or WorkloadEntries,
//! that serve it.

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
