//! Istio's `AuthorizationPolicy` as the xDS RBAC HTTP filters a workload's
//! inbound listener runs, as istiod writes them for proxyless gRPC
//! servers (gRFC A41): the DENY policies first
//! (`envoy.filters.http.rbac.DENY`), then the ALLOW ones
//! (`envoy.filters.http.rbac`).
//!
//! - **Which policies.** Those of the workload's namespace and of Istio's
//!   root namespace (`istio-system`) whose selector the workload's labels
//!   match (no selector matches all). AUDIT and CUSTOM policies are left
//!   out with a warning: gRPC has no audit or external authorizer.
//! - **Rules.** Each rule is an RBAC policy named `NS-NAME-INDEX`. Its
//!   permissions are the `to` operations (hosts as `:authority`, methods as
//!   `:method`, paths, ports) and the `when` conditions on the
//!   destination; its principals are the `from` sources (peer identities
//!   as `spiffe://…`, namespaces, IP blocks) and the `when` conditions on
//!   the source and request headers. Within a field any value matches;
//!   `not…` fields and `notValues` must not match.
//! - **Values** as Istio reads them: `*` matches anything present,
//!   `prefix*` and `*suffix` by prefix and suffix, any other exactly.
//! - **ALLOW with no rule that matches**: when ALLOW policies apply but
//!   none has a rule, nothing is allowed, as Istio's semantics say.
//!
//! What gRPC cannot check (JWT `requestPrincipals`, `request.auth.*`,
//! `connection.sni`, …) is an [`AuthzError`] naming the policy and field,
//! so that a configuration relying on it is refused, never half-enforced.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use envoy_types::pb::envoy::config::core::v3::CidrRange;
use envoy_types::pb::envoy::config::rbac::v3::{
    Permission, Policy, Principal, Rbac, permission, principal, rbac::Action,
};
use envoy_types::pb::envoy::config::route::v3::HeaderMatcher;
use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac as RbacFilter;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpFilter, http_filter::ConfigType,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    PathMatcher, RegexMatcher, StringMatcher, path_matcher, string_matcher::MatchPattern,
};
use envoy_types::pb::google::protobuf::UInt32Value;
use mesh_istio::{
    AuthorizationAction, AuthorizationPolicy, Condition, Operation, Resources, Rule, Source,
    Sourced,
};

use crate::any;

/// Istio's root namespace: its policies apply to every namespace.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// The ALLOW filter's name, as istiod names it.
const ALLOW_FILTER: &str = "envoy.filters.http.rbac";
/// The DENY filter's name.
const DENY_FILTER: &str = "envoy.filters.http.rbac.DENY";

/// A policy gRPC cannot enforce as written.
#[derive(Debug, thiserror::Error)]
#[error("{origin} (AuthorizationPolicy {namespace}/{name}), {field}: {reason}")]
pub struct AuthzError {
    /// The file and document.
    pub origin: String,
    /// The policy's namespace.
    pub namespace: String,
    /// The policy's name.
    pub name: String,
    /// The field, such as `spec.rules[0].when[1].key`.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// The RBAC filters, DENY then ALLOW, for a workload in `namespace` with
/// `labels`; none when no policy applies.
pub fn rbac_filters(
    resources: &Resources,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Result<Vec<HttpFilter>, AuthzError> {
    let applies = |p: &&Sourced<AuthorizationPolicy>| {
        let meta = &p.resource.metadata;
        let ns = meta.namespace();
        let selected = p
            .resource
            .spec
            .selector
            .as_ref()
            .is_none_or(|s| s.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v)));
        (ns == namespace || ns == ROOT_NAMESPACE) && selected
    };
    let mut deny = Vec::new();
    let mut allow = Vec::new();
    for policy in resources.authorization_policies.iter().filter(applies) {
        match policy.resource.spec.action {
            AuthorizationAction::Deny => deny.push(policy),
            AuthorizationAction::Allow => allow.push(policy),
            AuthorizationAction::Audit | AuthorizationAction::Custom => {
                let meta = &policy.resource.metadata;
                tracing::warn!(
                    policy = %format!("{}/{}", meta.namespace(), meta.name),
                    "AUDIT and CUSTOM authorization policies are not enforced by gRPC; left out"
                );
            }
        }
    }
    let mut filters = Vec::new();
    for (action, policies, name) in [
        (Action::Deny, deny, DENY_FILTER),
        (Action::Allow, allow, ALLOW_FILTER),
    ] {
        if policies.is_empty() {
            continue;
        }
        let mut rules = HashMap::new();
        for policy in policies {
            let meta = &policy.resource.metadata;
            for (i, rule) in policy.resource.spec.rules.iter().enumerate() {
                let at = Field {
                    policy,
                    path: format!("spec.rules[{i}]"),
                };
                let name = format!("{}-{}-{i}", meta.namespace(), meta.name);
                rules.insert(name, self::rule(rule, &at)?);
            }
        }
        let filter = RbacFilter {
            rules: Some(Rbac {
                action: action as i32,
                policies: rules,
                ..Default::default()
            }),
            ..Default::default()
        };
        filters.push(HttpFilter {
            name: name.to_owned(),
            config_type: Some(ConfigType::TypedConfig(any(&filter))),
            ..Default::default()
        });
    }
    Ok(filters)
}

/// Checks every policy of `resources` as [`rbac_filters`] would write it.
pub fn check(resources: &Resources) -> Result<(), AuthzError> {
    for policy in &resources.authorization_policies {
        for (i, rule) in policy.resource.spec.rules.iter().enumerate() {
            let at = Field {
                policy,
                path: format!("spec.rules[{i}]"),
            };
            self::rule(rule, &at)?;
        }
    }
    Ok(())
}

/// Where in a policy a value is, for errors.
struct Field<'a> {
    policy: &'a Sourced<AuthorizationPolicy>,
    path: String,
}

impl Field<'_> {
    fn key(&self, key: impl std::fmt::Display) -> Field<'_> {
        Field {
            policy: self.policy,
            path: format!("{}.{key}", self.path),
        }
    }

    fn error(&self, reason: impl Into<String>) -> AuthzError {
        let meta = &self.policy.resource.metadata;
        let origin = &self.policy.origin;
        let origin = match origin.document() {
            Some(d) => format!("{}, document {d}", origin.source()),
            None => origin.source().to_owned(),
        };
        AuthzError {
            origin,
            namespace: meta.namespace().to_owned(),
            name: meta.name.clone(),
            field: self.path.clone(),
            reason: reason.into(),
        }
    }
}

fn rule(rule: &Rule, at: &Field<'_>) -> Result<Policy, AuthzError> {
    let mut permissions = Vec::new();
    let mut principals = Vec::new();
    let to: Vec<Permission> = rule
        .to
        .iter()
        .enumerate()
        .map(|(i, to)| operation(&to.operation, &at.key(format!("to[{i}].operation"))))
        .collect::<Result<_, _>>()?;
    if !to.is_empty() {
        permissions.push(or_permissions(to));
    }
    let from: Vec<Principal> = rule
        .from
        .iter()
        .enumerate()
        .map(|(i, from)| source(&from.source, &at.key(format!("from[{i}].source"))))
        .collect::<Result<_, _>>()?;
    if !from.is_empty() {
        principals.push(or_principals(from));
    }
    for (i, c) in rule.when.iter().enumerate() {
        match condition(c, &at.key(format!("when[{i}]")))? {
            Either::Permission(p) => permissions.push(p),
            Either::Principal(p) => principals.push(p),
        }
    }
    Ok(Policy {
        permissions: vec![and_permissions(permissions)],
        principals: vec![and_principals(principals)],
        ..Default::default()
    })
}

fn operation(op: &Operation, at: &Field<'_>) -> Result<Permission, AuthzError> {
    let mut all = Vec::new();
    let fields: [(&str, &[String], bool); 8] = [
        ("hosts", &op.hosts, false),
        ("notHosts", &op.not_hosts, true),
        ("ports", &op.ports, false),
        ("notPorts", &op.not_ports, true),
        ("methods", &op.methods, false),
        ("notMethods", &op.not_methods, true),
        ("paths", &op.paths, false),
        ("notPaths", &op.not_paths, true),
    ];
    for (field, values, negated) in fields {
        if values.is_empty() {
            continue;
        }
        let at = at.key(field);
        let any: Vec<Permission> = values
            .iter()
            .map(|v| match field {
                "hosts" | "notHosts" => Ok(header_permission(":authority", v, true)),
                "methods" | "notMethods" => Ok(header_permission(":method", v, false)),
                "paths" | "notPaths" => Ok(permission(permission::Rule::UrlPath(PathMatcher {
                    rule: Some(path_matcher::Rule::Path(string_match(v, false))),
                }))),
                _ => port(v, &at).map(|p| permission(permission::Rule::DestinationPort(p))),
            })
            .collect::<Result<_, _>>()?;
        let p = or_permissions(any);
        all.push(if negated { not_permission(p) } else { p });
    }
    Ok(and_permissions(all))
}

fn source(source: &Source, at: &Field<'_>) -> Result<Principal, AuthzError> {
    if !source.request_principals.is_empty() || !source.not_request_principals.is_empty() {
        return Err(at
            .key("requestPrincipals")
            .error("JWT identities are not checked by gRPC's RBAC; no request carries one"));
    }
    let mut all = Vec::new();
    let fields: [(&str, &[String], bool); 8] = [
        ("principals", &source.principals, false),
        ("notPrincipals", &source.not_principals, true),
        ("namespaces", &source.namespaces, false),
        ("notNamespaces", &source.not_namespaces, true),
        ("ipBlocks", &source.ip_blocks, false),
        ("notIpBlocks", &source.not_ip_blocks, true),
        ("remoteIpBlocks", &source.remote_ip_blocks, false),
        ("notRemoteIpBlocks", &source.not_remote_ip_blocks, true),
    ];
    for (field, values, negated) in fields {
        if values.is_empty() {
            continue;
        }
        let at = at.key(field);
        let any: Vec<Principal> = values
            .iter()
            .map(|v| match field {
                "principals" | "notPrincipals" => Ok(peer(v)),
                "namespaces" | "notNamespaces" => Ok(namespace(v)),
                "ipBlocks" | "notIpBlocks" => {
                    cidr(v, &at).map(|c| principal(principal::Identifier::DirectRemoteIp(c)))
                }
                _ => cidr(v, &at).map(|c| principal(principal::Identifier::RemoteIp(c))),
            })
            .collect::<Result<_, _>>()?;
        let p = or_principals(any);
        all.push(if negated { not_principal(p) } else { p });
    }
    Ok(and_principals(all))
}

enum Either {
    Permission(Permission),
    Principal(Principal),
}

fn condition(c: &Condition, at: &Field<'_>) -> Result<Either, AuthzError> {
    let key = c.key.as_str();
    let header = key
        .strip_prefix("request.headers[")
        .and_then(|k| k.strip_suffix(']'));
    let values =
        |f: &dyn Fn(&str) -> Result<Principal, AuthzError>| -> Result<Principal, AuthzError> {
            let mut parts = Vec::new();
            if !c.values.is_empty() {
                parts.push(or_principals(
                    c.values.iter().map(|v| f(v)).collect::<Result<_, _>>()?,
                ));
            }
            if !c.not_values.is_empty() {
                let not = or_principals(
                    c.not_values
                        .iter()
                        .map(|v| f(v))
                        .collect::<Result<_, _>>()?,
                );
                parts.push(not_principal(not));
            }
            Ok(and_principals(parts))
        };
    if c.values.is_empty() && c.not_values.is_empty() {
        return Err(at
            .key("values")
            .error("a condition needs values or notValues"));
    }
    let at_key = at.key("key");
    Ok(match (key, header) {
        (_, Some(name)) => Either::Principal(values(&|v| {
            Ok(principal(principal::Identifier::Header(header_matcher(
                name, v, false,
            ))))
        })?),
        ("source.ip", _) => Either::Principal(values(&|v| {
            cidr(v, &at_key).map(|c| principal(principal::Identifier::DirectRemoteIp(c)))
        })?),
        ("remote.ip", _) => Either::Principal(values(&|v| {
            cidr(v, &at_key).map(|c| principal(principal::Identifier::RemoteIp(c)))
        })?),
        ("source.namespace", _) => Either::Principal(values(&|v| Ok(namespace(v)))?),
        ("source.principal", _) => Either::Principal(values(&|v| Ok(peer(v)))?),
        ("destination.port", _) => {
            let any = |vs: &[String]| -> Result<Permission, AuthzError> {
                let ports = vs
                    .iter()
                    .map(|v| {
                        port(v, &at_key).map(|p| permission(permission::Rule::DestinationPort(p)))
                    })
                    .collect::<Result<_, _>>()?;
                Ok(or_permissions(ports))
            };
            let mut parts = Vec::new();
            if !c.values.is_empty() {
                parts.push(any(&c.values)?);
            }
            if !c.not_values.is_empty() {
                parts.push(not_permission(any(&c.not_values)?));
            }
            Either::Permission(and_permissions(parts))
        }
        _ => {
            return Err(at_key.error(format!(
                "{key} is not checked by gRPC's RBAC; use request.headers[…], source.ip, \
                 remote.ip, source.namespace, source.principal or destination.port"
            )));
        }
    })
}

/// A peer identity as Istio writes it (`cluster.local/ns/NS/sa/SA`)
/// matched against the certificate's SPIFFE id.
fn peer(value: &str) -> Principal {
    let spiffe = |v: &str| format!("spiffe://{v}");
    let matcher = match value {
        "*" => string_match("*", false),
        v if v.starts_with('*') => string_match(v, false),
        v => string_match(&spiffe(v), false),
    };
    principal(principal::Identifier::Authenticated(
        principal::Authenticated {
            principal_name: Some(matcher),
        },
    ))
}

/// A peer in the namespace `ns`, by its SPIFFE id.
fn namespace(ns: &str) -> Principal {
    let pattern = match ns {
        "*" => ".+".to_owned(),
        ns => format!(".*/ns/{}/.*", regex_escape(ns)),
    };
    let matcher = StringMatcher {
        match_pattern: Some(MatchPattern::SafeRegex(RegexMatcher {
            regex: pattern,
            ..Default::default()
        })),
        ..Default::default()
    };
    principal(principal::Identifier::Authenticated(
        principal::Authenticated {
            principal_name: Some(matcher),
        },
    ))
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// A value as Istio matches it: `*` anything present, `p*` by prefix,
/// `*s` by suffix, otherwise exactly.
fn string_match(value: &str, ignore_case: bool) -> StringMatcher {
    let pattern = if value == "*" {
        MatchPattern::Prefix(String::new())
    } else if let Some(prefix) = value.strip_suffix('*') {
        MatchPattern::Prefix(prefix.to_owned())
    } else if let Some(suffix) = value.strip_prefix('*') {
        MatchPattern::Suffix(suffix.to_owned())
    } else {
        MatchPattern::Exact(value.to_owned())
    };
    StringMatcher {
        match_pattern: Some(pattern),
        ignore_case,
    }
}

fn header_matcher(name: &str, value: &str, ignore_case: bool) -> HeaderMatcher {
    HeaderMatcher {
        name: name.to_owned(),
        header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(string_match(
            value,
            ignore_case,
        ))),
        ..Default::default()
    }
}

fn header_permission(name: &str, value: &str, ignore_case: bool) -> Permission {
    permission(permission::Rule::Header(header_matcher(
        name,
        value,
        ignore_case,
    )))
}

fn port(value: &str, at: &Field<'_>) -> Result<u32, AuthzError> {
    value
        .parse::<u16>()
        .map(u32::from)
        .map_err(|_| at.error(format!("{value:?} is not a port number")))
}

fn cidr(value: &str, at: &Field<'_>) -> Result<CidrRange, AuthzError> {
    let (ip, len) = match value.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (value, None),
    };
    let bad = || at.error(format!("{value:?} is not an IP address or CIDR block"));
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(bad)?,
        None => max,
    };
    Ok(CidrRange {
        address_prefix: ip.to_string(),
        prefix_len: Some(UInt32Value { value: len }),
    })
}

fn permission(rule: permission::Rule) -> Permission {
    Permission { rule: Some(rule) }
}

fn principal(identifier: principal::Identifier) -> Principal {
    Principal {
        identifier: Some(identifier),
    }
}

/// All of `parts`; anything when there are none.
fn and_permissions(mut parts: Vec<Permission>) -> Permission {
    match parts.len() {
        0 => permission(permission::Rule::Any(true)),
        1 => parts.remove(0),
        _ => permission(permission::Rule::AndRules(permission::Set { rules: parts })),
    }
}

fn or_permissions(mut parts: Vec<Permission>) -> Permission {
    match parts.len() {
        1 => parts.remove(0),
        _ => permission(permission::Rule::OrRules(permission::Set { rules: parts })),
    }
}

fn not_permission(p: Permission) -> Permission {
    permission(permission::Rule::NotRule(Box::new(p)))
}

/// All of `parts`; anyone when there are none.
fn and_principals(mut parts: Vec<Principal>) -> Principal {
    match parts.len() {
        0 => principal(principal::Identifier::Any(true)),
        1 => parts.remove(0),
        _ => principal(principal::Identifier::AndIds(principal::Set { ids: parts })),
    }
}

fn or_principals(mut parts: Vec<Principal>) -> Principal {
    match parts.len() {
        1 => parts.remove(0),
        _ => principal(principal::Identifier::OrIds(principal::Set { ids: parts })),
    }
}

fn not_principal(p: Principal) -> Principal {
    principal(principal::Identifier::NotId(Box::new(p)))
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn policies(yaml: &str) -> Resources {
        mesh_istio::parse("authz.yaml", yaml).unwrap().0
    }

    fn decoded(filter: &HttpFilter) -> Rbac {
        let Some(ConfigType::TypedConfig(any)) = &filter.config_type else {
            panic!("a typed config")
        };
        RbacFilter::decode(any.value.as_slice())
            .unwrap()
            .rules
            .unwrap()
    }

    const DENY_HEADER: &str = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
        metadata: {name: no-blocked, namespace: default}\n\
        spec:\n  selector: {matchLabels: {app: ratings}}\n  action: DENY\n\
        \x20 rules:\n  - when: [{key: 'request.headers[x-user]', values: [blocked]}]\n";

    #[test]
    fn deny_comes_before_allow_and_selectors_choose_workloads() {
        let allow = "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
            metadata: {name: reads, namespace: istio-system}\n\
            spec:\n  rules:\n  - to: [{operation: {methods: [GET], paths: ['/api/*']}}]\n";
        let resources = policies(&format!("{DENY_HEADER}{allow}"));
        let ratings = BTreeMap::from([("app".to_owned(), "ratings".to_owned())]);
        let filters = rbac_filters(&resources, "default", &ratings).unwrap();
        let names: Vec<&str> = filters.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, [DENY_FILTER, ALLOW_FILTER]);
        let deny = decoded(&filters[0]);
        assert_eq!(deny.action, Action::Deny as i32);
        assert!(deny.policies.contains_key("default-no-blocked-0"));
        // Another workload: only the root namespace's policy.
        let filters = rbac_filters(&resources, "default", &BTreeMap::new()).unwrap();
        assert_eq!(filters.len(), 1);
        assert!(
            decoded(&filters[0])
                .policies
                .contains_key("istio-system-reads-0")
        );
        // Another namespace's workloads: the same.
        assert_eq!(rbac_filters(&resources, "shop", &ratings).unwrap().len(), 1);
    }

    #[test]
    fn values_are_read_as_istio_reads_them() {
        assert_eq!(
            string_match("/api/*", false).match_pattern,
            Some(MatchPattern::Prefix("/api/".into()))
        );
        assert_eq!(
            string_match("*.local", false).match_pattern,
            Some(MatchPattern::Suffix(".local".into()))
        );
        assert_eq!(
            string_match("*", false).match_pattern,
            Some(MatchPattern::Prefix(String::new()))
        );
        let Some(principal::Identifier::Authenticated(a)) =
            peer("cluster.local/ns/default/sa/sleep").identifier
        else {
            panic!()
        };
        assert_eq!(
            a.principal_name.unwrap().match_pattern,
            Some(MatchPattern::Exact(
                "spiffe://cluster.local/ns/default/sa/sleep".into()
            ))
        );
    }

    #[test]
    fn what_grpc_cannot_check_is_refused_by_field() {
        let jwt = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
            metadata: {name: jwt}\nspec:\n  rules:\n  - when: [{key: 'request.auth.claims[iss]', values: [me]}]\n";
        let err = check(&policies(jwt)).unwrap_err().to_string();
        assert!(err.contains("AuthorizationPolicy default/jwt"), "{err}");
        assert!(err.contains("spec.rules[0].when[0].key"), "{err}");
        let bad_ip = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
            metadata: {name: ip}\nspec:\n  rules:\n  - from: [{source: {ipBlocks: [10.0.0.0/33]}}]\n";
        let err = check(&policies(bad_ip)).unwrap_err().to_string();
        assert!(err.contains("from[0].source.ipBlocks"), "{err}");
    }

    #[test]
    fn an_allow_policy_without_rules_allows_nothing() {
        let none = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
            metadata: {name: nothing}\nspec: {}\n";
        let filters = rbac_filters(&policies(none), "default", &BTreeMap::new()).unwrap();
        let rbac = decoded(&filters[0]);
        assert_eq!(rbac.action, Action::Allow as i32);
        assert!(rbac.policies.is_empty());
    }
}
