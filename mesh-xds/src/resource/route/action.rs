//! A route's action: Envoy's `RouteAction` into a [`Forward`] (cluster or
//! weighted clusters, rewrites, timeout, retries, hash policy, mirrors);
//! redirects and direct responses are [`respond`](super::respond)'s.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use envoy_types::pb::envoy::config::route::v3 as rds;
use http::{HeaderName, StatusCode};
use mesh_core::policy::{Backoff, RetryOn, RetryPolicy};
use mesh_core::route::{
    ClusterName, Destination, DirectResponse, Forward, HashKey, HashPolicy, Mirror, PathRewrite,
    Percent, RouteAction, WeightedCluster,
};
use rds::route::Action;
use rds::route_action::hash_policy::PolicySpecifier;
use rds::route_action::{ClusterSpecifier, HostRewriteSpecifier, RequestMirrorPolicy};

use super::{Reject, Scope, respond, skip};
use crate::resource::error::{At, FieldError, Ignored};
use crate::resource::proto;

/// The body of the 503 a route with no forwarding action answers.
const NOT_FORWARDING: &str = "the matched route has no forwarding action";

pub(super) fn action(
    scope: &Scope<'_>,
    r: &rds::Route,
    separated_prefix: Option<&(String, bool)>,
    at: &At<'_>,
    ignored: &mut Vec<Ignored>,
) -> Result<RouteAction, Reject> {
    match &r.action {
        None => Err(at
            .error("a route needs an action: route, redirect or direct_response")
            .into()),
        Some(Action::Route(ra)) => {
            forward(scope, ra, separated_prefix, &at.field("route"), ignored)
                .map(RouteAction::Forward)
        }
        Some(Action::Redirect(ra)) => {
            let at = at.field("redirect");
            Ok(RouteAction::Redirect(respond::redirect(ra, &at)?))
        }
        Some(Action::DirectResponse(d)) => {
            let at = at.field("direct_response");
            Ok(RouteAction::Direct(respond::direct(scope.rc, d, &at)?))
        }
        Some(Action::FilterAction(_) | Action::NonForwardingAction(_)) => {
            ignored.push(at.ignored("no forwarding action: matching requests get a 503"));
            Ok(RouteAction::Direct(DirectResponse {
                status: StatusCode::SERVICE_UNAVAILABLE,
                body: Some(Bytes::from_static(NOT_FORWARDING.as_bytes())),
            }))
        }
    }
}

fn forward(
    scope: &Scope<'_>,
    ra: &rds::RouteAction,
    separated_prefix: Option<&(String, bool)>,
    at: &At<'_>,
    ignored: &mut Vec<Ignored>,
) -> Result<Forward, Reject> {
    let destination = destination(ra, at)?;
    let retry = match &ra.retry_policy {
        Some(p) => Some(Arc::new(retry(p, &at.field("retry_policy"))?)),
        None => scope.retry.clone(),
    };
    let mirrors = match ra.request_mirror_policies.as_slice() {
        [] => scope.mirrors.to_vec(),
        list => mirrors(list, &at.field("request_mirror_policies"), ignored)?,
    };
    Ok(Forward {
        destination,
        rewrite: rewrite(ra, separated_prefix, at)?,
        host_rewrite: match &ra.host_rewrite_specifier {
            Some(HostRewriteSpecifier::HostRewriteLiteral(h)) if !h.is_empty() => Some(h.clone()),
            // A substitution format with no operator in it is a literal.
            Some(HostRewriteSpecifier::HostRewrite(h)) if !h.is_empty() && !h.contains('%') => {
                Some(h.clone())
            }
            _ => None,
        },
        timeout: timeout(ra, at)?,
        retry,
        hash_policy: hash_policy(ra, &at.field("hash_policy"), ignored)?,
        mirrors,
    })
}

fn destination(ra: &rds::RouteAction, at: &At<'_>) -> Result<Destination, Reject> {
    match &ra.cluster_specifier {
        None => Err(at.error("names no cluster").into()),
        Some(ClusterSpecifier::Cluster(c)) if c.is_empty() => {
            Err(at.field("cluster").error("empty cluster name").into())
        }
        Some(ClusterSpecifier::Cluster(c)) => {
            Ok(Destination::Cluster(ClusterName::new(c.as_str())))
        }
        Some(ClusterSpecifier::WeightedClusters(w)) => weighted(w, &at.field("weighted_clusters")),
        Some(ClusterSpecifier::ClusterHeader(_)) => Err(skip(
            &at.field("cluster_header"),
            "clusters named by a request header are not supported",
        )),
        Some(
            ClusterSpecifier::ClusterSpecifierPlugin(_)
            | ClusterSpecifier::InlineClusterSpecifierPlugin(_),
        ) => Err(skip(at, "cluster specifier plugins are not supported")),
    }
}

#[allow(deprecated)] // `total_weight`: older control planes still send it
fn weighted(w: &rds::WeightedCluster, at: &At<'_>) -> Result<Destination, Reject> {
    let list_at = at.field("clusters");
    if w.clusters.is_empty() {
        return Err(list_at.error("no clusters").into());
    }
    let mut clusters = Vec::with_capacity(w.clusters.len());
    let mut total = 0u64;
    for (i, c) in w.clusters.iter().enumerate() {
        let at = list_at.index(i);
        if c.name.is_empty() && !c.cluster_header.is_empty() {
            let at = at.field("cluster_header");
            return Err(skip(
                &at,
                "clusters named by a request header are not supported",
            ));
        }
        if c.name.is_empty() {
            return Err(at.field("name").error("empty cluster name").into());
        }
        let per_cluster = [
            (
                !c.request_headers_to_add.is_empty(),
                "request_headers_to_add",
            ),
            (
                !c.request_headers_to_remove.is_empty(),
                "request_headers_to_remove",
            ),
            (
                !c.response_headers_to_add.is_empty(),
                "response_headers_to_add",
            ),
            (
                !c.response_headers_to_remove.is_empty(),
                "response_headers_to_remove",
            ),
            (c.host_rewrite_specifier.is_some(), "host_rewrite_literal"),
        ];
        if let Some((_, field)) = per_cluster.iter().find(|(set, _)| *set) {
            let reason = "changes per weighted cluster are not supported; set them on the route";
            return Err(at.field(field).error(reason).into());
        }
        let weight = c.weight.map_or(0, |w| w.value);
        total += u64::from(weight);
        clusters.push(WeightedCluster {
            name: ClusterName::new(c.name.as_str()),
            weight,
        });
    }
    if total == 0 {
        return Err(at.error("weights sum to zero").into());
    }
    if total > u64::from(u32::MAX) {
        return Err(at
            .error(format_args!("weights sum to {total}, more than 2^32 - 1"))
            .into());
    }
    if let Some(t) = w.total_weight.filter(|t| u64::from(t.value) != total) {
        let reason = format!("weights sum to {total}, not {}", t.value);
        return Err(at.field("total_weight").error(reason).into());
    }
    Ok(Destination::Weighted(clusters))
}

fn rewrite(
    ra: &rds::RouteAction,
    separated_prefix: Option<&(String, bool)>,
    at: &At<'_>,
) -> Result<Option<PathRewrite>, FieldError> {
    if ra.path_rewrite_policy.is_some() {
        let at = at.field("path_rewrite_policy");
        return Err(at.error("path rewrite policies (URI templates) are not supported"));
    }
    if !ra.path_rewrite.is_empty() {
        let at = at.field("path_rewrite");
        return Err(at.error("substitution formats are not supported"));
    }
    let prefix_at = at.field("prefix_rewrite");
    let regex_at = at.field("regex_rewrite");
    match (ra.prefix_rewrite.as_str(), &ra.regex_rewrite) {
        ("", None) => Ok(None),
        ("", Some(r)) => {
            let pattern_at = regex_at.field("pattern");
            let Some(pattern) = &r.pattern else {
                return Err(pattern_at.error("missing"));
            };
            PathRewrite::regex(&pattern.regex, &r.substitution)
                .map(Some)
                .map_err(|e| pattern_at.field("regex").error(e))
        }
        (_, Some(_)) => Err(regex_at.error("prefix_rewrite and regex_rewrite are exclusive")),
        (new, None) => match separated_prefix {
            None => Ok(Some(PathRewrite::Prefix(new.to_owned()))),
            // The mesh replaces the matched prefix only of prefix matches;
            // a segment-bounded prefix is replaced by a regex.
            Some((prefix, ignore_case)) => {
                if new.contains('\\') {
                    return Err(prefix_at.error("a backslash cannot be rewritten here"));
                }
                let case = if *ignore_case { "(?i)" } else { "" };
                let pattern = format!("^{case}{}", regex::escape(prefix));
                PathRewrite::regex(&pattern, new)
                    .map(Some)
                    .map_err(|e| prefix_at.error(e))
            }
        },
    }
}

/// gRFC A31: `max_stream_duration` before `timeout`; zero disables.
fn timeout(ra: &rds::RouteAction, at: &At<'_>) -> Result<Option<Option<Duration>>, FieldError> {
    let msd_at = at.field("max_stream_duration");
    let msd = ra
        .max_stream_duration
        .as_ref()
        .and_then(|m| m.max_stream_duration.as_ref());
    let d = match (msd, &ra.timeout) {
        (Some(d), _) => proto::duration(d, &msd_at.field("max_stream_duration"))?,
        (None, Some(d)) => proto::duration(d, &at.field("timeout"))?,
        (None, None) => return Ok(None),
    };
    Ok(Some((!d.is_zero()).then_some(d)))
}

/// gRFC A44, with Envoy's conditions where the mesh has them.
pub(super) fn retry(p: &rds::RetryPolicy, at: &At<'_>) -> Result<RetryPolicy, FieldError> {
    // Conditions the mesh does not implement are ignored, as Envoy ignores
    // unknown ones and gRPC all but the status-code ones.
    let retry_on = p
        .retry_on
        .split(',')
        .filter_map(|c| c.parse::<RetryOn>().ok())
        .fold(RetryOn::NONE, RetryOn::union);
    let codes_at = at.field("retriable_status_codes");
    let retriable_status_codes = p
        .retriable_status_codes
        .iter()
        .enumerate()
        .map(|(i, &code)| {
            u16::try_from(code)
                .ok()
                .filter(|c| (100..600).contains(c))
                .ok_or_else(|| {
                    codes_at
                        .index(i)
                        .error(format_args!("{code} is not an HTTP status"))
                })
        })
        .collect::<Result<_, _>>()?;
    let try_at = at.field("per_try_timeout");
    let per_try_timeout = proto::opt_duration(p.per_try_timeout.as_ref(), &try_at)?;
    let backoff = match &p.retry_back_off {
        Some(b) => backoff(b, &at.field("retry_back_off"))?,
        None => Backoff::default(),
    };
    Ok(RetryPolicy {
        retry_on,
        num_retries: p.num_retries.map_or(1, |n| n.value),
        per_try_timeout: per_try_timeout.filter(|d| !d.is_zero()),
        retriable_status_codes,
        backoff,
        ..RetryPolicy::default()
    })
}

fn backoff(b: &rds::retry_policy::RetryBackOff, at: &At<'_>) -> Result<Backoff, FieldError> {
    let base_at = at.field("base_interval");
    let base = match &b.base_interval {
        Some(d) => proto::duration(d, &base_at)?,
        None => return Err(base_at.error("missing")),
    };
    if base.is_zero() {
        return Err(base_at.error("must be more than zero"));
    }
    let max_at = at.field("max_interval");
    let max = match &b.max_interval {
        Some(d) => proto::duration(d, &max_at)?,
        None => base.saturating_mul(10),
    };
    if max < base {
        return Err(max_at.error(format_args!("{max:?} is less than base_interval {base:?}")));
    }
    Ok(Backoff { base, max })
}

/// gRFC A42; cookies, query parameters and source IP as Envoy.
fn hash_policy(
    ra: &rds::RouteAction,
    at: &At<'_>,
    ignored: &mut Vec<Ignored>,
) -> Result<Vec<HashPolicy>, FieldError> {
    let mut out = Vec::with_capacity(ra.hash_policy.len());
    for (i, h) in ra.hash_policy.iter().enumerate() {
        let at = at.index(i);
        let key = match &h.policy_specifier {
            None => return Err(at.error("no policy")),
            Some(PolicySpecifier::Header(header)) => {
                let at = at.field("header");
                let name = &header.header_name;
                if header.regex_rewrite.is_some() || name.starts_with(':') {
                    let why = "hashing on a rewritten header or a pseudo-header is not supported";
                    ignored.push(at.ignored(why));
                    continue;
                }
                HashKey::Header(HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    at.field("header_name")
                        .error(format_args!("invalid header name {name:?}"))
                })?)
            }
            Some(PolicySpecifier::Cookie(c)) => {
                let at = at.field("cookie");
                if c.name.is_empty() {
                    return Err(at.field("name").error("must not be empty"));
                }
                if c.ttl.is_some() {
                    let why =
                        "the mesh does not set the cookie; requests without it are not pinned";
                    ignored.push(at.field("ttl").ignored(why));
                }
                HashKey::Cookie(c.name.clone())
            }
            Some(PolicySpecifier::ConnectionProperties(p)) if p.source_ip => HashKey::SourceIp,
            Some(PolicySpecifier::ConnectionProperties(_)) => continue,
            Some(PolicySpecifier::QueryParameter(q)) => {
                if q.name.is_empty() {
                    let at = at.field("query_parameter");
                    return Err(at.field("name").error("must not be empty"));
                }
                HashKey::QueryParameter(q.name.clone())
            }
            Some(PolicySpecifier::FilterState(_)) => {
                let at = at.field("filter_state");
                ignored.push(at.ignored("filter state is not known to the mesh"));
                continue;
            }
        };
        out.push(HashPolicy {
            key,
            terminal: h.terminal,
        });
    }
    Ok(out)
}

/// Mirrors; a `runtime_fraction` takes its `default_value`.
pub(super) fn mirrors(
    list: &[RequestMirrorPolicy],
    at: &At<'_>,
    ignored: &mut Vec<Ignored>,
) -> Result<Vec<Mirror>, FieldError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let at = at.index(i);
        if m.cluster.is_empty() && !m.cluster_header.is_empty() {
            let why = "mirroring to a cluster named by a request header is not supported";
            ignored.push(at.field("cluster_header").ignored(why));
            continue;
        }
        if m.cluster.is_empty() {
            return Err(at.field("cluster").error("empty cluster name"));
        }
        let percent = match &m.runtime_fraction {
            None => Percent::ALL,
            Some(f) => {
                let at = at.field("runtime_fraction");
                let value_at = at.field("default_value");
                match &f.default_value {
                    Some(v) => proto::fraction(v, &value_at)?,
                    None => return Err(value_at.error("missing")),
                }
            }
        };
        out.push(Mirror {
            cluster: ClusterName::new(m.cluster.as_str()),
            percent,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
