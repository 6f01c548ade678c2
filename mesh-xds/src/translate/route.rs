//! Route tables as RDS: [`VirtualHost`]s and their [`Route`]s into a
//! `RouteConfiguration` that [`XdsRouteConfig`](crate::resource::XdsRouteConfig)
//! reads back as the same table.
//!
//! Everything is written on the route itself (nothing is hoisted to the
//! virtual host or the route configuration), so each route reads back
//! alone. A fault policy goes in the route's `typed_per_filter_config`
//! under `envoy.filters.http.fault`, as an `HTTPFault`. The route
//! configuration's `max_direct_response_body_size_bytes` is raised when a
//! direct response's body is larger than Envoy's 4 KiB default.
//!
//! Refused, with a [`TranslateError`] naming the virtual host, the route
//! and the field: a virtual host without domains; a path matched by
//! suffix or substring; a `host` header matcher or header change; a
//! regex not built by [`StringMatch::regex`](mesh_core::route::StringMatch::regex);
//! an empty prefix rewrite, host rewrite, route name or redirect host; a
//! regex rewrite whose substitution Envoy cannot spell; retry budgets and
//! replay bounds other than the defaults; a zero per-try timeout; a
//! redirect status other than 301, 302, 303, 307 or 308 or a redirect
//! scheme with capitals; statuses out of range; local rate limits.

mod action;
mod fault;
mod headers;
mod matcher;

pub(super) use matcher::string_matcher;

use std::collections::HashMap;

use envoy_types::pb::envoy::config::route::v3 as rds;
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};
use mesh_core::route::{Route, RouteAction, VirtualHost};
use prost::Name;

use super::error::{Refused, TranslateError};
use super::{FAULT_FILTER, Peer, any};

/// The type name a lone virtual host's refusals carry.
const VIRTUAL_HOST: &str = "VirtualHost";

/// The `RouteConfiguration` named `name` holding `virtual_hosts`.
///
/// ```
/// use mesh_core::route::{Forward, Route, VirtualHost};
/// use mesh_xds::resource::XdsRouteConfig;
/// use mesh_xds::translate;
///
/// let vhs = vec![VirtualHost::new(
///     "reviews",
///     ["reviews", "reviews:9080"],
///     vec![Route::forward(Forward::to("outbound|9080|v1|reviews.default.svc.cluster.local"))],
/// )];
/// let rc = translate::route_configuration("outbound|9080||reviews.default.svc.cluster.local", &vhs)?;
/// let back = XdsRouteConfig::try_from(&rc)?;
/// assert_eq!(back.table.virtual_hosts(), &vhs[..]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn route_configuration(
    name: &str,
    virtual_hosts: &[VirtualHost],
) -> Result<rds::RouteConfiguration, TranslateError> {
    route_configuration_for(name, virtual_hosts, Peer::Grpc)
}

/// The `RouteConfiguration` named `name` holding `virtual_hosts`, as
/// [`route_configuration`] writes it, for `peer`.
pub fn route_configuration_for(
    name: &str,
    virtual_hosts: &[VirtualHost],
    peer: Peer,
) -> Result<rds::RouteConfiguration, TranslateError> {
    let type_name = rds::RouteConfiguration::NAME;
    let mut largest_body = 0;
    let mut out = Vec::with_capacity(virtual_hosts.len());
    for vh in virtual_hosts {
        out.push(virtual_host(vh).map_err(|e| TranslateError {
            type_name,
            resource: name.to_owned(),
            part: match e.part.as_str() {
                "" => format!("virtual host {:?}", vh.name),
                part => format!("virtual host {:?}, {part}", vh.name),
            },
            ..e
        })?);
        for r in &vh.routes {
            if let RouteAction::Direct(d) = &r.action {
                largest_body = largest_body.max(d.body.as_ref().map_or(0, |b| b.len()));
            }
        }
    }
    let limit = match u32::try_from(largest_body) {
        Ok(n) if largest_body > action::DIRECT_BODY_LIMIT => Some(UInt32Value { value: n }),
        Ok(_) => None,
        Err(_) => {
            let refused = Refused::new("action.direct.body", "larger than 4 GiB");
            return Err(refused.at(type_name, name, ""));
        }
    };
    Ok(rds::RouteConfiguration {
        name: name.to_owned(),
        virtual_hosts: out,
        max_direct_response_body_size_bytes: limit,
        validate_clusters: (peer == Peer::Envoy).then_some(BoolValue { value: false }),
        ..Default::default()
    })
}

/// One virtual host, as RDS writes it inside a route configuration; a
/// refusal names the virtual host as its resource and the route as its
/// part.
pub fn virtual_host(vh: &VirtualHost) -> Result<rds::VirtualHost, TranslateError> {
    let refuse = |e: Refused, part: String| e.at(VIRTUAL_HOST, &vh.name, part);
    if vh.domains.is_empty() {
        let e = Refused::new("domains", "a virtual host needs a domain");
        return Err(refuse(e, String::new()));
    }
    let routes = vh
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let part = match &r.name {
                Some(n) => format!("route #{i} ({n:?})"),
                None => format!("route #{i}"),
            };
            route(r).map_err(|e| refuse(e, part))
        })
        .collect::<Result<_, _>>()?;
    Ok(rds::VirtualHost {
        name: vh.name.clone(),
        domains: vh.domains.clone(),
        routes,
        ..Default::default()
    })
}

/// One route.
pub(super) fn route(r: &Route) -> Result<rds::Route, Refused> {
    if r.name.as_deref() == Some("") {
        return Err(Refused::new("name", "an empty name reads back as none"));
    }
    if r.rate_limit.is_some() {
        return Err(Refused::new(
            "rate_limit",
            "local rate limits are not expressed in xDS routes",
        ));
    }
    let (request_headers_to_add, request_headers_to_remove) =
        headers::mutation(&r.request_headers).map_err(|e| e.within("request_headers"))?;
    let (response_headers_to_add, response_headers_to_remove) =
        headers::mutation(&r.response_headers).map_err(|e| e.within("response_headers"))?;
    let mut typed_per_filter_config = HashMap::new();
    if let Some(f) = &r.fault {
        let fault = fault::http_fault(f).map_err(|e| e.within("fault"))?;
        typed_per_filter_config.insert(FAULT_FILTER.to_owned(), any(&fault));
    }
    Ok(rds::Route {
        name: r.name.clone().unwrap_or_default(),
        r#match: Some(matcher::route_match(&r.matches).map_err(|e| e.within("matches"))?),
        action: Some(action::action(&r.action)?),
        request_headers_to_add,
        request_headers_to_remove,
        response_headers_to_add,
        response_headers_to_remove,
        typed_per_filter_config,
        ..Default::default()
    })
}
