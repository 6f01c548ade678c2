//! `VirtualService`: the routing rules of a set of hosts (Istio's
//! `networking.istio.io/v1` `VirtualService`), with its HTTP, TLS and TCP
//! routes.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::http::{
    CorsPolicy, HTTPDirectResponse, HTTPFaultInjection, HTTPMatchRequest, HTTPMirrorPolicy,
    HTTPRedirect, HTTPRetry, HTTPRewrite, Headers,
};
use super::{Destination, ObjectMeta, Percent, string_map};
use crate::Duration;

/// A `VirtualService` resource.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualService {
    /// `networking.istio.io/v1`, `v1beta1` or `v1alpha3`.
    pub api_version: String,
    /// `VirtualService`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// The rules.
    pub spec: VirtualServiceSpec,
}

/// The rules of a VirtualService.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceSpec {
    /// The hosts the rules apply to: short names (expanded in the
    /// resource's namespace), fully qualified names, or `*.suffix`
    /// wildcards.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// The gateways and sidecars that apply the rules; `mesh` is every
    /// sidecar (and this client). Empty means `mesh`.
    #[serde(default)]
    pub gateways: Vec<String>,
    /// HTTP routes, in order: the first that matches wins.
    #[serde(default)]
    pub http: Vec<HTTPRoute>,
    /// Routes for unterminated TLS, by SNI.
    #[serde(default)]
    pub tls: Vec<TLSRoute>,
    /// Routes for opaque TCP.
    #[serde(default)]
    pub tcp: Vec<TCPRoute>,
    /// The namespaces that may see the resource.
    #[serde(default)]
    pub export_to: Vec<String>,
}

/// One HTTP route: when it applies and what it does.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRoute {
    /// A name for logs, joined with the match's name.
    #[serde(default)]
    pub name: String,
    /// Conditions, any of which selects the route (YAML `match`); none
    /// matches every request.
    #[serde(default, rename = "match")]
    pub matches: Vec<HTTPMatchRequest>,
    /// Where requests go, with weights.
    #[serde(default)]
    pub route: Vec<HTTPRouteDestination>,
    /// Answer with a redirect instead.
    pub redirect: Option<HTTPRedirect>,
    /// Answer with a fixed response instead.
    pub direct_response: Option<HTTPDirectResponse>,
    /// Take the routes of another VirtualService instead.
    pub delegate: Option<Delegate>,
    /// Rewrite the path and authority before forwarding.
    pub rewrite: Option<HTTPRewrite>,
    /// Whole-request timeout; `0s` disables it.
    pub timeout: Option<Duration>,
    /// Retry policy.
    pub retries: Option<HTTPRetry>,
    /// Faults to inject.
    pub fault: Option<HTTPFaultInjection>,
    /// A destination that receives copies of the requests.
    pub mirror: Option<Destination>,
    /// Destinations that receive copies of the requests, each with its
    /// share.
    #[serde(default)]
    pub mirrors: Vec<HTTPMirrorPolicy>,
    /// The share mirrored, in whole percent (deprecated).
    pub mirror_percent: Option<u32>,
    /// The share of requests copied to `mirror`; all when absent.
    pub mirror_percentage: Option<Percent>,
    /// Cross-origin resource sharing policy.
    pub cors_policy: Option<CorsPolicy>,
    /// Header changes.
    pub headers: Option<Headers>,
}

/// A destination and its share of the requests.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteDestination {
    /// Where requests go.
    pub destination: Destination,
    /// The share; a single destination takes all requests whatever its
    /// weight.
    #[serde(default)]
    pub weight: u32,
    /// Header changes for requests sent to this destination.
    pub headers: Option<Headers>,
}

/// A VirtualService whose HTTP routes are used in place of a route.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delegate {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its namespace; the root's when empty.
    #[serde(default)]
    pub namespace: String,
}

/// A route for unterminated TLS.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TLSRoute {
    /// Conditions, any of which selects the route.
    #[serde(default, rename = "match")]
    pub matches: Vec<TLSMatchAttributes>,
    /// Where connections go.
    #[serde(default)]
    pub route: Vec<RouteDestination>,
}

/// A route for opaque TCP.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TCPRoute {
    /// Conditions, any of which selects the route.
    #[serde(default, rename = "match")]
    pub matches: Vec<L4MatchAttributes>,
    /// Where connections go.
    #[serde(default)]
    pub route: Vec<RouteDestination>,
}

/// A layer-4 destination and its share.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteDestination {
    /// Where connections go.
    pub destination: Destination,
    /// The share.
    #[serde(default)]
    pub weight: u32,
}

/// Conditions on a TCP connection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L4MatchAttributes {
    /// Destination addresses or subnets.
    #[serde(default)]
    pub destination_subnets: Vec<String>,
    /// The destination port.
    #[serde(default)]
    pub port: u32,
    /// The source subnet.
    #[serde(default)]
    pub source_subnet: String,
    /// Labels the client workload must carry.
    #[serde(default, deserialize_with = "string_map")]
    pub source_labels: BTreeMap<String, String>,
    /// Gateways the condition applies on.
    #[serde(default)]
    pub gateways: Vec<String>,
    /// The client workload's namespace.
    #[serde(default)]
    pub source_namespace: String,
}

/// Conditions on a TLS connection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TLSMatchAttributes {
    /// SNI names, wildcards allowed.
    #[serde(default)]
    pub sni_hosts: Vec<String>,
    /// Destination addresses or subnets.
    #[serde(default)]
    pub destination_subnets: Vec<String>,
    /// The destination port.
    #[serde(default)]
    pub port: u32,
    /// Labels the client workload must carry.
    #[serde(default, deserialize_with = "string_map")]
    pub source_labels: BTreeMap<String, String>,
    /// Gateways the condition applies on.
    #[serde(default)]
    pub gateways: Vec<String>,
    /// The client workload's namespace.
    #[serde(default)]
    pub source_namespace: String,
}
