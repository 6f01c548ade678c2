//! A route's [`RouteMatch`] as Envoy's `RouteMatch`: the path as `path`,
//! `prefix` or `safe_regex` (with `case_sensitive`), the method and the
//! authority as `:method` and `:authority` header matchers, headers
//! (values, presence, ranges, `invert_match`) and query parameters.

use envoy_types::pb::envoy::config::route::v3 as rds;
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use envoy_types::pb::envoy::r#type::matcher::v3::{RegexMatcher, StringMatcher};
use envoy_types::pb::envoy::r#type::v3::Int64Range;
use envoy_types::pb::google::protobuf::BoolValue;
use mesh_core::route::{HeaderMatch, HeaderMatcher, QueryMatcher, RouteMatch, StringMatch};
use rds::header_matcher::HeaderMatchSpecifier as Spec;
use rds::query_parameter_matcher::QueryParameterMatchSpecifier as QuerySpec;
use rds::route_match::PathSpecifier;

use crate::translate::error::Refused;

pub(super) fn route_match(m: &RouteMatch) -> Result<rds::RouteMatch, Refused> {
    let path = match &m.path.kind {
        StringMatch::Exact(p) => PathSpecifier::Path(p.clone()),
        StringMatch::Prefix(p) => PathSpecifier::Prefix(p.clone()),
        StringMatch::Regex(r) => PathSpecifier::SafeRegex(regex(r, "path.kind")?),
        StringMatch::Suffix(_) | StringMatch::Contains(_) => {
            return Err(Refused::new(
                "path.kind",
                "a route matches the path by exact, prefix or regex only",
            ));
        }
    };
    let mut headers = Vec::with_capacity(m.headers.len() + 2);
    if let Some(method) = &m.method {
        headers.push(value_matcher(":method", method, "method")?);
    }
    if let Some(authority) = &m.authority {
        headers.push(value_matcher(":authority", authority, "authority")?);
    }
    for (i, h) in m.headers.iter().enumerate() {
        headers.push(header(h).map_err(|e| e.within(&format!("headers[{i}]")))?);
    }
    let query_parameters = m
        .query
        .iter()
        .enumerate()
        .map(|(i, q)| query(q).map_err(|e| e.within(&format!("query[{i}]"))))
        .collect::<Result<_, _>>()?;
    Ok(rds::RouteMatch {
        case_sensitive: m.path.ignore_case.then_some(BoolValue { value: false }),
        path_specifier: Some(path),
        headers,
        query_parameters,
        ..Default::default()
    })
}

/// The method or authority condition, a pseudo-header matched by value.
fn value_matcher(name: &str, m: &StringMatch, field: &str) -> Result<rds::HeaderMatcher, Refused> {
    Ok(rds::HeaderMatcher {
        name: name.to_owned(),
        header_match_specifier: Some(Spec::StringMatch(string_matcher(m, field)?)),
        ..Default::default()
    })
}

fn header(h: &HeaderMatcher) -> Result<rds::HeaderMatcher, Refused> {
    if h.name == http::header::HOST {
        // xDS reads `host` as the authority, which has a field of its own.
        return Err(Refused::new(
            "name",
            "a `host` header matcher reads back as the authority condition; set authority",
        ));
    }
    let spec = match &h.kind {
        HeaderMatch::Value(m) => Spec::StringMatch(string_matcher(m, "kind")?),
        HeaderMatch::Present(p) => Spec::PresentMatch(*p),
        HeaderMatch::Range { start, end } => Spec::RangeMatch(Int64Range {
            start: *start,
            end: *end,
        }),
    };
    Ok(rds::HeaderMatcher {
        name: h.name.as_str().to_owned(),
        header_match_specifier: Some(spec),
        invert_match: h.invert,
        ..Default::default()
    })
}

fn query(q: &QueryMatcher) -> Result<rds::QueryParameterMatcher, Refused> {
    if q.name.is_empty() {
        return Err(Refused::new("name", "must not be empty"));
    }
    let spec = match &q.value {
        None => QuerySpec::PresentMatch(true),
        Some(m) => QuerySpec::StringMatch(string_matcher(m, "value")?),
    };
    Ok(rds::QueryParameterMatcher {
        name: q.name.clone(),
        query_parameter_match_specifier: Some(spec),
    })
}

/// A `StringMatcher`, case-sensitive (the mesh's value matches are).
pub(in crate::translate) fn string_matcher(
    m: &StringMatch,
    field: &str,
) -> Result<StringMatcher, Refused> {
    let pattern = match m {
        StringMatch::Exact(s) => MatchPattern::Exact(s.clone()),
        StringMatch::Prefix(s) => MatchPattern::Prefix(s.clone()),
        StringMatch::Suffix(s) => MatchPattern::Suffix(s.clone()),
        StringMatch::Contains(s) => MatchPattern::Contains(s.clone()),
        StringMatch::Regex(r) => MatchPattern::SafeRegex(regex(r, field)?),
    };
    Ok(StringMatcher {
        match_pattern: Some(pattern),
        ignore_case: false,
    })
}

/// A whole-string regex as written: the pattern [`StringMatch::regex`]
/// anchored, without its anchors. A regex built another way would not read
/// back the same and is refused.
fn regex(r: &regex::Regex, field: &str) -> Result<RegexMatcher, Refused> {
    let written = r
        .as_str()
        .strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .filter(|p| {
            StringMatch::regex(p).is_ok_and(
                |again| matches!(again, StringMatch::Regex(a) if a.as_str() == r.as_str()),
            )
        });
    match written {
        Some(p) => Ok(RegexMatcher {
            regex: p.to_owned(),
            ..Default::default()
        }),
        None => Err(Refused::new(
            field,
            format_args!(
                "regex {:?} was not built by StringMatch::regex, so it would not read back the same",
                r.as_str()
            ),
        )),
    }
}
