//! Istio's `AuthorizationPolicy` as the [`Rbac`] filters a workload's
//! server runs, as istiod writes them for proxyless gRPC servers (gRFC
//! A41) and sidecars: the DENY policies first, then the ALLOW ones.
//!
//! - **Which policies.** Those of the workload's namespace and of Istio's
//!   root namespace (`istio-system`) whose selector the workload's labels
//!   match (no selector matches all). AUDIT policies are left out, with a
//!   warning when they are checked: there is no audit log to write. CUSTOM
//!   policies are refused: there is no external authorizer to ask, and
//!   leaving them out would allow what they deny.
//! - **Rules.** Each rule is an RBAC policy named `NS-NAME-INDEX`. Its
//!   permissions are the `to` operations (hosts as `:authority`, without
//!   case; methods as `:method`; paths; ports) and the `when` conditions
//!   on the destination; its principals are the `from` sources (peer
//!   identities as `spiffe://…`, namespaces, IP blocks) and the `when`
//!   conditions on the source and request headers. Within a field any
//!   value matches; `not…` fields and `notValues` must not match.
//! - **Values** as Istio reads them: `*` matches anything present,
//!   `prefix*` and `*suffix` by prefix and suffix, any other exactly.
//! - **ALLOW with no rule that matches**: when ALLOW policies apply but
//!   none has a rule, nothing is allowed, as Istio's semantics say.
//!
//! What cannot be checked (JWT `requestPrincipals`, `request.auth.*`,
//! `connection.sni`, …) is an error naming the policy and field, so that a
//! configuration relying on it is refused, never half-enforced.

use mesh_core::route::StringMatch;
use mesh_core::security::{Cidr, Permission, Principal, Rbac, RbacAction, RbacPolicy, ValueMatch};

use super::super::api::{
    AuthorizationAction, AuthorizationPolicy, Condition, Operation, Rule, Source,
};
use super::super::error::{IstioError, Warning};
use super::super::yaml::FieldPath;
use super::super::{ROOT_NAMESPACE, Resources, Sourced, Workload};
use super::Ctx;

/// The RBAC filters, DENY then ALLOW, of the policies that apply to
/// `workload`; none when no policy applies.
pub(crate) fn rbac(resources: &Resources, workload: &Workload) -> Result<Vec<Rbac>, IstioError> {
    let applies = |p: &&Sourced<AuthorizationPolicy>| {
        let ns = p.resource.metadata.namespace();
        let selected = p.resource.spec.selector.as_ref().is_none_or(|s| {
            s.match_labels
                .iter()
                .all(|(k, v)| workload.labels.get(k) == Some(v))
        });
        (ns == workload.namespace || ns == ROOT_NAMESPACE) && selected
    };
    let mut deny = Vec::new();
    let mut allow = Vec::new();
    for p in resources.authorization_policies.iter().filter(applies) {
        match enforced(p)? {
            Some(RbacAction::Deny) => deny.push(p),
            Some(RbacAction::Allow) => allow.push(p),
            None => {}
        }
    }
    let mut filters = Vec::new();
    for (action, chosen) in [(RbacAction::Deny, deny), (RbacAction::Allow, allow)] {
        if chosen.is_empty() {
            continue;
        }
        let mut policies = Vec::new();
        for p in chosen {
            policies.extend(rules(p)?);
        }
        policies.sort_by(|a, b| a.0.cmp(&b.0));
        filters.push(Rbac { action, policies });
    }
    Ok(filters)
}

/// Checks every policy as [`rbac`] would write it, whichever workloads it
/// applies to; warns about those left out.
pub(crate) fn check(resources: &Resources) -> Result<Vec<Warning>, IstioError> {
    let mut warnings = Vec::new();
    for p in &resources.authorization_policies {
        rules(p)?;
        if enforced(p)?.is_none() {
            warnings.push(ctx(p).warning(
                &FieldPath::root().key("spec").key("action"),
                "AUDIT policies are not enforced (there is no audit log); left out",
            ));
        }
    }
    Ok(warnings)
}

/// What the policy's filter does; `None` for AUDIT, which is left out. A
/// CUSTOM policy hands decisions to an external authorizer there is none
/// of: refused, since leaving it out would let through what it denies.
fn enforced(p: &Sourced<AuthorizationPolicy>) -> Result<Option<RbacAction>, IstioError> {
    match p.resource.spec.action {
        AuthorizationAction::Allow => Ok(Some(RbacAction::Allow)),
        AuthorizationAction::Deny => Ok(Some(RbacAction::Deny)),
        AuthorizationAction::Audit => Ok(None),
        AuthorizationAction::Custom => Err(ctx(p).invalid(
            &FieldPath::root().key("spec").key("action"),
            "CUSTOM hands decisions to an external authorizer, and there is none here: \
             refused rather than left out (which would allow what it denies)",
        )),
    }
}

fn ctx(p: &Sourced<AuthorizationPolicy>) -> Ctx<'_> {
    let meta = &p.resource.metadata;
    Ctx::new(p, "AuthorizationPolicy", &meta.name, meta.namespace())
}

/// The RBAC policies of `p`'s rules, by name.
fn rules(p: &Sourced<AuthorizationPolicy>) -> Result<Vec<(String, RbacPolicy)>, IstioError> {
    let meta = &p.resource.metadata;
    let at = At {
        ctx: ctx(p),
        path: FieldPath::root().key("spec").key("rules"),
    };
    p.resource
        .spec
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let name = format!("{}-{}-{i}", meta.namespace(), meta.name);
            Ok((name, rule(r, &at.index(i))?))
        })
        .collect()
}

/// Where in a policy a value is, for errors.
struct At<'a> {
    ctx: Ctx<'a>,
    path: FieldPath,
}

impl<'a> At<'a> {
    fn key(&self, key: &str) -> At<'a> {
        At {
            ctx: self.ctx.clone(),
            path: self.path.key(key),
        }
    }

    fn index(&self, index: usize) -> At<'a> {
        At {
            ctx: self.ctx.clone(),
            path: self.path.index(index),
        }
    }

    fn error(&self, message: impl Into<String>) -> IstioError {
        self.ctx.invalid(&self.path, message)
    }
}

fn rule(rule: &Rule, at: &At<'_>) -> Result<RbacPolicy, IstioError> {
    let mut permissions = Vec::new();
    let mut principals = Vec::new();
    let to: Vec<Permission> = rule
        .to
        .iter()
        .enumerate()
        .map(|(i, to)| operation(&to.operation, &at.key("to").index(i).key("operation")))
        .collect::<Result<_, _>>()?;
    if !to.is_empty() {
        permissions.push(or(to));
    }
    let from: Vec<Principal> = rule
        .from
        .iter()
        .enumerate()
        .map(|(i, from)| source(&from.source, &at.key("from").index(i).key("source")))
        .collect::<Result<_, _>>()?;
    if !from.is_empty() {
        principals.push(or(from));
    }
    for (i, c) in rule.when.iter().enumerate() {
        match condition(c, &at.key("when").index(i))? {
            Either::Permission(p) => permissions.push(p),
            Either::Principal(p) => principals.push(p),
        }
    }
    Ok(RbacPolicy {
        permissions: vec![and(permissions)],
        principals: vec![and(principals)],
    })
}

/// The values of one field, each read by `read`, as one condition: any of
/// them, or none of them when `negated`.
fn field<T: Combine>(
    values: &[String],
    negated: bool,
    at: &At<'_>,
    read: impl Fn(&str, &At<'_>) -> Result<T, IstioError>,
) -> Result<T, IstioError> {
    let each = values
        .iter()
        .enumerate()
        .map(|(i, v)| read(v, &at.index(i)))
        .collect::<Result<_, _>>()?;
    let p = or(each);
    Ok(if negated { p.not() } else { p })
}

/// A field of an operation or source: its name, its values, whether it
/// is a `not…` field, and how a value reads.
type Field<'a, T> = (
    &'static str,
    &'a [String],
    bool,
    &'a dyn Fn(&str, &At<'_>) -> Result<T, IstioError>,
);

/// All the fields of an operation or source that have values.
fn fields<T: Combine>(at: &At<'_>, fields: &[Field<'_, T>]) -> Result<T, IstioError> {
    let mut all = Vec::new();
    for (name, values, negated, read) in fields {
        if !values.is_empty() {
            all.push(field(values, *negated, &at.key(name), read)?);
        }
    }
    Ok(and(all))
}

fn operation(op: &Operation, at: &At<'_>) -> Result<Permission, IstioError> {
    let host = |v: &str, _: &At<'_>| Ok(header_permission(":authority", v, true));
    let method = |v: &str, _: &At<'_>| Ok(header_permission(":method", v, false));
    let path = |v: &str, _: &At<'_>| Ok(Permission::UrlPath(value_match(v, false)));
    let dport = |v: &str, at: &At<'_>| port(v, at).map(Permission::DestinationPort);
    let fields: [Field<'_, Permission>; 8] = [
        ("hosts", &op.hosts, false, &host),
        ("notHosts", &op.not_hosts, true, &host),
        ("ports", &op.ports, false, &dport),
        ("notPorts", &op.not_ports, true, &dport),
        ("methods", &op.methods, false, &method),
        ("notMethods", &op.not_methods, true, &method),
        ("paths", &op.paths, false, &path),
        ("notPaths", &op.not_paths, true, &path),
    ];
    self::fields(at, &fields)
}

fn source(source: &Source, at: &At<'_>) -> Result<Principal, IstioError> {
    for (name, values) in [
        ("requestPrincipals", &source.request_principals),
        ("notRequestPrincipals", &source.not_request_principals),
    ] {
        if !values.is_empty() {
            return Err(at
                .key(name)
                .error("JWT identities are not checked: no request carries one"));
        }
    }
    let peer = |v: &str, _: &At<'_>| Ok(peer(v));
    let namespace = |v: &str, at: &At<'_>| namespace(v, at);
    let direct = |v: &str, at: &At<'_>| cidr(v, at).map(Principal::DirectRemoteIp);
    let remote = |v: &str, at: &At<'_>| cidr(v, at).map(Principal::RemoteIp);
    let fields: [Field<'_, Principal>; 8] = [
        ("principals", &source.principals, false, &peer),
        ("notPrincipals", &source.not_principals, true, &peer),
        ("namespaces", &source.namespaces, false, &namespace),
        ("notNamespaces", &source.not_namespaces, true, &namespace),
        ("ipBlocks", &source.ip_blocks, false, &direct),
        ("notIpBlocks", &source.not_ip_blocks, true, &direct),
        ("remoteIpBlocks", &source.remote_ip_blocks, false, &remote),
        (
            "notRemoteIpBlocks",
            &source.not_remote_ip_blocks,
            true,
            &remote,
        ),
    ];
    self::fields(at, &fields)
}

enum Either {
    Permission(Permission),
    Principal(Principal),
}

/// A `when` condition: its `values` (any of them) and its `notValues`
/// (none of them), each read by `read`.
fn values<T: Combine>(
    c: &Condition,
    at: &At<'_>,
    read: impl Fn(&str, &At<'_>) -> Result<T, IstioError>,
) -> Result<T, IstioError> {
    let mut parts = Vec::new();
    if !c.values.is_empty() {
        parts.push(field(&c.values, false, &at.key("values"), &read)?);
    }
    if !c.not_values.is_empty() {
        parts.push(field(&c.not_values, true, &at.key("notValues"), &read)?);
    }
    Ok(and(parts))
}

fn condition(c: &Condition, at: &At<'_>) -> Result<Either, IstioError> {
    if c.values.is_empty() && c.not_values.is_empty() {
        return Err(at
            .key("values")
            .error("a condition needs values or notValues"));
    }
    let key = c.key.as_str();
    let header = key
        .strip_prefix("request.headers[")
        .and_then(|k| k.strip_suffix(']'));
    let principal = |read: &dyn Fn(&str, &At<'_>) -> Result<Principal, IstioError>| {
        Ok(Either::Principal(values(c, at, read)?))
    };
    match (key, header) {
        (_, Some(name)) => principal(&|v, _| {
            Ok(Principal::Header {
                name: name.to_owned(),
                value: value_match(v, false),
            })
        }),
        ("source.ip", _) => principal(&|v, at| cidr(v, at).map(Principal::DirectRemoteIp)),
        ("remote.ip", _) => principal(&|v, at| cidr(v, at).map(Principal::RemoteIp)),
        ("source.namespace", _) => principal(&namespace),
        ("source.principal", _) => principal(&|v, _| Ok(peer(v))),
        ("destination.port", _) => {
            let read = |v: &str, at: &At<'_>| port(v, at).map(Permission::DestinationPort);
            Ok(Either::Permission(values(c, at, read)?))
        }
        _ => Err(at.key("key").error(format!(
            "{key} is not checked; use request.headers[…], source.ip, remote.ip, \
             source.namespace, source.principal or destination.port"
        ))),
    }
}

/// A peer identity as Istio writes it (`cluster.local/ns/NS/sa/SA`)
/// matched against the certificate's SPIFFE id.
fn peer(value: &str) -> Principal {
    let matcher = if value.starts_with('*') {
        value_match(value, false)
    } else {
        value_match(&format!("spiffe://{value}"), false)
    };
    Principal::Authenticated(Some(matcher))
}

/// A peer in the namespace `ns` (`*` in it standing for any characters,
/// as istiod reads it), by its SPIFFE id.
fn namespace(ns: &str, at: &At<'_>) -> Result<Principal, IstioError> {
    let pattern = match ns {
        "*" => ".+".to_owned(),
        ns => format!(".*/ns/{}/.*", regex_escape(ns).replace("\\*", ".*")),
    };
    let kind = StringMatch::regex(&pattern).map_err(|e| at.error(e.to_string()))?;
    Ok(Principal::Authenticated(Some(ValueMatch {
        kind,
        ignore_case: false,
    })))
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// A value as Istio matches it: `*` anything present (any non-empty value:
/// Envoy refuses an empty prefix), `p*` by prefix, `*s` by suffix,
/// otherwise exactly.
fn value_match(value: &str, ignore_case: bool) -> ValueMatch {
    let kind = if value == "*" {
        StringMatch::regex(".+").expect("a valid pattern")
    } else if let Some(prefix) = value.strip_suffix('*') {
        StringMatch::Prefix(prefix.to_owned())
    } else if let Some(suffix) = value.strip_prefix('*') {
        StringMatch::Suffix(suffix.to_owned())
    } else {
        StringMatch::Exact(value.to_owned())
    };
    ValueMatch { kind, ignore_case }
}

fn header_permission(name: &str, value: &str, ignore_case: bool) -> Permission {
    Permission::Header {
        name: name.to_owned(),
        value: value_match(value, ignore_case),
    }
}

fn port(value: &str, at: &At<'_>) -> Result<u16, IstioError> {
    value
        .parse()
        .map_err(|_| at.error(format!("{value:?} is not a port number")))
}

fn cidr(value: &str, at: &At<'_>) -> Result<Cidr, IstioError> {
    value
        .parse()
        .map_err(|e: mesh_core::security::InvalidCidr| at.error(e.to_string()))
}

/// What permissions and principals have alike: they combine the same way.
trait Combine: Sized {
    /// What matches everything.
    const EVERYTHING: Self;
    fn all(parts: Vec<Self>) -> Self;
    fn any(parts: Vec<Self>) -> Self;
    fn not(self) -> Self;
}

impl Combine for Permission {
    const EVERYTHING: Self = Permission::Any;

    fn all(parts: Vec<Self>) -> Self {
        Permission::And(parts)
    }

    fn any(parts: Vec<Self>) -> Self {
        Permission::Or(parts)
    }

    fn not(self) -> Self {
        Permission::Not(Box::new(self))
    }
}

impl Combine for Principal {
    const EVERYTHING: Self = Principal::Any;

    fn all(parts: Vec<Self>) -> Self {
        Principal::And(parts)
    }

    fn any(parts: Vec<Self>) -> Self {
        Principal::Or(parts)
    }

    fn not(self) -> Self {
        Principal::Not(Box::new(self))
    }
}

/// All of `parts`; everything when there are none.
fn and<T: Combine>(mut parts: Vec<T>) -> T {
    match parts.len() {
        0 => T::EVERYTHING,
        1 => parts.remove(0),
        _ => T::all(parts),
    }
}

/// Any of `parts`, which are never none.
fn or<T: Combine>(mut parts: Vec<T>) -> T {
    match parts.len() {
        1 => parts.remove(0),
        _ => T::any(parts),
    }
}
