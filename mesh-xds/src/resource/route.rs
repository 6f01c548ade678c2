//! RDS: a `RouteConfiguration` into the mesh's [`RouteTable`], with the
//! semantics gRPC's xDS client gives it (gRFC A28 routing, A31 timeouts,
//! A33 faults, A42 hash policies, A44 retries) and Envoy's where the mesh
//! does more than gRPC (query parameters, rewrites, header changes,
//! redirects, direct responses, mirrors).
//!
//! ```
//! use envoy_types::pb::envoy::config::route::v3::{
//!     route, route_action, route_match, Route, RouteAction, RouteConfiguration, RouteMatch,
//!     VirtualHost,
//! };
//! use mesh_xds::resource::XdsRouteConfig;
//!
//! let rc = RouteConfiguration {
//!     name: "9080".into(),
//!     virtual_hosts: vec![VirtualHost {
//!         name: "reviews.default.svc.cluster.local:9080".into(),
//!         domains: vec!["reviews.default.svc.cluster.local".into(), "reviews:9080".into()],
//!         routes: vec![Route {
//!             r#match: Some(RouteMatch {
//!                 path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
//!                 ..Default::default()
//!             }),
//!             action: Some(route::Action::Route(RouteAction {
//!                 cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
//!                     "outbound|9080||reviews.default.svc.cluster.local".into(),
//!                 )),
//!                 ..Default::default()
//!             })),
//!             ..Default::default()
//!         }],
//!         ..Default::default()
//!     }],
//!     ..Default::default()
//! };
//! let routes = XdsRouteConfig::try_from(&rc)?;
//! assert_eq!(routes.table.clusters().count(), 1);
//! # Ok::<(), mesh_xds::resource::ResourceError>(())
//! ```
//!
//! # What is accepted, left out or rejected
//!
//! A resource is rejected (NACK) when a value is malformed — a regular
//! expression that does not compile, a header name that is not one,
//! weights that sum to zero, an empty cluster name, a duplicate domain, a
//! status code out of range — and when applying it as the mesh can would
//! send traffic somewhere or in a shape the control plane did not ask for:
//! a partial `runtime_fraction` match, conditional header actions
//! (`ADD_IF_ABSENT`, `OVERWRITE_IF_EXISTS`), `%…%` command operators in
//! header values, header changes or host rewrites per weighted cluster,
//! redirects that rewrite a path prefix or strip the query, faults limited
//! by headers or upstream cluster, path rewrite policies.
//!
//! A route is left out (and listed in [`XdsRouteConfig::ignored`]) when
//! gRPC leaves such a route out: it names its cluster by a request header
//! or a cluster specifier plugin, or it matches on something the mesh
//! cannot evaluate: cookies, dynamic metadata, filter state, TLS context,
//! CONNECT, URI templates, custom string matchers, pseudo-headers other
//! than `:method` and `:authority` by value, `present_match: false` on a
//! query parameter, a `runtime_fraction` of 0 %. A route with a
//! `non_forwarding_action` or a `filter_action` answers 503, as gRPC
//! fails the RPCs such a route matches. Hash policies on a rewritten
//! header or on filter state, and mirrors to a cluster named by a header,
//! are left out of their route.
//!
//! Everything else gRPC ignores is ignored here too: tracing, decorators,
//! rate limits, CORS, hedging, idle timeouts, internal redirects, retry
//! host predicates and priorities, `metadata_match`, upgrade configs,
//! `auto_host_rewrite` and the other computed host rewrites.
//!
//! Semantics worth knowing:
//! - Timeout (A31): `max_stream_duration.max_stream_duration` if set, else
//!   `timeout`; zero disables it. Neither set leaves the cluster's (no
//!   timeout), not Envoy's implicit 15 s. `grpc_timeout_header_max` is
//!   ignored.
//! - Retries (A44): the route's `retry_policy`, else the virtual host's;
//!   `retry_on` conditions the mesh does not implement are ignored (as
//!   Envoy ignores unknown ones); `num_retries` defaults to 1; a
//!   `retry_back_off` needs a `base_interval` above zero and a
//!   `max_interval` (default 10 × base) not below it. No policy on either
//!   leaves the cluster's, which for xDS clusters is no retries, as Envoy.
//! - Mirrors: the route's, else the virtual host's, else the route
//!   configuration's; a `runtime_fraction` takes its `default_value`.
//! - Header changes of the route, virtual host and route configuration are
//!   applied in that order (so the outer level's `set` wins), reversed with
//!   `most_specific_header_mutations_wins`; removals come first, then sets,
//!   then appends. Empty values are skipped unless `keep_empty_value`.
//! - Faults (A33): an `HTTPFault` in `typed_per_filter_config` (bare or in
//!   a `FilterConfig`) of the route, else the virtual host, else the route
//!   configuration; a `FilterConfig` under `envoy.filters.http.fault` with
//!   `disabled` turns faults off for the route. Whether the listener's
//!   filter chain has a fault filter at all is for the listener to say.

mod action;
pub(super) mod fault;
mod headers;
mod matcher;
mod respond;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use envoy_types::pb::envoy::config::route::v3 as rds;
use mesh_core::policy::RetryPolicy;
use mesh_core::route::{HeaderMutation, Mirror, Route, RouteError, RouteTable, VirtualHost};
use prost::Name;

use super::error::{At, FieldError, Ignored, ResourceError};

/// A `RouteConfiguration`, converted: its name, its checked table, and the
/// parts of it that were left out.
#[derive(Clone, Debug, PartialEq)]
pub struct XdsRouteConfig {
    /// The resource's name, as listeners refer to it.
    pub name: String,
    /// The routes.
    pub table: RouteTable,
    /// Routes and parts of routes left out, with why.
    pub ignored: Vec<Ignored>,
}

impl TryFrom<&rds::RouteConfiguration> for XdsRouteConfig {
    type Error = ResourceError;

    fn try_from(rc: &rds::RouteConfiguration) -> Result<Self, ResourceError> {
        let mut ignored = Vec::new();
        let table = convert(rc, &mut ignored)
            .map_err(|e| e.in_resource(rds::RouteConfiguration::NAME, &rc.name))?;
        Ok(Self {
            name: rc.name.clone(),
            table,
            ignored,
        })
    }
}

/// Why a part was not converted: a NACK, or a route that is left out.
enum Reject {
    Nack(FieldError),
    Skip(Ignored),
}

impl From<FieldError> for Reject {
    fn from(e: FieldError) -> Self {
        Reject::Nack(e)
    }
}

fn skip(at: &At<'_>, reason: impl fmt::Display) -> Reject {
    Reject::Skip(at.ignored(reason))
}

/// The first reason to leave a route out, kept while the rest of the route
/// is still checked: a malformed field is a NACK even in a route that would
/// be left out.
#[derive(Default)]
struct Skips(Option<Ignored>);

impl Skips {
    /// The value, or `None` after noting why the route is left out.
    fn take<T>(&mut self, r: Result<T, Reject>) -> Result<Option<T>, FieldError> {
        match r {
            Ok(t) => Ok(Some(t)),
            Err(Reject::Nack(e)) => Err(e),
            Err(Reject::Skip(why)) => {
                self.0.get_or_insert(why);
                Ok(None)
            }
        }
    }

    /// Notes that the route is left out.
    fn skip(&mut self, at: &At<'_>, reason: impl fmt::Display) {
        self.0.get_or_insert_with(|| at.ignored(reason));
    }

    /// `t`, unless a reason to leave the route out was noted.
    fn finish<T>(self, t: T) -> Result<T, Reject> {
        match self.0 {
            Some(why) => Err(Reject::Skip(why)),
            None => Ok(t),
        }
    }

    /// The noted reason to leave out the route at `at`.
    fn reject(self, at: &At<'_>) -> Reject {
        Reject::Skip(self.0.unwrap_or_else(|| at.ignored("left out")))
    }
}

/// What routes inherit from their virtual host and route configuration,
/// converted once.
struct Scope<'a> {
    rc: &'a rds::RouteConfiguration,
    vh: &'a rds::VirtualHost,
    vh_at: &'a At<'a>,
    retry: Option<Arc<RetryPolicy>>,
    mirrors: &'a [Mirror],
    request_headers: [&'a HeaderMutation; 2],
    response_headers: [&'a HeaderMutation; 2],
}

fn convert(
    rc: &rds::RouteConfiguration,
    ignored: &mut Vec<Ignored>,
) -> Result<RouteTable, FieldError> {
    let mirrors_at = At::ROOT.field("request_mirror_policies");
    let rc_mirrors = action::mirrors(&rc.request_mirror_policies, &mirrors_at, ignored)?;
    let rc_headers = headers::level(
        &rc.request_headers_to_add,
        &rc.request_headers_to_remove,
        &rc.response_headers_to_add,
        &rc.response_headers_to_remove,
        &At::ROOT,
    )?;
    let vhs_at = At::ROOT.field("virtual_hosts");
    let mut virtual_hosts = Vec::with_capacity(rc.virtual_hosts.len());
    for (i, vh) in rc.virtual_hosts.iter().enumerate() {
        let at = vhs_at.index(i);
        if vh.domains.is_empty() {
            return Err(at.field("domains").error("a virtual host needs a domain"));
        }
        if vh.matcher.is_some() {
            let reason = "matcher trees are not supported; routes must be listed in routes";
            return Err(at.field("matcher").error(reason));
        }
        let retry = match &vh.retry_policy {
            Some(p) => Some(Arc::new(action::retry(p, &at.field("retry_policy"))?)),
            None => None,
        };
        let mirrors_at = at.field("request_mirror_policies");
        let vh_mirrors = action::mirrors(&vh.request_mirror_policies, &mirrors_at, ignored)?;
        let vh_headers = headers::level(
            &vh.request_headers_to_add,
            &vh.request_headers_to_remove,
            &vh.response_headers_to_add,
            &vh.response_headers_to_remove,
            &at,
        )?;
        let scope = Scope {
            rc,
            vh,
            vh_at: &at,
            retry,
            mirrors: if vh_mirrors.is_empty() {
                &rc_mirrors
            } else {
                &vh_mirrors
            },
            request_headers: [&vh_headers.0, &rc_headers.0],
            response_headers: [&vh_headers.1, &rc_headers.1],
        };
        let routes_at = at.field("routes");
        let mut routes = Vec::with_capacity(vh.routes.len());
        for (j, r) in vh.routes.iter().enumerate() {
            match route(&scope, r, &routes_at.index(j), ignored) {
                Ok(route) => routes.push(route),
                Err(Reject::Skip(why)) => ignored.push(why),
                Err(Reject::Nack(e)) => return Err(e),
            }
        }
        virtual_hosts.push(VirtualHost::new(&*vh.name, &vh.domains, routes));
    }
    RouteTable::new(virtual_hosts).map_err(|e| table_error(rc, e))
}

fn route(
    scope: &Scope<'_>,
    r: &rds::Route,
    at: &At<'_>,
    ignored: &mut Vec<Ignored>,
) -> Result<Route, Reject> {
    let mut skips = Skips::default();
    let match_at = at.field("match");
    let Some(m) = &r.r#match else {
        return Err(match_at.error("a route needs a match").into());
    };
    let matched = skips.take(matcher::route_match(m, &match_at))?;
    let separated_prefix = matched.as_ref().and_then(|m| m.separated_prefix.as_ref());
    let action = skips.take(action::action(scope, r, separated_prefix, at, ignored))?;
    let (request_headers, response_headers) = headers::route(scope, r, at)?;
    let fault = fault::fault([
        (&r.typed_per_filter_config, at),
        (&scope.vh.typed_per_filter_config, scope.vh_at),
        (&scope.rc.typed_per_filter_config, &At::ROOT),
    ])?;
    let (Some(matched), Some(action)) = (matched, action) else {
        return Err(skips.reject(at));
    };
    skips.finish(Route {
        name: (!r.name.is_empty()).then(|| r.name.clone()),
        matches: matched.matches,
        action,
        request_headers,
        response_headers,
        fault,
        rate_limit: None,
    })
}

/// Names the domain a table error is about (the table checks domains).
fn table_error(rc: &rds::RouteConfiguration, e: RouteError) -> FieldError {
    let domains = || {
        rc.virtual_hosts.iter().enumerate().flat_map(|(i, vh)| {
            let name = vh.name.as_str();
            vh.domains
                .iter()
                .enumerate()
                .map(move |(j, d)| (i, j, name, d.to_ascii_lowercase()))
        })
    };
    let position = match &e {
        RouteError::InvalidDomain {
            domain,
            virtual_host,
            ..
        } => domains()
            .find(|(_, _, vh, d)| vh == virtual_host && d == domain)
            .map(|(i, j, ..)| (i, j)),
        RouteError::DuplicateDomain { .. } => {
            let mut seen = HashSet::new();
            domains()
                .find(|(.., d)| !seen.insert(d.clone()))
                .map(|(i, j, ..)| (i, j))
        }
        _ => None,
    };
    let vhs = At::ROOT.field("virtual_hosts");
    match position {
        Some((i, j)) => {
            let vh = vhs.index(i);
            let domains = vh.field("domains");
            domains.index(j).error(e)
        }
        None => vhs.error(e),
    }
}
