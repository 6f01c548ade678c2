//! Istio's `security.istio.io/v1` API: [`AuthorizationPolicy`] (who may
//! call a workload, and what) and [`PeerAuthentication`] (whether it
//! takes mutual TLS), named as in Istio's protos with their camelCase
//! YAML field names.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ObjectMeta, string_map};

/// The workloads a policy applies to, by their labels (Istio's
/// `WorkloadSelector`); none selects every workload of the namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    /// Labels a workload must carry.
    #[serde(default, deserialize_with = "string_map")]
    pub match_labels: BTreeMap<String, String>,
}

/// An `AuthorizationPolicy` resource.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicy {
    /// `security.istio.io/v1` or `v1beta1`.
    pub api_version: String,
    /// `AuthorizationPolicy`.
    pub kind: String,
    /// Name and namespace: a policy in Istio's root namespace
    /// (`istio-system`) applies to every namespace.
    pub metadata: ObjectMeta,
    /// The policy.
    #[serde(default)]
    pub spec: AuthorizationPolicySpec,
}

/// What a policy does with the requests its rules match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthorizationAction {
    /// Requests a rule matches are let through; with any ALLOW policy on a
    /// workload, other requests are denied.
    #[default]
    Allow,
    /// Requests a rule matches are denied.
    Deny,
    /// Requests a rule matches are logged.
    Audit,
    /// Requests a rule matches are sent to an external authorizer.
    Custom,
}

/// The policy (Istio's `AuthorizationPolicy` message).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicySpec {
    /// The workloads it applies to.
    pub selector: Option<Selector>,
    /// The rules; a request matching any one is matched. An ALLOW policy
    /// with none allows nothing; `rules: [{}]` matches every request.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// ALLOW (the default), DENY, AUDIT or CUSTOM.
    #[serde(default)]
    pub action: AuthorizationAction,
    /// The external authorizer of a CUSTOM policy.
    pub provider: Option<ExtensionProvider>,
}

/// A CUSTOM policy's authorizer, by its name in the mesh config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionProvider {
    /// The provider's name.
    #[serde(default)]
    pub name: String,
}

/// One rule: a request matches when it matches a `from`, a `to` and
/// every `when` (each list matching anything when empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Who the request comes from.
    #[serde(default)]
    pub from: Vec<RuleFrom>,
    /// What it asks for.
    #[serde(default)]
    pub to: Vec<RuleTo>,
    /// Further conditions.
    #[serde(default)]
    pub when: Vec<Condition>,
}

/// A `from` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleFrom {
    /// The source.
    #[serde(default)]
    pub source: Source,
}

/// A `to` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleTo {
    /// The operation.
    #[serde(default)]
    pub operation: Operation,
}

/// Who a request comes from; every field set must match, and each is
/// matched by any of its values (`*` for any, `prefix*`, `*suffix`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// Peer identities from mutual TLS, `cluster.local/ns/NS/sa/SA`.
    #[serde(default)]
    pub principals: Vec<String>,
    /// Peer identities that must not match.
    #[serde(default)]
    pub not_principals: Vec<String>,
    /// JWT identities, `ISS/SUB`.
    #[serde(default)]
    pub request_principals: Vec<String>,
    /// JWT identities that must not match.
    #[serde(default)]
    pub not_request_principals: Vec<String>,
    /// The peer's namespace, from its mutual TLS identity.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Namespaces that must not match.
    #[serde(default)]
    pub not_namespaces: Vec<String>,
    /// The peer's address: IPs and CIDR blocks.
    #[serde(default)]
    pub ip_blocks: Vec<String>,
    /// Addresses that must not match.
    #[serde(default)]
    pub not_ip_blocks: Vec<String>,
    /// The original client's address (`X-Forwarded-For`).
    #[serde(default)]
    pub remote_ip_blocks: Vec<String>,
    /// Original client addresses that must not match.
    #[serde(default)]
    pub not_remote_ip_blocks: Vec<String>,
}

/// What a request asks for; every field set must match, and each is
/// matched by any of its values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// The `Host` / `:authority`.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Hosts that must not match.
    #[serde(default)]
    pub not_hosts: Vec<String>,
    /// The port the request arrived on.
    #[serde(default)]
    pub ports: Vec<String>,
    /// Ports that must not match.
    #[serde(default)]
    pub not_ports: Vec<String>,
    /// The HTTP method (`POST` for gRPC).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Methods that must not match.
    #[serde(default)]
    pub not_methods: Vec<String>,
    /// The path (for gRPC `/package.Service/Method`).
    #[serde(default)]
    pub paths: Vec<String>,
    /// Paths that must not match.
    #[serde(default)]
    pub not_paths: Vec<String>,
}

/// A condition on a request attribute (`request.headers[x-user]`,
/// `source.ip`, `source.namespace`, `source.principal`,
/// `destination.port`, …).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The attribute.
    #[serde(default)]
    pub key: String,
    /// Values any of which matches.
    #[serde(default)]
    pub values: Vec<String>,
    /// Values none of which may match.
    #[serde(default)]
    pub not_values: Vec<String>,
}

/// A `PeerAuthentication` resource.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerAuthentication {
    /// `security.istio.io/v1` or `v1beta1`.
    pub api_version: String,
    /// `PeerAuthentication`.
    pub kind: String,
    /// Name and namespace: one in the root namespace without a selector
    /// is the mesh's default.
    pub metadata: ObjectMeta,
    /// The policy.
    #[serde(default)]
    pub spec: PeerAuthenticationSpec,
}

/// The policy (Istio's `PeerAuthentication` message).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerAuthenticationSpec {
    /// The workloads it applies to.
    pub selector: Option<Selector>,
    /// The mode for every port.
    pub mtls: Option<MutualTls>,
    /// Modes for single ports (the workload's ports, not the service's).
    #[serde(default)]
    pub port_level_mtls: BTreeMap<u32, MutualTls>,
}

/// A mutual TLS setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MutualTls {
    /// The mode; UNSET inherits from the policy above.
    #[serde(default)]
    pub mode: MutualTlsMode,
}

/// Whether a workload takes mutual TLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MutualTlsMode {
    /// Inherited from the parent policy (namespace, then mesh); PERMISSIVE
    /// at the top.
    #[default]
    Unset,
    /// Plain text only.
    Disable,
    /// Mutual TLS or plain text.
    Permissive,
    /// Mutual TLS only.
    Strict,
}
