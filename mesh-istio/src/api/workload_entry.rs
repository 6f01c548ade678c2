//! `WorkloadEntry`: a workload that is not a Kubernetes pod, such as a VM
//! or a process, which services select by labels (Istio's
//! `networking.istio.io/v1` `WorkloadEntry`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ObjectMeta, string_map};

/// A `WorkloadEntry` resource.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEntry {
    /// `networking.istio.io/v1`, `v1beta1` or `v1alpha3`.
    pub api_version: String,
    /// `WorkloadEntry`.
    pub kind: String,
    /// Name, namespace, and labels added to the spec's (and winning over
    /// them), as istiod adds them.
    pub metadata: ObjectMeta,
    /// The workload.
    pub spec: WorkloadEntrySpec,
}

/// A workload: where it is and what it carries (Istio's `WorkloadEntry`
/// message, also a ServiceEntry's `endpoints`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEntrySpec {
    /// An IP address or a host name (for DNS resolution).
    #[serde(default)]
    pub address: String,
    /// Its ports by the name of the service port they serve.
    #[serde(default)]
    pub ports: BTreeMap<String, u32>,
    /// Its labels.
    #[serde(default, deserialize_with = "string_map")]
    pub labels: BTreeMap<String, String>,
    /// The network it is on, for multi-network meshes.
    #[serde(default)]
    pub network: String,
    /// Where it runs: `region/zone/subzone`.
    #[serde(default)]
    pub locality: String,
    /// Its load-balancing weight; 0 for the default.
    #[serde(default)]
    pub weight: u32,
    /// The service account it runs as.
    #[serde(default)]
    pub service_account: String,
}
