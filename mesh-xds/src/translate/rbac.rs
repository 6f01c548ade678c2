//! [`Rbac`] filters as Envoy's RBAC HTTP filter, named as istiod names
//! them: the DENY filter `envoy.filters.http.rbac.DENY`, the ALLOW one
//! `envoy.filters.http.rbac`. Permissions and principals are written as
//! they are, one for one; a regular expression as
//! [`StringMatch::regex`](mesh_core::route::StringMatch::regex) was given
//! it, and one built another way is refused.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::CidrRange;
use envoy_types::pb::envoy::config::rbac::v3 as rbac;
use envoy_types::pb::envoy::config::route::v3::HeaderMatcher;
use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac as RbacFilter;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpFilter, http_filter::ConfigType,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{PathMatcher, StringMatcher, path_matcher};
use envoy_types::pb::google::protobuf::UInt32Value;
use mesh_core::security::{Cidr, Permission, Principal, Rbac, RbacAction, ValueMatch};
use rbac::{permission, principal};

use super::any;
use super::error::Refused;
use super::route::string_matcher;

/// The ALLOW filter's name.
pub const ALLOW_FILTER: &str = "envoy.filters.http.rbac";
/// The DENY filter's name.
pub const DENY_FILTER: &str = "envoy.filters.http.rbac.DENY";

/// `filter` as an RBAC HTTP filter; a refusal names the policy and the
/// field within it.
pub(super) fn rbac_filter(filter: &Rbac) -> Result<HttpFilter, Refused> {
    let (action, name) = match filter.action {
        RbacAction::Allow => (rbac::rbac::Action::Allow, ALLOW_FILTER),
        RbacAction::Deny => (rbac::rbac::Action::Deny, DENY_FILTER),
    };
    let mut policies = HashMap::with_capacity(filter.policies.len());
    for (policy_name, policy) in &filter.policies {
        let at = |field: &str, i: usize| format!("{name}.policies[{policy_name:?}].{field}[{i}]");
        let permissions = policy
            .permissions
            .iter()
            .enumerate()
            .map(|(i, p)| permission(p).map_err(|e| e.within(&at("permissions", i))))
            .collect::<Result<_, _>>()?;
        let principals = policy
            .principals
            .iter()
            .enumerate()
            .map(|(i, p)| principal(p).map_err(|e| e.within(&at("principals", i))))
            .collect::<Result<_, _>>()?;
        let written = rbac::Policy {
            permissions,
            principals,
            ..Default::default()
        };
        policies.insert(policy_name.clone(), written);
    }
    let config = RbacFilter {
        rules: Some(rbac::Rbac {
            action: action as i32,
            policies,
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(HttpFilter {
        name: name.to_owned(),
        config_type: Some(ConfigType::TypedConfig(any(&config))),
        ..Default::default()
    })
}

fn permission(p: &Permission) -> Result<rbac::Permission, Refused> {
    use permission::Rule;
    let set = |ps: &[Permission], field: &str| -> Result<permission::Set, Refused> {
        let rules = ps
            .iter()
            .enumerate()
            .map(|(i, p)| permission(p).map_err(|e| e.within(&format!("{field}[{i}]"))))
            .collect::<Result<_, _>>()?;
        Ok(permission::Set { rules })
    };
    let rule = match p {
        Permission::Any => Rule::Any(true),
        Permission::And(ps) => Rule::AndRules(set(ps, "and")?),
        Permission::Or(ps) => Rule::OrRules(set(ps, "or")?),
        Permission::Not(p) => Rule::NotRule(Box::new(permission(p).map_err(|e| e.within("not"))?)),
        Permission::Header { name, value } => Rule::Header(header(name, value)?),
        Permission::UrlPath(value) => Rule::UrlPath(PathMatcher {
            rule: Some(path_matcher::Rule::Path(value_matcher(value, "url_path")?)),
        }),
        Permission::DestinationPort(port) => Rule::DestinationPort(u32::from(*port)),
    };
    Ok(rbac::Permission { rule: Some(rule) })
}

fn principal(p: &Principal) -> Result<rbac::Principal, Refused> {
    use principal::Identifier;
    let set = |ps: &[Principal], field: &str| -> Result<principal::Set, Refused> {
        let ids = ps
            .iter()
            .enumerate()
            .map(|(i, p)| principal(p).map_err(|e| e.within(&format!("{field}[{i}]"))))
            .collect::<Result<_, _>>()?;
        Ok(principal::Set { ids })
    };
    let identifier = match p {
        Principal::Any => Identifier::Any(true),
        Principal::And(ps) => Identifier::AndIds(set(ps, "and")?),
        Principal::Or(ps) => Identifier::OrIds(set(ps, "or")?),
        Principal::Not(p) => {
            Identifier::NotId(Box::new(principal(p).map_err(|e| e.within("not"))?))
        }
        Principal::Authenticated(name) => Identifier::Authenticated(principal::Authenticated {
            principal_name: name
                .as_ref()
                .map(|n| value_matcher(n, "authenticated"))
                .transpose()?,
        }),
        Principal::DirectRemoteIp(c) => Identifier::DirectRemoteIp(cidr(c)),
        Principal::RemoteIp(c) => Identifier::RemoteIp(cidr(c)),
        Principal::Header { name, value } => Identifier::Header(header(name, value)?),
    };
    Ok(rbac::Principal {
        identifier: Some(identifier),
    })
}

fn value_matcher(m: &ValueMatch, field: &str) -> Result<StringMatcher, Refused> {
    let mut written = string_matcher(&m.kind, field)?;
    written.ignore_case = m.ignore_case;
    Ok(written)
}

fn header(name: &str, value: &ValueMatch) -> Result<HeaderMatcher, Refused> {
    Ok(HeaderMatcher {
        name: name.to_owned(),
        header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(value_matcher(
            value, "header",
        )?)),
        ..Default::default()
    })
}

fn cidr(c: &Cidr) -> CidrRange {
    CidrRange {
        address_prefix: c.address().to_string(),
        prefix_len: Some(UInt32Value {
            value: u32::from(c.prefix_len()),
        }),
    }
}
