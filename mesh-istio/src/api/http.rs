//! The parts of an HTTP route: its match conditions and its actions
//! (redirect, direct response, rewrite, retries, faults, mirrors, header
//! changes, CORS), as Istio's `networking.istio.io/v1` API names them.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Destination, Percent, StringMatch, string_map};
use crate::Duration;

/// Conditions a request must meet, all of them (Istio's
/// `HTTPMatchRequest`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HTTPMatchRequest {
    /// A name for logs, joined with the route's name.
    #[serde(default)]
    pub name: String,
    /// The path.
    pub uri: Option<StringMatch>,
    /// The scheme.
    pub scheme: Option<StringMatch>,
    /// The method.
    pub method: Option<StringMatch>,
    /// The authority (`Host`).
    pub authority: Option<StringMatch>,
    /// Headers, by lower-case name; `{}` checks only that the header is
    /// present. A `null` value is an error, as in Istio.
    #[serde(default)]
    pub headers: BTreeMap<String, Option<StringMatch>>,
    /// The destination port.
    #[serde(default)]
    pub port: u32,
    /// Labels the client workload must carry.
    #[serde(default, deserialize_with = "string_map")]
    pub source_labels: BTreeMap<String, String>,
    /// Gateways the condition applies on, replacing the VirtualService's.
    #[serde(default)]
    pub gateways: Vec<String>,
    /// Query parameters; `{}` checks only presence.
    #[serde(default)]
    pub query_params: BTreeMap<String, Option<StringMatch>>,
    /// Compare `exact` and `prefix` paths ignoring ASCII case.
    #[serde(default)]
    pub ignore_uri_case: bool,
    /// Headers that must *not* match.
    #[serde(default)]
    pub without_headers: BTreeMap<String, Option<StringMatch>>,
    /// The client workload's namespace.
    #[serde(default)]
    pub source_namespace: String,
    /// A prefix for the route's statistics.
    #[serde(default)]
    pub stat_prefix: String,
}

/// Answer with a redirect (Istio's `HTTPRedirect`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRedirect {
    /// The new path.
    #[serde(default)]
    pub uri: String,
    /// The new authority.
    #[serde(default)]
    pub authority: String,
    /// The new port.
    pub port: Option<u32>,
    /// Where the port comes from, instead of `port`.
    pub derive_port: Option<RedirectPortSelection>,
    /// The new scheme.
    #[serde(default)]
    pub scheme: String,
    /// The status: 301 (default), 302, 303, 307 or 308.
    #[serde(default)]
    pub redirect_code: u32,
}

/// Where a redirect's port comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RedirectPortSelection {
    /// 80 for `http`, 443 for `https`.
    FromProtocolDefault,
    /// The port of the request.
    FromRequestPort,
}

/// Answer with a fixed response (Istio's `HTTPDirectResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HTTPDirectResponse {
    /// The status.
    pub status: u32,
    /// The body.
    pub body: Option<HTTPBody>,
}

/// A response body: text or base64-encoded bytes, one of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HTTPBody {
    /// Text.
    pub string: Option<String>,
    /// Bytes, base64-encoded.
    pub bytes: Option<String>,
}

/// Path and authority changes before forwarding (Istio's `HTTPRewrite`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRewrite {
    /// Replaces the matched prefix (or the whole path).
    #[serde(default)]
    pub uri: String,
    /// Replaces the authority.
    #[serde(default)]
    pub authority: String,
    /// Replaces every match of a pattern in the path.
    pub uri_regex_rewrite: Option<RegexRewrite>,
}

/// A regular-expression path rewrite.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegexRewrite {
    /// The RE2 pattern (YAML `match`).
    #[serde(default, rename = "match")]
    pub pattern: String,
    /// The replacement, with `\1`-style groups.
    #[serde(default)]
    pub rewrite: String,
}

/// Retry policy (Istio's `HTTPRetry`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRetry {
    /// Retries allowed; 0 disables retries.
    #[serde(default)]
    pub attempts: u32,
    /// Time allowed to each attempt.
    pub per_try_timeout: Option<Duration>,
    /// Envoy retry conditions, comma-separated; bare status codes (`503`)
    /// are retriable statuses.
    #[serde(default)]
    pub retry_on: String,
    /// Retry in other localities.
    pub retry_remote_localities: Option<bool>,
    /// Prefer endpoints not tried yet.
    pub retry_ignore_previous_hosts: Option<bool>,
    /// Base interval between retries.
    pub backoff: Option<Duration>,
}

/// Faults injected into requests (Istio's `HTTPFaultInjection`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HTTPFaultInjection {
    /// Delay before forwarding.
    pub delay: Option<HTTPFaultInjectionDelay>,
    /// Answer with an error instead of forwarding.
    pub abort: Option<HTTPFaultInjectionAbort>,
}

/// A delay and the share of requests it applies to.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HTTPFaultInjectionDelay {
    /// How long.
    pub fixed_delay: Option<Duration>,
    /// An exponential delay (not supported by Istio either).
    pub exponential_delay: Option<Duration>,
    /// The share delayed; none when absent, as in Istio.
    pub percentage: Option<Percent>,
    /// The share delayed in whole percent (deprecated).
    pub percent: Option<u32>,
}

/// An abort and the share of requests it applies to.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HTTPFaultInjectionAbort {
    /// HTTP status answered.
    pub http_status: Option<u32>,
    /// gRPC status answered, by name (`UNAVAILABLE`).
    pub grpc_status: Option<String>,
    /// HTTP/2 error (not supported by Istio either).
    pub http2_error: Option<String>,
    /// The share aborted; none when absent, as in Istio.
    pub percentage: Option<Percent>,
}

/// A mirror destination and its share (Istio's `HTTPMirrorPolicy`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HTTPMirrorPolicy {
    /// Where copies go.
    pub destination: Destination,
    /// The share copied; all when absent.
    pub percentage: Option<Percent>,
}

/// Header changes on requests and responses (Istio's `Headers`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Headers {
    /// Changes to the request before it is forwarded.
    pub request: Option<HeaderOperations>,
    /// Changes to the response before it is returned.
    pub response: Option<HeaderOperations>,
}

/// Header changes: set, add, remove.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderOperations {
    /// Set, replacing any value.
    #[serde(default, deserialize_with = "string_map")]
    pub set: BTreeMap<String, String>,
    /// Added beside any existing value.
    #[serde(default, deserialize_with = "string_map")]
    pub add: BTreeMap<String, String>,
    /// Removed.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// Cross-origin resource sharing policy (Istio's `CorsPolicy`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CorsPolicy {
    /// Allowed origins.
    #[serde(default)]
    pub allow_origins: Vec<StringMatch>,
    /// Allowed origins, exactly (deprecated).
    #[serde(default)]
    pub allow_origin: Vec<String>,
    /// Allowed methods.
    #[serde(default)]
    pub allow_methods: Vec<String>,
    /// Allowed request headers.
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Headers the browser may read.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// How long a preflight answer may be cached.
    pub max_age: Option<Duration>,
    /// Whether credentials are allowed.
    pub allow_credentials: Option<bool>,
    /// What happens to preflight requests that match no origin.
    pub unmatched_preflights: Option<UnmatchedPreflights>,
}

/// What happens to preflight requests that match no origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnmatchedPreflights {
    /// The default: forward them.
    Unspecified,
    /// Forward them to the destination.
    Forward,
    /// Answer them without forwarding.
    Ignore,
}
