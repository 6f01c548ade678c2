//! An RBAC HTTP filter's configuration (Envoy's `RBAC`, as istiod writes
//! AuthorizationPolicy for gRPC's xDS servers) into the mesh's [`Rbac`],
//! as gRPC reads it (gRFC A41).
//!
//! No `rules` is no filter (nothing is enforced), as is the `LOG` action.
//! Policies are kept in name order. What the mesh can evaluate: any,
//! and/or/not, headers (pseudo-headers included), the URL path, the
//! destination port; principals by any, and/or/not, authenticated
//! identity, direct and remote IP blocks, and headers. Anything else
//! (`matcher`, CEL conditions, metadata, destination IPs, requested server
//! name, port ranges, filter state, header ranges) is a NACK naming the
//! field, never left out: a condition left out of a DENY policy would
//! allow what it denies.

use envoy_types::pb::envoy::config::core::v3::CidrRange;
use envoy_types::pb::envoy::config::rbac::v3 as rbac;
use envoy_types::pb::envoy::config::route::v3::HeaderMatcher;
use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier as Spec;
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac as RbacFilter;
use envoy_types::pb::envoy::r#type::matcher::v3::StringMatcher;
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use mesh_core::route::StringMatch;
use mesh_core::security::{Cidr, Permission, Principal, Rbac, RbacAction, RbacPolicy, ValueMatch};
use rbac::{permission::Rule, principal::Identifier};

use super::error::{At, FieldError};

/// The filter `config` enforces; `None` for one that enforces nothing.
pub(crate) fn rbac_filter(config: &RbacFilter, at: &At<'_>) -> Result<Option<Rbac>, FieldError> {
    if config.matcher.is_some() {
        return Err(at
            .field("matcher")
            .error("matcher-based RBAC is not supported"));
    }
    let Some(rules) = &config.rules else {
        return Ok(None);
    };
    let at = at.field("rules");
    let action = match rbac::rbac::Action::try_from(rules.action) {
        Ok(rbac::rbac::Action::Allow) => RbacAction::Allow,
        Ok(rbac::rbac::Action::Deny) => RbacAction::Deny,
        Ok(rbac::rbac::Action::Log) => return Ok(None),
        Err(_) => {
            let at = at.field("action");
            return Err(at.error(format_args!("unknown action {}", rules.action)));
        }
    };
    let mut names: Vec<&String> = rules.policies.keys().collect();
    names.sort();
    let policies_at = at.field("policies");
    let mut policies = Vec::with_capacity(names.len());
    for name in names {
        let at = policies_at.key(name);
        policies.push((name.clone(), policy(&rules.policies[name], &at)?));
    }
    Ok(Some(Rbac { action, policies }))
}

fn policy(p: &rbac::Policy, at: &At<'_>) -> Result<RbacPolicy, FieldError> {
    if p.condition.is_some() || p.checked_condition.is_some() {
        return Err(at
            .field("condition")
            .error("CEL conditions are not supported"));
    }
    let list = at.field("permissions");
    let permissions = p
        .permissions
        .iter()
        .enumerate()
        .map(|(i, x)| permission(x, &list.index(i)))
        .collect::<Result<_, _>>()?;
    let list = at.field("principals");
    let principals = p
        .principals
        .iter()
        .enumerate()
        .map(|(i, x)| principal(x, &list.index(i)))
        .collect::<Result<_, _>>()?;
    Ok(RbacPolicy {
        permissions,
        principals,
    })
}

fn permission(p: &rbac::Permission, at: &At<'_>) -> Result<Permission, FieldError> {
    let set = |rules: &[rbac::Permission], field| -> Result<Vec<Permission>, FieldError> {
        let set_at = at.field(field);
        let at = set_at.field("rules");
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| permission(r, &at.index(i)))
            .collect()
    };
    Ok(match &p.rule {
        None => return Err(at.error("no rule")),
        Some(Rule::Any(true)) => Permission::Any,
        Some(Rule::Any(false)) => return Err(at.field("any").error("must be true")),
        Some(Rule::AndRules(s)) => Permission::And(set(&s.rules, "and_rules")?),
        Some(Rule::OrRules(s)) => Permission::Or(set(&s.rules, "or_rules")?),
        Some(Rule::NotRule(p)) => Permission::Not(Box::new(permission(p, &at.field("not_rule"))?)),
        Some(Rule::Header(h)) => header(
            h,
            &at.field("header"),
            |name, value| Permission::Header { name, value },
            |p| Permission::Not(Box::new(p)),
        )?,
        Some(Rule::UrlPath(m)) => {
            let at = at.field("url_path");
            let path = match &m.rule {
                Some(envoy_types::pb::envoy::r#type::matcher::v3::path_matcher::Rule::Path(s)) => s,
                None => return Err(at.error("no rule")),
            };
            Permission::UrlPath(value_match(path, &at.field("path"))?)
        }
        Some(Rule::DestinationPort(port)) => {
            let port = u16::try_from(*port)
                .map_err(|_| at.field("destination_port").error("not a port"))?;
            Permission::DestinationPort(port)
        }
        Some(other) => return Err(at.error(format_args!("{} is not supported", rule_name(other)))),
    })
}

#[allow(deprecated)] // metadata: named only to refuse it
fn rule_name(r: &Rule) -> &'static str {
    match r {
        Rule::DestinationIp(_) => "destination_ip",
        Rule::DestinationPortRange(_) => "destination_port_range",
        Rule::Metadata(_) => "metadata",
        Rule::RequestedServerName(_) => "requested_server_name",
        Rule::Matcher(_) => "matcher",
        Rule::UriTemplate(_) => "uri_template",
        Rule::SourcedMetadata(_) => "sourced_metadata",
        _ => "this rule",
    }
}

fn principal(p: &rbac::Principal, at: &At<'_>) -> Result<Principal, FieldError> {
    let set = |ids: &[rbac::Principal], field| -> Result<Vec<Principal>, FieldError> {
        let set_at = at.field(field);
        let at = set_at.field("ids");
        ids.iter()
            .enumerate()
            .map(|(i, p)| principal(p, &at.index(i)))
            .collect()
    };
    #[allow(deprecated)] // source_ip: older control planes still send it
    Ok(match &p.identifier {
        None => return Err(at.error("no identifier")),
        Some(Identifier::Any(true)) => Principal::Any,
        Some(Identifier::Any(false)) => return Err(at.field("any").error("must be true")),
        Some(Identifier::AndIds(s)) => Principal::And(set(&s.ids, "and_ids")?),
        Some(Identifier::OrIds(s)) => Principal::Or(set(&s.ids, "or_ids")?),
        Some(Identifier::NotId(p)) => Principal::Not(Box::new(principal(p, &at.field("not_id"))?)),
        Some(Identifier::Authenticated(a)) => {
            let authenticated = at.field("authenticated");
            let at = authenticated.field("principal_name");
            let name = a.principal_name.as_ref();
            Principal::Authenticated(name.map(|m| value_match(m, &at)).transpose()?)
        }
        Some(Identifier::SourceIp(c)) => {
            Principal::DirectRemoteIp(cidr(c, &at.field("source_ip"))?)
        }
        Some(Identifier::DirectRemoteIp(c)) => {
            Principal::DirectRemoteIp(cidr(c, &at.field("direct_remote_ip"))?)
        }
        Some(Identifier::RemoteIp(c)) => Principal::RemoteIp(cidr(c, &at.field("remote_ip"))?),
        Some(Identifier::Header(h)) => header(
            h,
            &at.field("header"),
            |name, value| Principal::Header { name, value },
            |p| Principal::Not(Box::new(p)),
        )?,
        Some(Identifier::UrlPath(_)) => return Err(at.field("url_path").error("is not supported")),
        Some(Identifier::Metadata(_)) => {
            return Err(at.field("metadata").error("is not supported"));
        }
        Some(Identifier::FilterState(_)) => {
            return Err(at.field("filter_state").error("is not supported"));
        }
        Some(_) => return Err(at.error("this identifier is not supported")),
    })
}

/// A header condition, made by `make` (and inverted by `not` for
/// `invert_match` or `present_match: false`).
#[allow(deprecated)] // exact_match & co.: older control planes still send them
fn header<T>(
    h: &HeaderMatcher,
    at: &At<'_>,
    make: impl Fn(String, ValueMatch) -> T,
    not: impl Fn(T) -> T,
) -> Result<T, FieldError> {
    if h.treat_missing_header_as_empty {
        return Err(at
            .field("treat_missing_header_as_empty")
            .error("is not supported"));
    }
    let literal = |kind| ValueMatch {
        kind,
        ignore_case: false,
    };
    // Presence: any value at all, the empty one included.
    let present = || ValueMatch {
        kind: StringMatch::regex("(?s).*").expect("a valid pattern"),
        ignore_case: false,
    };
    let (value, mut inverted) = match &h.header_match_specifier {
        None | Some(Spec::PresentMatch(true)) => (present(), false),
        Some(Spec::PresentMatch(false)) => (present(), true),
        Some(Spec::ExactMatch(s)) => (literal(StringMatch::Exact(s.clone())), false),
        Some(Spec::PrefixMatch(s)) => (literal(StringMatch::Prefix(s.clone())), false),
        Some(Spec::SuffixMatch(s)) => (literal(StringMatch::Suffix(s.clone())), false),
        Some(Spec::ContainsMatch(s)) => (literal(StringMatch::Contains(s.clone())), false),
        Some(Spec::SafeRegexMatch(r)) => {
            let regex_at = at.field("safe_regex_match");
            let at = regex_at.field("regex");
            let kind = StringMatch::regex(&r.regex).map_err(|e| at.error(e))?;
            (literal(kind), false)
        }
        Some(Spec::StringMatch(m)) => (value_match(m, &at.field("string_match"))?, false),
        Some(Spec::RangeMatch(_)) => return Err(at.field("range_match").error("is not supported")),
    };
    inverted ^= h.invert_match;
    let condition = make(h.name.to_ascii_lowercase(), value);
    Ok(if inverted { not(condition) } else { condition })
}

fn value_match(m: &StringMatcher, at: &At<'_>) -> Result<ValueMatch, FieldError> {
    let kind = match &m.match_pattern {
        None => return Err(at.error("no match pattern")),
        Some(MatchPattern::Exact(s)) => StringMatch::Exact(s.clone()),
        Some(MatchPattern::Prefix(s)) => StringMatch::Prefix(s.clone()),
        Some(MatchPattern::Suffix(s)) => StringMatch::Suffix(s.clone()),
        Some(MatchPattern::Contains(s)) => StringMatch::Contains(s.clone()),
        Some(MatchPattern::SafeRegex(r)) => {
            let regex_at = at.field("safe_regex");
            let at = regex_at.field("regex");
            StringMatch::regex(&r.regex).map_err(|e| at.error(e))?
        }
        Some(MatchPattern::Custom(_)) => {
            return Err(at
                .field("custom")
                .error("custom matchers are not supported"));
        }
    };
    Ok(ValueMatch {
        kind,
        ignore_case: m.ignore_case,
    })
}

fn cidr(c: &CidrRange, at: &At<'_>) -> Result<Cidr, FieldError> {
    let address = c.address_prefix.parse().map_err(|_| {
        at.field("address_prefix")
            .error(format_args!("{:?} is not an IP address", c.address_prefix))
    })?;
    // Unset is 0, as Envoy reads it: every address.
    let len = c.prefix_len.map_or(0, |l| l.value);
    let len = u8::try_from(len).map_err(|_| at.field("prefix_len").error("too long"))?;
    Cidr::new(address, len).map_err(|e| at.field("prefix_len").error(e))
}
