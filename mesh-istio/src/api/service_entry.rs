//! `ServiceEntry`: services the mesh does not discover itself, with their
//! hosts, ports and endpoints (Istio's `networking.istio.io/v1`
//! `ServiceEntry`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::workload_entry::WorkloadEntrySpec;
use super::{ObjectMeta, string_map};

/// A `ServiceEntry` resource.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntry {
    /// `networking.istio.io/v1`, `v1beta1` or `v1alpha3`.
    pub api_version: String,
    /// `ServiceEntry`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// The entry.
    pub spec: ServiceEntrySpec,
}

/// The hosts, ports and endpoints of a ServiceEntry.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntrySpec {
    /// The host names, taken as written (a short name is not expanded);
    /// `*.suffix` wildcards allowed.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Virtual IP addresses or CIDR ranges of the service.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// The ports.
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    /// Whether the service is part of the mesh.
    pub location: Option<ServiceEntryLocation>,
    /// How its endpoints are found; `NONE` when absent.
    pub resolution: Option<ServiceEntryResolution>,
    /// Its endpoints, written here; not with `workloadSelector`.
    #[serde(default)]
    pub endpoints: Vec<WorkloadEntrySpec>,
    /// The WorkloadEntries of its namespace that serve it, by labels; not
    /// with `endpoints`.
    pub workload_selector: Option<WorkloadLabelSelector>,
    /// The namespaces that may see the resource.
    #[serde(default)]
    pub export_to: Vec<String>,
    /// Names the servers' certificates must carry.
    #[serde(default)]
    pub subject_alt_names: Vec<String>,
}

/// A port of a ServiceEntry (Istio's `ServicePort`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// The port number; required (0 when absent).
    #[serde(default)]
    pub number: u32,
    /// `HTTP`, `HTTP2`, `GRPC`, `TCP`, `TLS`, ... (any case).
    #[serde(default)]
    pub protocol: String,
    /// The port's name, by which WorkloadEntries give their own port for
    /// it.
    #[serde(default)]
    pub name: String,
    /// The port endpoints listen on when they give none; 0 for `number`.
    #[serde(default)]
    pub target_port: u32,
}

/// Whether a ServiceEntry's service is in the mesh (Istio's
/// `ServiceEntry.Location`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceEntryLocation {
    /// Outside the mesh: no mutual TLS towards it.
    MeshExternal,
    /// Part of the mesh.
    MeshInternal,
}

/// How a ServiceEntry's endpoints are found (Istio's
/// `ServiceEntry.Resolution`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceEntryResolution {
    /// Requests go to the address the application asked for.
    None,
    /// The endpoints' IP addresses.
    Static,
    /// The endpoints' addresses, or the hosts, resolved by DNS.
    Dns,
    /// As `DNS`, one address at a time.
    DnsRoundRobin,
}

/// Workloads of the resource's namespace selected by labels (Istio's
/// `networking` `WorkloadSelector`, written `labels`, unlike the
/// `matchLabels` of a DestinationRule's [`WorkloadSelector`](super::WorkloadSelector)).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadLabelSelector {
    /// Labels a workload must carry.
    #[serde(default, deserialize_with = "string_map")]
    pub labels: BTreeMap<String, String>,
}
