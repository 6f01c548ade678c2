//! A route's match: Envoy's `RouteMatch` into the mesh's [`RouteMatch`].
//!
//! Path (`prefix`, `path`, `safe_regex`, `path_separated_prefix`, with
//! `case_sensitive`), headers (every `HeaderMatcher` kind, `invert_match`;
//! `:method` and `:authority` become the method and authority conditions),
//! query parameters, and `grpc` (a `content-type: application/grpc…`
//! header). A `runtime_fraction` of 100 % is no condition and of 0 % a
//! route that never matches; anything between cannot be expressed and is a
//! NACK. Conditions the mesh cannot evaluate (cookies, dynamic metadata,
//! filter state, TLS context, CONNECT, URI templates, custom string
//! matchers) make the route one that never matches, so it is left out, as
//! gRPC leaves out routes it cannot match.

use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::config::route::v3 as rds;
use envoy_types::pb::envoy::r#type::matcher::v3::StringMatcher;
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use http::HeaderName;
use mesh_core::route::{
    HeaderMatch, HeaderMatcher, PathMatch, Percent, QueryMatcher, RouteMatch, StringMatch,
};
use rds::header_matcher::HeaderMatchSpecifier as Spec;
use rds::query_parameter_matcher::QueryParameterMatchSpecifier as QuerySpec;
use rds::route_match::PathSpecifier;

use super::{Reject, Skips, skip};
use crate::resource::error::At;
use crate::resource::matcher::{self, compile, regex};
use crate::resource::proto;

/// A converted match.
pub(super) struct Match {
    /// The conditions.
    pub(super) matches: RouteMatch,
    /// For a `path_separated_prefix` match, the prefix and whether case is
    /// ignored: a `prefix_rewrite` replaces just that.
    pub(super) separated_prefix: Option<(String, bool)>,
}

/// The match of a route; `Reject::Skip` for one that can never match here.
pub(super) fn route_match(m: &rds::RouteMatch, at: &At<'_>) -> Result<Match, Reject> {
    let mut skips = Skips::default();
    let ignore_case = m.case_sensitive.is_some_and(|b| !b.value);
    let mut separated_prefix = None;
    let kind = match &m.path_specifier {
        None => {
            let reason = "no path specifier: a route matches on prefix, path or safe_regex";
            return Err(at.error(reason).into());
        }
        Some(PathSpecifier::Prefix(p)) => StringMatch::Prefix(p.clone()),
        Some(PathSpecifier::Path(p)) => StringMatch::Exact(p.clone()),
        Some(PathSpecifier::SafeRegex(r)) => regex(r, &at.field("safe_regex"))?,
        Some(PathSpecifier::PathSeparatedPrefix(p)) => {
            let at = at.field("path_separated_prefix");
            if p.is_empty() || p.ends_with('/') || p.contains(['?', '#']) {
                let reason = format!("{p:?} must not be empty, end in '/' or hold '?' or '#'");
                return Err(at.error(reason).into());
            }
            separated_prefix = Some((p.clone(), ignore_case));
            // The prefix, then the end of the path or a new segment.
            let case = if ignore_case { "(?i)" } else { "" };
            compile(&format!("{case}{}(?:/.*)?", regex::escape(p)), &at)?
        }
        Some(PathSpecifier::ConnectMatcher(_)) => {
            let at = at.field("connect_matcher");
            skips.skip(&at, "CONNECT requests are not routed by the mesh");
            StringMatch::Prefix("/".into())
        }
        Some(PathSpecifier::PathMatchPolicy(_)) => {
            let at = at.field("path_match_policy");
            skips.skip(&at, "path match policies (URI templates) are not supported");
            StringMatch::Prefix("/".into())
        }
    };
    let mut matches = RouteMatch {
        path: PathMatch { kind, ignore_case },
        ..RouteMatch::default()
    };
    if let Some(f) = &m.runtime_fraction {
        skips.take(fraction(f, &at.field("runtime_fraction")))?;
    }
    let headers_at = at.field("headers");
    for (i, h) in m.headers.iter().enumerate() {
        let at = headers_at.index(i);
        match skips.take(header(h, &at))? {
            Some(Condition::Header(h)) => matches.headers.push(h),
            Some(Condition::Method(s)) if matches.method.is_none() => matches.method = Some(s),
            Some(Condition::Authority(s)) if matches.authority.is_none() => {
                matches.authority = Some(s);
            }
            Some(Condition::Method(_) | Condition::Authority(_)) => {
                skips.skip(
                    &at,
                    "a second :method or :authority matcher is not supported",
                );
            }
            None => {}
        }
    }
    let query_at = at.field("query_parameters");
    for (i, q) in m.query_parameters.iter().enumerate() {
        if let Some(q) = skips.take(query(q, &query_at.index(i)))? {
            matches.query.push(q);
        }
    }
    if m.grpc.is_some() {
        // Envoy's `grpc` match is a gRPC content type.
        matches.headers.push(HeaderMatcher {
            name: http::header::CONTENT_TYPE,
            kind: HeaderMatch::Value(StringMatch::Prefix("application/grpc".into())),
            invert: false,
        });
    }
    let unsupported = [
        (
            !m.cookies.is_empty(),
            "cookies",
            "cookie matchers are not supported",
        ),
        (
            !m.dynamic_metadata.is_empty(),
            "dynamic_metadata",
            "dynamic metadata is not known to the mesh",
        ),
        (
            !m.filter_state.is_empty(),
            "filter_state",
            "filter state is not known to the mesh",
        ),
        (
            m.tls_context
                .is_some_and(|t| t.presented.is_some() || t.validated.is_some()),
            "tls_context",
            "requests reach the mesh from the application, not over TLS",
        ),
    ];
    for (_, field, reason) in unsupported.iter().filter(|(set, ..)| *set) {
        skips.skip(&at.field(field), reason);
    }
    skips.finish(Match {
        matches,
        separated_prefix,
    })
}

/// `runtime_fraction`: only all or nothing can be expressed.
fn fraction(f: &RuntimeFractionalPercent, at: &At<'_>) -> Result<(), Reject> {
    let value_at = at.field("default_value");
    let Some(value) = &f.default_value else {
        return Err(value_at.error("missing").into());
    };
    match proto::fraction(value, &value_at)? {
        Percent::ALL => Ok(()),
        Percent::NONE => Err(skip(at, "matches no request (0%)")),
        p => Err(at
            .error(format_args!(
                "matching a share of requests ({p}) is not supported"
            ))
            .into()),
    }
}

/// What one header matcher becomes.
enum Condition {
    Header(HeaderMatcher),
    Method(StringMatch),
    Authority(StringMatch),
}

#[allow(deprecated)] // exact_match & co.: older control planes still send them
fn header(h: &rds::HeaderMatcher, at: &At<'_>) -> Result<Condition, Reject> {
    let kind = match &h.header_match_specifier {
        // No specifier: the header need only be present (Envoy).
        None => HeaderMatch::Present(true),
        Some(Spec::ExactMatch(s)) => HeaderMatch::Value(StringMatch::Exact(s.clone())),
        Some(Spec::SafeRegexMatch(r)) => {
            HeaderMatch::Value(regex(r, &at.field("safe_regex_match"))?)
        }
        Some(Spec::RangeMatch(r)) => HeaderMatch::Range {
            start: r.start,
            end: r.end,
        },
        Some(Spec::PresentMatch(p)) => HeaderMatch::Present(*p),
        Some(Spec::PrefixMatch(s)) => HeaderMatch::Value(StringMatch::Prefix(s.clone())),
        Some(Spec::SuffixMatch(s)) => HeaderMatch::Value(StringMatch::Suffix(s.clone())),
        Some(Spec::ContainsMatch(s)) => HeaderMatch::Value(StringMatch::Contains(s.clone())),
        Some(Spec::StringMatch(m)) => {
            HeaderMatch::Value(string_match(m, &at.field("string_match"))?)
        }
    };
    if h.treat_missing_header_as_empty {
        let at = at.field("treat_missing_header_as_empty");
        return Err(skip(&at, "not supported"));
    }
    let name = h.name.to_ascii_lowercase();
    match (name.as_str(), kind, h.invert_match) {
        (":method", HeaderMatch::Value(m), false) => Ok(Condition::Method(m)),
        (":authority" | "host", HeaderMatch::Value(m), false) => Ok(Condition::Authority(m)),
        (n, ..) if n.starts_with(':') || n == "host" => Err(skip(
            at,
            "pseudo-headers are matched only by value: :method and :authority, not inverted",
        )),
        (_, kind, invert) => {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                at.field("name")
                    .error(format_args!("invalid header name {:?}", h.name))
            })?;
            Ok(Condition::Header(HeaderMatcher { name, kind, invert }))
        }
    }
}

fn query(q: &rds::QueryParameterMatcher, at: &At<'_>) -> Result<QueryMatcher, Reject> {
    if q.name.is_empty() {
        return Err(at.field("name").error("must not be empty").into());
    }
    let value = match &q.query_parameter_match_specifier {
        None | Some(QuerySpec::PresentMatch(true)) => None,
        Some(QuerySpec::PresentMatch(false)) => {
            let at = at.field("present_match");
            return Err(skip(&at, "false never matches (as in Envoy)"));
        }
        Some(QuerySpec::StringMatch(m)) => Some(string_match(m, &at.field("string_match"))?),
    };
    Ok(QueryMatcher {
        name: q.name.clone(),
        value,
    })
}

/// A `StringMatcher`; a route with a `custom` one is left out.
pub(super) fn string_match(m: &StringMatcher, at: &At<'_>) -> Result<StringMatch, Reject> {
    if let Some(MatchPattern::Custom(_)) = &m.match_pattern {
        return Err(skip(
            &at.field("custom"),
            "custom matchers are not supported",
        ));
    }
    Ok(matcher::string_match(m, at)?)
}

#[cfg(test)]
mod tests;
