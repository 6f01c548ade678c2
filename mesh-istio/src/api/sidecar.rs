//! `Sidecar`: what a workload's sidecar proxy takes in (its ingress
//! listeners) and sends out to (its egress listeners and the hosts they
//! reach), Istio's `networking.istio.io/v1` `Sidecar`. Without iptables
//! (`captureMode: NONE`) it is how a sidecar's listeners are bound.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ConnectionPoolSettings, ObjectMeta, Port, ServerTLSSettings, string_map};

/// A `Sidecar` resource.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sidecar {
    /// `networking.istio.io/v1`, `v1beta1` or `v1alpha3`.
    pub api_version: String,
    /// `Sidecar`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// Its listeners and the workloads it applies to.
    pub spec: SidecarSpec,
}

/// The workloads a Sidecar applies to and their listeners.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SidecarSpec {
    /// The workloads of its namespace it applies to; every one without
    /// a more specific Sidecar when absent.
    pub workload_selector: Option<SidecarSelector>,
    /// Ports the sidecar takes requests on for its workload.
    #[serde(default)]
    pub ingress: Vec<IstioIngressListener>,
    /// Ports and hosts the sidecar sends its workload's requests to.
    #[serde(default)]
    pub egress: Vec<IstioEgressListener>,
    /// Whether hosts outside the registry may be reached.
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
}

/// The labels of the workloads a Sidecar applies to (Istio's
/// `WorkloadSelector`, with `labels`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SidecarSelector {
    /// Labels a workload must carry.
    #[serde(default, deserialize_with = "string_map")]
    pub labels: BTreeMap<String, String>,
}

/// How traffic reaches a listener.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaptureMode {
    /// The environment's default (iptables on Kubernetes).
    #[default]
    Default,
    /// Redirected by iptables.
    Iptables,
    /// Not captured: the listener binds its address and is reached there.
    None,
}

/// A port a sidecar takes requests on and where it hands them to its
/// workload (Istio's `IstioIngressListener`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioIngressListener {
    /// The port; required.
    pub port: Option<Port>,
    /// The address it binds; the workload's own when empty.
    #[serde(default)]
    pub bind: String,
    /// How traffic reaches it.
    #[serde(default)]
    pub capture_mode: CaptureMode,
    /// Where requests go: `127.0.0.1:PORT`, `0.0.0.0:PORT` or
    /// `unix:///path`.
    #[serde(default)]
    pub default_endpoint: String,
    /// TLS the listener terminates with files of its own, instead of the
    /// mesh's mutual TLS.
    pub tls: Option<ServerTLSSettings>,
    /// Connection limits towards the workload.
    pub connection_pool: Option<ConnectionPoolSettings>,
}

/// Ports and hosts a sidecar sends requests to (Istio's
/// `IstioEgressListener`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioEgressListener {
    /// The port; every port of the hosts when absent.
    pub port: Option<Port>,
    /// The address it binds; the workload's own when empty.
    #[serde(default)]
    pub bind: String,
    /// How traffic reaches it.
    #[serde(default)]
    pub capture_mode: CaptureMode,
    /// The hosts reached, `namespace/dnsName`: `*/*`, `./*` (the
    /// Sidecar's namespace), `~/*` (none), `ns/reviews.ns.svc.cluster.local`,
    /// `*/*.example.com`.
    #[serde(default)]
    pub hosts: Vec<String>,
}

/// Whether hosts outside the registry may be reached (Istio's
/// `OutboundTrafficPolicy`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboundTrafficPolicy {
    /// `REGISTRY_ONLY` or `ALLOW_ANY`.
    #[serde(default)]
    pub mode: String,
}
