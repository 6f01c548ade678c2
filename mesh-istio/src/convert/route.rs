//! A VirtualService's HTTP routes into [`Route`]s: one per match block
//! (or one matching everything), each taking the route's action — forward
//! with weights, rewrites, timeout, retries, mirrors and the hash policy of
//! the destinations' DestinationRules; redirect; or direct response — with
//! its header changes and faults.

use std::sync::Arc;

use mesh_core::policy::{Backoff, RetryBudget, RetryOn, RetryPolicy};
use mesh_core::route::{
    Destination, Forward, HashKey, HashPolicy, HeaderMutation, Mirror, PathRewrite, Percent, Route,
    RouteAction, WeightedCluster,
};

use super::super::api::{HTTPRetry, HTTPRoute, VirtualService};
use super::super::error::{IstioError, IstioErrorKind, Warning};
use super::super::yaml::FieldPath;
use super::answer::{direct_response, redirect};
use super::fault::fault;
use super::headers::headers;
use super::{Ctx, Env, PortRoute, check, matching};

/// The routes of `vs` that apply to the client, in order, for `bound`:
/// `mesh`, or the client's Gateways `vs` is bound to.
pub(super) fn routes(
    ctx: &Ctx<'_>,
    vs: &VirtualService,
    env: &mut Env<'_>,
    bound: &[String],
) -> Result<Vec<PortRoute>, IstioError> {
    let mut out = Vec::new();
    let namespace = vs.metadata.namespace();
    for (i, http) in vs.spec.http.iter().enumerate() {
        let at = FieldPath::root().key("spec").key("http").index(i);
        let template = route(ctx, &at, http, namespace, env)?;
        if http.matches.is_empty() {
            out.push(PortRoute {
                port: None,
                route: template,
                fallback: false,
            });
            continue;
        }
        for (j, m) in http.matches.iter().enumerate() {
            let at = at.key("match").index(j);
            let (port, matches) = matching::route_match(ctx, &at, m)?;
            if !matching::applies(m, env.workload, namespace, bound) {
                continue;
            }
            let name = match (http.name.as_str(), m.name.as_str()) {
                ("", "") => None,
                (r, "") => Some(r.to_owned()),
                ("", m) => Some(m.to_owned()),
                (r, m) => Some(format!("{r}.{m}")),
            };
            out.push(PortRoute {
                port,
                route: Route {
                    name,
                    matches,
                    ..template.clone()
                },
                fallback: false,
            });
        }
    }
    Ok(out)
}

/// The route `http` at `at`, matching everything.
fn route(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    http: &HTTPRoute,
    namespace: &str,
    env: &mut Env<'_>,
) -> Result<Route, IstioError> {
    if http.delegate.is_some() {
        return Err(ctx.invalid(
            &at.key("delegate"),
            "delegation is not supported by the client; write the delegate's routes here",
        ));
    }
    let actions = [
        !http.route.is_empty(),
        http.redirect.is_some(),
        http.direct_response.is_some(),
    ];
    match actions.iter().filter(|a| **a).count() {
        0 => return Err(ctx.invalid(at, "expected route, redirect or directResponse")),
        1 => {}
        _ => {
            return Err(ctx.invalid(
                at,
                "expected one of route, redirect and directResponse, not several",
            ));
        }
    }
    if http.rewrite.is_some() && http.route.is_empty() {
        return Err(ctx.invalid(
            &at.key("rewrite"),
            "rewrite applies only to forwarded requests, not to redirect or directResponse",
        ));
    }
    let mut authority = None;
    let (mut request_headers, mut response_headers) = match &http.headers {
        Some(h) => headers(ctx, &at.key("headers"), h, &mut authority)?,
        None => Default::default(),
    };
    let action = if let Some(r) = &http.redirect {
        RouteAction::Redirect(redirect(ctx, &at.key("redirect"), r)?)
    } else if let Some(d) = &http.direct_response {
        RouteAction::Direct(direct_response(ctx, &at.key("directResponse"), d)?)
    } else {
        let (forward, (request, response)) =
            forward(ctx, at, http, namespace, &mut authority, env)?;
        merge(&mut request_headers, request);
        merge(&mut response_headers, response);
        RouteAction::Forward(forward)
    };
    let fault = match &http.fault {
        Some(f) => fault(ctx, &at.key("fault"), f)?,
        None => None,
    };
    Ok(Route {
        name: (!http.name.is_empty()).then(|| http.name.clone()),
        fault,
        request_headers,
        response_headers,
        ..Route::new(action)
    })
}

fn merge(into: &mut HeaderMutation, more: HeaderMutation) {
    into.set.extend(more.set);
    into.add.extend(more.add);
    into.remove.extend(more.remove);
}

/// The forwarding action of `http`, and the request and response header
/// changes of its single destination.
fn forward(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    http: &HTTPRoute,
    namespace: &str,
    authority: &mut Option<String>,
    env: &mut Env<'_>,
) -> Result<(Forward, (HeaderMutation, HeaderMutation)), IstioError> {
    let at_route = at.key("route");
    let mut extra = (HeaderMutation::default(), HeaderMutation::default());
    let mut hashes = Vec::new();
    let mut budget = None;
    let mut split = Vec::new();
    for (k, d) in http.route.iter().enumerate() {
        let at = at_route.index(k);
        let resolved = env.destination(ctx, &at.key("destination"), &d.destination, namespace)?;
        if let Some(h) = &d.headers {
            if http.route.len() > 1 {
                return Err(ctx.invalid(
                    &at.key("headers"),
                    "header changes of one destination among several are not supported by the client; move them to the route's headers",
                ));
            }
            let mut own = None;
            let (request, response) = headers(ctx, &at.key("headers"), h, &mut own)?;
            merge(&mut extra.0, request);
            merge(&mut extra.1, response);
            if authority.is_none() {
                *authority = own;
            }
        }
        if http.route.len() > 1 && d.weight == 0 {
            continue;
        }
        for h in resolved.hashes {
            if !hashes.contains(&h) {
                hashes.push(h);
            }
        }
        budget.get_or_insert(resolved.cluster.policy.retry.budget);
        split.push(WeightedCluster {
            name: resolved.cluster.name,
            weight: d.weight,
        });
    }
    let destination = match split.len() {
        0 => {
            return Err(ctx.invalid(
                &at_route,
                "every destination has weight 0; give at least one a weight (weights may be left out only with a single destination)",
            ));
        }
        1 if http.route.len() == 1 => Destination::Cluster(split.remove(0).name),
        _ => {
            let total: u64 = split.iter().map(|w| u64::from(w.weight)).sum();
            if total > u64::from(u32::MAX) {
                return Err(ctx.invalid(
                    &at_route,
                    format!("the weights sum to {total}, more than 4294967295"),
                ));
            }
            Destination::Weighted(split)
        }
    };
    let mut forward = Forward::to("");
    forward.destination = destination;
    let what = match http.name.as_str() {
        "" => "the route".to_owned(),
        name => format!("route {name:?}"),
    };
    forward.hash_policy = one_hash_policy(ctx, &at_route, &what, hashes, &mut env.warnings);
    if let Some(rw) = &http.rewrite {
        let at = at.key("rewrite");
        match (&rw.uri, &rw.uri_regex_rewrite) {
            (uri, Some(_)) if !uri.is_empty() => {
                return Err(ctx.invalid(&at, "expected uri or uriRegexRewrite, not both"));
            }
            (_, Some(r)) => {
                let rewrite = PathRewrite::regex(&r.pattern, &r.rewrite).map_err(|e| {
                    ctx.error(
                        &at.key("uriRegexRewrite").key("match"),
                        IstioErrorKind::Route(e),
                    )
                })?;
                forward.rewrite = Some(rewrite);
            }
            (uri, None) if !uri.is_empty() => {
                forward.rewrite = Some(PathRewrite::Prefix(uri.clone()))
            }
            _ => {}
        }
        if !rw.authority.is_empty() {
            *authority = Some(rw.authority.clone());
        }
    }
    forward.host_rewrite = authority.take();
    if let Some(t) = http.timeout {
        let t = t.get();
        forward.timeout = Some((!t.is_zero()).then_some(t));
    }
    if let Some(r) = &http.retries {
        let budget = budget.unwrap_or_default();
        forward.retry = Some(Arc::new(retry(ctx, &at.key("retries"), r, budget)?));
    }
    forward.mirrors = mirrors(ctx, at, http, namespace, env)?;
    Ok((forward, extra))
}

fn mirrors(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    http: &HTTPRoute,
    namespace: &str,
    env: &mut Env<'_>,
) -> Result<Vec<Mirror>, IstioError> {
    if http.mirror.is_some() && !http.mirrors.is_empty() {
        return Err(ctx.invalid(&at.key("mirrors"), "expected mirror or mirrors, not both"));
    }
    let mut out = Vec::new();
    if let Some(d) = &http.mirror {
        let percent = check::share(
            ctx,
            at,
            ("mirrorPercentage", http.mirror_percentage),
            ("mirrorPercent", http.mirror_percent),
            Percent::ALL,
        )?;
        let cluster = env.destination(ctx, &at.key("mirror"), d, namespace)?;
        if percent != Percent::NONE {
            out.push(Mirror {
                cluster: cluster.cluster.name,
                percent,
            });
        }
    }
    for (k, m) in http.mirrors.iter().enumerate() {
        let at = at.key("mirrors").index(k);
        let percent = match m.percentage {
            Some(p) => check::percent(ctx, &at.key("percentage").key("value"), p)?,
            None => Percent::ALL,
        };
        let cluster = env.destination(ctx, &at.key("destination"), &m.destination, namespace)?;
        if percent != Percent::NONE {
            out.push(Mirror {
                cluster: cluster.cluster.name,
                percent,
            });
        }
    }
    Ok(out)
}

/// The hash policy of a route to clusters whose balancers expect `hashes`
/// (each once): the one they all expect, or none when they expect
/// different ones, with a warning at `at` naming the route (`what`).
/// Envoy's route has one hash policy for all its clusters: hashing a
/// request on every key would put it where none of the clusters' own keys
/// would. Clusters that do not hash ignore the policy.
pub(super) fn one_hash_policy(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    what: &str,
    hashes: Vec<HashPolicy>,
    warnings: &mut Vec<Warning>,
) -> Vec<HashPolicy> {
    if hashes.len() <= 1 {
        return hashes;
    }
    let keys: Vec<String> = hashes.iter().map(|h| hash_key(&h.key)).collect();
    warnings.push(ctx.warning(
        at,
        format!(
            "{what} goes to clusters whose DestinationRules hash requests on different keys ({}); a route has one hash policy, so it gets none and those clusters send each request to a random endpoint",
            keys.join(", ")
        ),
    ));
    Vec::new()
}

/// A hash key as Istio's `consistentHash` names it.
fn hash_key(key: &HashKey) -> String {
    match key {
        HashKey::Header(name) => format!("httpHeaderName {name}"),
        HashKey::Cookie(name) => format!("httpCookie {name}"),
        HashKey::QueryParameter(name) => format!("httpQueryParameterName {name}"),
        HashKey::SourceIp => "useSourceIp".to_owned(),
    }
}

/// Istio's retry policy: its default with the attempts, conditions,
/// per-try timeout and backoff given; `attempts: 0` disables retries.
fn retry(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    r: &HTTPRetry,
    budget: RetryBudget,
) -> Result<RetryPolicy, IstioError> {
    if r.attempts == 0 {
        return Ok(RetryPolicy::disabled());
    }
    let mut p = RetryPolicy {
        num_retries: r.attempts,
        budget,
        ..RetryPolicy::default()
    };
    if !r.retry_on.trim().is_empty() {
        let mut conditions = Vec::new();
        let mut codes = Vec::new();
        for part in r
            .retry_on
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match part.parse::<u16>() {
                Ok(code @ 100..=599) => codes.push(code),
                Ok(_) => {
                    return Err(ctx.invalid(
                        &at.key("retryOn"),
                        format!("{part} is not an HTTP status; expected 100 to 599 or an Envoy retry condition"),
                    ));
                }
                Err(_) => conditions.push(part),
            }
        }
        let mut on: RetryOn = conditions
            .join(",")
            .parse()
            .map_err(|e| ctx.error(&at.key("retryOn"), IstioErrorKind::RetryOn(e)))?;
        if !codes.is_empty() {
            on = on.union(RetryOn::RETRIABLE_STATUS_CODES);
        }
        p.retry_on = on;
        p.retriable_status_codes = codes;
    }
    if let Some(t) = r.per_try_timeout {
        p.per_try_timeout = (!t.get().is_zero()).then_some(t.get());
    }
    if let Some(b) = r.backoff {
        let base = check::at_least_1ms(ctx, &at.key("backoff"), b.get())?;
        p.backoff = Backoff {
            base,
            max: base.saturating_mul(10),
        };
    }
    Ok(p)
}
