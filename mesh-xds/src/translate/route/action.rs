//! A route's [`RouteAction`] as Envoy's: a [`Forward`] as a `RouteAction`
//! (cluster or weighted clusters, rewrites, timeout, retries, hash
//! policies, mirrors), a [`Redirect`] as a `RedirectAction` and a
//! [`DirectResponse`] as a `DirectResponseAction`.

use bytes::Bytes;
use envoy_types::pb::envoy::config::core::v3::{DataSource, RuntimeFractionalPercent, data_source};
use envoy_types::pb::envoy::config::route::v3 as rds;
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatchAndSubstitute;
use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatcher;
use envoy_types::pb::google::protobuf::UInt32Value;
use mesh_core::policy::{Backoff, RetryPolicy};
use mesh_core::route::{
    Destination, DirectResponse, Forward, HashKey, HashPolicy, Mirror, PathRewrite, Percent,
    Redirect, RouteAction,
};
use rds::redirect_action::{PathRewriteSpecifier, RedirectResponseCode, SchemeRewriteSpecifier};
use rds::route::Action;
use rds::route_action::hash_policy::{
    ConnectionProperties, Cookie, Header, PolicySpecifier, QueryParameter,
};
use rds::route_action::{ClusterSpecifier, HostRewriteSpecifier, MaxStreamDuration};

use crate::translate::error::Refused;
use crate::translate::{any, duration, fraction};

/// The largest body a direct response has without raising the route
/// configuration's `max_direct_response_body_size_bytes` (Envoy's default).
pub(super) const DIRECT_BODY_LIMIT: usize = 4096;

pub(super) fn action(a: &RouteAction) -> Result<Action, Refused> {
    match a {
        RouteAction::Forward(f) => forward(f)
            .map(Action::Route)
            .map_err(|e| e.within("action.forward")),
        RouteAction::Redirect(r) => redirect(r)
            .map(Action::Redirect)
            .map_err(|e| e.within("action.redirect")),
        RouteAction::Direct(d) => direct(d)
            .map(Action::DirectResponse)
            .map_err(|e| e.within("action.direct")),
    }
}

fn forward(f: &Forward) -> Result<rds::RouteAction, Refused> {
    let cluster_specifier = match &f.destination {
        Destination::Cluster(c) => ClusterSpecifier::Cluster(c.as_str().to_owned()),
        Destination::Weighted(w) => ClusterSpecifier::WeightedClusters(rds::WeightedCluster {
            clusters: w
                .iter()
                .map(|c| rds::weighted_cluster::ClusterWeight {
                    name: c.name.as_str().to_owned(),
                    weight: Some(UInt32Value { value: c.weight }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
    };
    let mut ra = rds::RouteAction {
        cluster_specifier: Some(cluster_specifier),
        ..Default::default()
    };
    match &f.rewrite {
        None => {}
        Some(PathRewrite::Prefix(p)) if p.is_empty() => {
            return Err(Refused::new(
                "rewrite",
                "an empty prefix rewrite reads back as no rewrite",
            ));
        }
        Some(PathRewrite::Prefix(p)) => ra.prefix_rewrite = p.clone(),
        Some(
            rewrite @ PathRewrite::Regex {
                pattern,
                substitution,
            },
        ) => {
            let envoy = envoy_substitution(substitution);
            let same = PathRewrite::regex(pattern.as_str(), &envoy).is_ok_and(|r| r == *rewrite);
            if !same {
                return Err(Refused::new(
                    "rewrite",
                    format_args!("substitution {substitution:?} has no Envoy spelling"),
                ));
            }
            ra.regex_rewrite = Some(RegexMatchAndSubstitute {
                pattern: Some(RegexMatcher {
                    regex: pattern.as_str().to_owned(),
                    ..Default::default()
                }),
                substitution: envoy,
            });
        }
    }
    match f.host_rewrite.as_deref() {
        None => {}
        Some("") => {
            return Err(Refused::new(
                "host_rewrite",
                "an empty host reads back as no rewrite",
            ));
        }
        Some(h) => {
            ra.host_rewrite_specifier = Some(HostRewriteSpecifier::HostRewriteLiteral(h.into()));
        }
    }
    if let Some(timeout) = f.timeout {
        // As istiod writes it: the gRPC limit (A31) and Envoy's, alike;
        // zero disables.
        let d = duration(timeout.unwrap_or_default());
        ra.timeout = Some(d);
        ra.max_stream_duration = Some(MaxStreamDuration {
            max_stream_duration: Some(d),
            grpc_timeout_header_max: Some(d),
            grpc_timeout_header_offset: None,
        });
    }
    if let Some(p) = &f.retry {
        ra.retry_policy = Some(retry(p).map_err(|e| e.within("retry"))?);
    }
    ra.hash_policy = f
        .hash_policy
        .iter()
        .enumerate()
        .map(|(i, h)| hash_policy(h).map_err(|e| e.within(&format!("hash_policy[{i}]"))))
        .collect::<Result<_, _>>()?;
    ra.request_mirror_policies = f.mirrors.iter().map(mirror).collect();
    Ok(ra)
}

/// The mesh's `${1}` and `$$` in Envoy's spelling, `\1` and `$`.
fn envoy_substitution(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some((group, after)) = tail
            .strip_prefix("${")
            .and_then(|t| t.split_once('}'))
            .filter(|(g, _)| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()))
        {
            out.push('\\');
            out.push_str(group);
            rest = after;
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// A retry policy as a route's, retrying on another endpoint than those
/// tried (Envoy's `previous_hosts` predicate, as istiod writes it); the
/// parts xDS has no field for must be the defaults it reads back.
pub(super) fn retry(p: &RetryPolicy) -> Result<rds::RetryPolicy, Refused> {
    let default = RetryPolicy::default();
    if p.budget != default.budget {
        return Err(Refused::new(
            "budget",
            "retry budgets are not expressed in xDS routes",
        ));
    }
    if p.max_replay_body_bytes != default.max_replay_body_bytes {
        return Err(Refused::new(
            "max_replay_body_bytes",
            "the replay buffer's bound is not expressed in xDS routes",
        ));
    }
    if p.per_try_timeout.is_some_and(|d| d.is_zero()) {
        return Err(Refused::new(
            "per_try_timeout",
            "zero reads back as no per-try timeout",
        ));
    }
    if let Some(code) = p
        .retriable_status_codes
        .iter()
        .find(|c| !(100..600).contains(*c))
    {
        return Err(Refused::new(
            "retriable_status_codes",
            format_args!("{code} is not an HTTP status"),
        ));
    }
    let retry_back_off = (p.backoff != Backoff::default())
        .then(|| backoff(&p.backoff))
        .transpose()?;
    Ok(rds::RetryPolicy {
        retry_on: p.retry_on.to_string(),
        num_retries: Some(UInt32Value {
            value: p.num_retries,
        }),
        per_try_timeout: p.per_try_timeout.map(duration),
        retriable_status_codes: p
            .retriable_status_codes
            .iter()
            .map(|c| u32::from(*c))
            .collect(),
        retry_back_off,
        // The mesh retries on an endpoint not yet tried, as Envoy does with
        // this predicate; istiod writes it on every route.
        retry_host_predicate: vec![rds::retry_policy::RetryHostPredicate {
            name: "envoy.retry_host_predicates.previous_hosts".into(),
            config_type: Some(
                rds::retry_policy::retry_host_predicate::ConfigType::TypedConfig(any(
                    &PreviousHostsPredicate::default(),
                )),
            ),
        }],
        host_selection_retry_max_attempts: 5,
        ..Default::default()
    })
}

fn backoff(b: &Backoff) -> Result<rds::retry_policy::RetryBackOff, Refused> {
    if b.base.is_zero() {
        return Err(Refused::new("backoff.base", "must be more than zero"));
    }
    if b.max < b.base {
        return Err(Refused::new("backoff.max", "must not be less than base"));
    }
    Ok(rds::retry_policy::RetryBackOff {
        base_interval: Some(duration(b.base)),
        max_interval: Some(duration(b.max)),
    })
}

fn hash_policy(h: &HashPolicy) -> Result<rds::route_action::HashPolicy, Refused> {
    let spec = match &h.key {
        HashKey::Header(name) => PolicySpecifier::Header(Header {
            header_name: name.as_str().to_owned(),
            regex_rewrite: None,
        }),
        HashKey::Cookie(name) if name.is_empty() => {
            return Err(Refused::new("key", "a cookie needs a name"));
        }
        HashKey::Cookie(name) => PolicySpecifier::Cookie(Cookie {
            name: name.clone(),
            ..Default::default()
        }),
        HashKey::QueryParameter(name) if name.is_empty() => {
            return Err(Refused::new("key", "a query parameter needs a name"));
        }
        HashKey::QueryParameter(name) => {
            PolicySpecifier::QueryParameter(QueryParameter { name: name.clone() })
        }
        HashKey::SourceIp => {
            PolicySpecifier::ConnectionProperties(ConnectionProperties { source_ip: true })
        }
    };
    Ok(rds::route_action::HashPolicy {
        policy_specifier: Some(spec),
        terminal: h.terminal,
    })
}

pub(super) fn mirror(m: &Mirror) -> rds::route_action::RequestMirrorPolicy {
    rds::route_action::RequestMirrorPolicy {
        cluster: m.cluster.as_str().to_owned(),
        runtime_fraction: (m.percent != Percent::ALL).then(|| RuntimeFractionalPercent {
            default_value: Some(fraction(m.percent)),
            runtime_key: String::new(),
        }),
        ..Default::default()
    }
}

fn redirect(r: &Redirect) -> Result<rds::RedirectAction, Refused> {
    let scheme = match r.scheme.as_deref() {
        None => None,
        Some(s) if s.is_empty() || s != s.to_ascii_lowercase() => {
            return Err(Refused::new(
                "scheme",
                format_args!("{s:?} reads back otherwise: a scheme is lower case"),
            ));
        }
        Some(s) => Some(SchemeRewriteSpecifier::SchemeRedirect(s.to_owned())),
    };
    let host_redirect = match r.host.as_deref() {
        Some("") => return Err(Refused::new("host", "an empty host reads back as none")),
        h => h.unwrap_or_default().to_owned(),
    };
    let port_redirect = match r.port {
        Some(0) => return Err(Refused::new("port", "port 0 reads back as none")),
        p => u32::from(p.unwrap_or(0)),
    };
    let path = match r.path.as_deref() {
        Some(p) if p.contains('?') => {
            return Err(Refused::new(
                "path",
                "a query in the path is not expressed: redirects keep the request's",
            ));
        }
        p => p.map(|p| PathRewriteSpecifier::PathRedirect(p.to_owned())),
    };
    let response_code = match r.status.as_u16() {
        301 => RedirectResponseCode::MovedPermanently,
        302 => RedirectResponseCode::Found,
        303 => RedirectResponseCode::SeeOther,
        307 => RedirectResponseCode::TemporaryRedirect,
        308 => RedirectResponseCode::PermanentRedirect,
        s => {
            return Err(Refused::new(
                "status",
                format_args!("{s} is not a redirect status xDS has (301, 302, 303, 307, 308)"),
            ));
        }
    };
    Ok(rds::RedirectAction {
        scheme_rewrite_specifier: scheme,
        host_redirect,
        port_redirect,
        path_rewrite_specifier: path,
        response_code: response_code as i32,
        strip_query: false,
    })
}

fn direct(d: &DirectResponse) -> Result<rds::DirectResponseAction, Refused> {
    let status = d.status.as_u16();
    if !(200..600).contains(&status) {
        return Err(Refused::new(
            "status",
            format_args!("{status} is not between 200 and 599"),
        ));
    }
    Ok(rds::DirectResponseAction {
        status: u32::from(status),
        body: d.body.as_ref().map(|b: &Bytes| DataSource {
            specifier: Some(data_source::Specifier::InlineBytes(b.to_vec())),
            watched_directory: None,
        }),
        body_format: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutions_in_envoy_spelling() {
        assert_eq!(envoy_substitution("${2}/instance/${1}"), "\\2/instance/\\1");
        assert_eq!(envoy_substitution("$$5 and $x"), "$5 and $x");
        let r = PathRewrite::regex("^/a/(.*)$", "/b/\\1?$$").unwrap();
        let PathRewrite::Regex { substitution, .. } = &r else {
            panic!("a regex rewrite");
        };
        assert_eq!(envoy_substitution(substitution), "/b/\\1?$$");
    }
}
