//! The serde types of Istio's `networking.istio.io/v1` API that the client
//! configuration and the service registry read: [`VirtualService`],
//! [`DestinationRule`], [`Gateway`], [`ServiceEntry`], [`WorkloadEntry`] and
//! [`Sidecar`] with
//! everything under them, named as in Istio's protos and with their
//! camelCase YAML field names; and Kubernetes' own [`Service`](kubernetes::Service)
//! in [`kubernetes`]; and `security.istio.io/v1`'s [`AuthorizationPolicy`]
//! and [`PeerAuthentication`]. Protobuf `oneof`s are optional fields side by
//! side, as the YAML writes them; which combinations are allowed is checked
//! when the resources are converted, not here.
//!
//! The types only describe the YAML: they hold no defaults of Istio's and
//! make no decisions, so the control plane can read the same values to
//! produce xDS.

mod destination_rule;
mod gateway;
mod http;
pub mod kubernetes;
mod security;
mod service_entry;
mod sidecar;
mod traffic_policy;
mod virtual_service;
mod workload_entry;

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

pub use destination_rule::{DestinationRule, DestinationRuleSpec, Subset, WorkloadSelector};
pub use gateway::{
    Gateway, GatewaySpec, Port, Server, ServerTLSMode, ServerTLSSettings, TLSCertificate,
    TLSProtocol,
};
pub use http::{
    CorsPolicy, HTTPBody, HTTPDirectResponse, HTTPFaultInjection, HTTPFaultInjectionAbort,
    HTTPFaultInjectionDelay, HTTPMatchRequest, HTTPMirrorPolicy, HTTPRedirect, HTTPRetry,
    HTTPRewrite, HeaderOperations, Headers, RedirectPortSelection, RegexRewrite,
    UnmatchedPreflights,
};
pub use security::{
    AuthorizationAction, AuthorizationPolicy, AuthorizationPolicySpec, Condition,
    ExtensionProvider, MutualTls, MutualTlsMode, Operation, PeerAuthentication,
    PeerAuthenticationSpec, Rule, RuleFrom, RuleTo, Selector, Source,
};
pub use service_entry::{
    ServiceEntry, ServiceEntryLocation, ServiceEntryResolution, ServiceEntrySpec, ServicePort,
    WorkloadLabelSelector,
};
pub use sidecar::{
    CaptureMode, IstioEgressListener, IstioIngressListener, OutboundTrafficPolicy, Sidecar,
    SidecarSelector, SidecarSpec,
};
pub use traffic_policy::{
    ClientTLSSettings, ConnectionPoolSettings, ConsistentHashLB, H2UpgradePolicy, HTTPCookie,
    HTTPSettings, LoadBalancerSettings, LocalityDistribute, LocalityFailover,
    LocalityLoadBalancerSetting, MagLev, OutlierDetection, PortTrafficPolicy, ProxyProtocol,
    RingHash, SimpleLB, TCPSettings, TLSMode, TcpKeepalive, TrafficPolicy,
    TrafficPolicyRetryBudget, TunnelSettings, WarmupConfiguration,
};
pub use virtual_service::{
    Delegate, HTTPRoute, HTTPRouteDestination, L4MatchAttributes, RouteDestination, TCPRoute,
    TLSMatchAttributes, TLSRoute, VirtualService, VirtualServiceSpec,
};
pub use workload_entry::{WorkloadEntry, WorkloadEntrySpec};

/// The Kubernetes object metadata Istio reads.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// The resource's name.
    pub name: String,
    /// Its namespace; `default` when absent.
    pub namespace: Option<String>,
    /// Labels.
    #[serde(default, deserialize_with = "string_map")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, deserialize_with = "string_map")]
    pub annotations: BTreeMap<String, String>,
}

impl ObjectMeta {
    /// The namespace, `default` when none is written.
    pub fn namespace(&self) -> &str {
        self.namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or("default")
    }
}

/// How a string is matched: at most one of the three (Istio's oneof). An
/// empty `{}` is allowed where Istio allows it (headers and query
/// parameters, where it means "present").
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StringMatch {
    /// Exact match.
    pub exact: Option<String>,
    /// Prefix match.
    pub prefix: Option<String>,
    /// RE2 regular expression matching the whole value.
    pub regex: Option<String>,
}

/// A percentage, 0 to 100 (Istio's `Percent`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Percent {
    /// The percentage.
    #[serde(default)]
    pub value: f64,
}

/// A port of the destination (Istio's `PortSelector`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortSelector {
    /// The port number.
    #[serde(default)]
    pub number: u32,
}

/// Where requests go: a service, optionally a subset of it and a port
/// (Istio's `Destination`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// The service: a short name (`reviews`, expanded in the resource's
    /// namespace) or a fully qualified one.
    pub host: String,
    /// A subset named by a DestinationRule of the host.
    #[serde(default)]
    pub subset: String,
    /// The port; when absent the request's port is used.
    pub port: Option<PortSelector>,
}

/// Reads a `map<string, string>`, taking YAML booleans and numbers as the
/// text they are written as (`test: true` in a header map, `version: 1` in
/// labels), as Kubernetes users write them.
pub(crate) fn string_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct MapVisitor;

    impl<'de> Visitor<'de> for MapVisitor {
        type Value = BTreeMap<String, String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of names to text values")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = map.next_value::<Scalar>()?;
                out.insert(key, value.0);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_any(MapVisitor)
}

/// A YAML scalar as text.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;

        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a text value")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }

        deserializer.deserialize_any(ScalarVisitor)
    }
}
