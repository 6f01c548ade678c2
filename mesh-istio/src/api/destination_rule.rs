//! `DestinationRule`: the policies of a host and the subsets routes name
//! (Istio's `networking.istio.io/v1` `DestinationRule`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::traffic_policy::TrafficPolicy;
use super::{ObjectMeta, string_map};

/// A `DestinationRule` resource.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRule {
    /// `networking.istio.io/v1`, `v1beta1` or `v1alpha3`.
    pub api_version: String,
    /// `DestinationRule`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// The rule.
    pub spec: DestinationRuleSpec,
}

/// The policies and subsets of one host.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    /// The host: a short name (expanded in the resource's namespace), a
    /// fully qualified name, or a `*.suffix` wildcard.
    pub host: String,
    /// Policies of the whole host.
    pub traffic_policy: Option<TrafficPolicy>,
    /// Named subsets of the host's endpoints.
    #[serde(default)]
    pub subsets: Vec<Subset>,
    /// The namespaces that may see the resource.
    #[serde(default)]
    pub export_to: Vec<String>,
    /// The workloads the rule applies to; all when absent.
    pub workload_selector: Option<WorkloadSelector>,
}

/// A subset of a host's endpoints, selected by labels, with policies that
/// override the host's.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subset {
    /// The name routes use.
    pub name: String,
    /// Labels an endpoint must carry.
    #[serde(default, deserialize_with = "string_map")]
    pub labels: BTreeMap<String, String>,
    /// Policies overriding the host's.
    pub traffic_policy: Option<TrafficPolicy>,
}

/// Workloads selected by labels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSelector {
    /// Labels a workload must carry.
    #[serde(default, deserialize_with = "string_map")]
    pub match_labels: BTreeMap<String, String>,
}
