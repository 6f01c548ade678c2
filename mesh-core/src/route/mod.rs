//! Route tables with Envoy's RDS semantics, the model behind Istio's
//! VirtualService: a [`RouteTable`] holds [`VirtualHost`]s chosen by domain
//! (exact, `*.suffix`, `prefix.*`, `*`; the most specific wins), each with
//! ordered [`Route`]s of which the first that matches wins.
//!
//! A table is checked whole when it is built ([`RouteTable::new`]): bad
//! domains, regular expressions, percentages, empty splits and routes that
//! name no cluster are errors then, never at request time.
//!
//! ```
//! use http::Request;
//! use mesh_core::Authority;
//! use mesh_core::route::{Forward, Route, RouteAction, RouteTable, VirtualHost};
//!
//! let table = RouteTable::new(vec![VirtualHost::new(
//!     "reviews",
//!     ["reviews:9080"],
//!     vec![Route::forward(Forward::split([
//!         ("reviews-v1".into(), 80),
//!         ("reviews-v3".into(), 20),
//!     ]))],
//! )])
//! .unwrap();
//! let req = Request::get("http://reviews:9080/reviews/0").body(()).unwrap();
//! let target: Authority = "reviews:9080".parse().unwrap();
//! let id = table.find(&target, &req).expect("a route");
//! assert!(matches!(table.route(id).action, RouteAction::Forward(_)));
//! ```

mod action;
mod domain;
mod fault;
mod matcher;
mod percent;

use std::sync::Arc;

pub use action::{
    ClusterName, Destination, DirectResponse, Forward, HashKey, HashPolicy, HeaderMutation, Mirror,
    PathRewrite, Redirect, RouteAction, WeightedCluster,
};
pub use fault::{AbortSource, DelaySource, FaultAbort, FaultDelay, FaultPolicy};
pub use matcher::{HeaderMatch, HeaderMatcher, PathMatch, QueryMatcher, StringMatch, query_param};
pub use percent::Percent;

use crate::Authority;
use crate::policy::LocalRateLimit;
use domain::DomainIndex;

/// A route configuration is wrong; the message names the part at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// A regular expression does not compile.
    #[error("invalid regex {pattern:?}: {reason}")]
    InvalidRegex {
        /// The pattern as written.
        pattern: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A percentage outside 0–100.
    #[error("invalid percentage {0}: must be between 0 and 100")]
    InvalidPercent(f64),
    /// A malformed domain.
    #[error("invalid domain {domain:?} in virtual host {virtual_host:?}: {reason}")]
    InvalidDomain {
        /// The domain.
        domain: String,
        /// Its virtual host.
        virtual_host: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two virtual hosts claim one domain.
    #[error("domain {domain:?} is in both virtual hosts {first:?} and {second:?}")]
    DuplicateDomain {
        /// The domain.
        domain: String,
        /// The first virtual host naming it.
        first: String,
        /// The second.
        second: String,
    },
    /// A route that cannot work.
    #[error("route {route} of virtual host {virtual_host:?}: {reason}")]
    InvalidRoute {
        /// The virtual host.
        virtual_host: String,
        /// The route's name, or its position (`#0`).
        route: String,
        /// What is wrong.
        reason: String,
    },
}

/// The conditions a request must meet for a route to apply; all must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteMatch {
    /// The path, without the query. Default: prefix `/`.
    pub path: PathMatch,
    /// The method (Istio's `method`).
    pub method: Option<StringMatch>,
    /// The request's authority as sent (`:authority`, or `Host`), e.g.
    /// `reviews` or `reviews:9080` (Istio's `authority`).
    pub authority: Option<StringMatch>,
    /// Headers (Istio's `headers` and, inverted, `withoutHeaders`).
    pub headers: Vec<HeaderMatcher>,
    /// Query parameters (Istio's `queryParams`).
    pub query: Vec<QueryMatcher>,
}

impl RouteMatch {
    /// Whether `req`, sent to `authority`, meets every condition.
    pub fn matches<B>(&self, authority: &Authority, req: &http::Request<B>) -> bool {
        let uri = req.uri();
        self.path.kind.matches(uri.path(), self.path.ignore_case)
            && self
                .method
                .as_ref()
                .is_none_or(|m| m.matches(req.method().as_str(), false))
            && self
                .authority
                .as_ref()
                .is_none_or(|m| match sent_authority(req) {
                    Some(sent) => m.matches(sent, true),
                    None => m.matches(&authority.to_string(), true),
                })
            && self
                .headers
                .iter()
                .all(|h| header_value(req.headers(), &h.name, |v| h.matches(v)))
            && self.query.iter().all(|q| q.matches(uri.query()))
    }
}

/// The authority the request was sent with: its URI's, else its `Host`.
fn sent_authority<B>(req: &http::Request<B>) -> Option<&str> {
    req.uri().authority().map(|a| a.as_str()).or_else(|| {
        req.headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
    })
}

/// Calls `f` with the header's value (several joined by `,`, as Envoy), or
/// `None` when absent or not text.
fn header_value<R>(
    headers: &http::HeaderMap,
    name: &http::HeaderName,
    f: impl FnOnce(Option<&str>) -> R,
) -> R {
    let mut all = headers.get_all(name).iter();
    match (all.next(), all.next()) {
        (None, _) => f(None),
        (Some(one), None) => f(one.to_str().ok()),
        (Some(first), Some(second)) => {
            let joined = [first, second]
                .into_iter()
                .chain(all)
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join(",");
            f(Some(&joined))
        }
    }
}

/// One route: a match and what to do with matching requests.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// A name for logs and errors (Istio's route `name`).
    pub name: Option<String>,
    /// The conditions.
    pub matches: RouteMatch,
    /// What happens.
    pub action: RouteAction,
    /// Changes to the request's headers before it is forwarded.
    pub request_headers: HeaderMutation,
    /// Changes to the response's headers.
    pub response_headers: HeaderMutation,
    /// Fault injection.
    pub fault: Option<FaultPolicy>,
    /// Local rate limit of the route.
    pub rate_limit: Option<LocalRateLimit>,
}

impl Route {
    /// A route matching every request and taking `action`.
    pub fn new(action: RouteAction) -> Self {
        Self {
            name: None,
            matches: RouteMatch::default(),
            action,
            request_headers: HeaderMutation::default(),
            response_headers: HeaderMutation::default(),
            fault: None,
            rate_limit: None,
        }
    }

    /// A route matching every request and forwarding it.
    pub fn forward(forward: Forward) -> Self {
        Self::new(RouteAction::Forward(forward))
    }

    /// This route, matching only requests that meet `matches`.
    pub fn when(mut self, matches: RouteMatch) -> Self {
        self.matches = matches;
        self
    }

    /// The forwarding action, if the route forwards.
    pub fn forwarding(&self) -> Option<&Forward> {
        match &self.action {
            RouteAction::Forward(f) => Some(f),
            _ => None,
        }
    }

    fn check(&self) -> Result<(), String> {
        if let Some(limit) = &self.rate_limit {
            limit.validate().map_err(|e| e.to_string())?;
        }
        let Some(forward) = self.forwarding() else {
            return Ok(());
        };
        match &forward.destination {
            Destination::Cluster(c) if c.as_str().is_empty() => {
                return Err("names no cluster".into());
            }
            Destination::Weighted(w) if w.is_empty() => {
                return Err("splits over no clusters".into());
            }
            Destination::Weighted(w) if w.iter().all(|c| c.weight == 0) => {
                return Err("weights sum to zero".into());
            }
            Destination::Weighted(w) => {
                if w.iter().any(|c| c.name.as_str().is_empty()) {
                    return Err("a weighted cluster has no name".into());
                }
                let total: u64 = w.iter().map(|c| u64::from(c.weight)).sum();
                if total > u64::from(u32::MAX) {
                    return Err(format!("weights sum to {total}, more than 2^32 - 1"));
                }
            }
            Destination::Cluster(_) => {}
        }
        if forward
            .mirrors
            .iter()
            .any(|m| m.cluster.as_str().is_empty())
        {
            return Err("a mirror names no cluster".into());
        }
        Ok(())
    }
}

/// Routes for a set of domains (Envoy's `VirtualHost`; what one Istio
/// VirtualService `hosts` entry becomes).
#[derive(Clone, Debug, PartialEq)]
pub struct VirtualHost {
    /// A name for logs and errors.
    pub name: String,
    /// The domains it serves: `reviews`, `reviews:9080`, `*.example.com`,
    /// `api.*` or `*`.
    pub domains: Vec<String>,
    /// The routes, in order: the first that matches wins.
    pub routes: Vec<Route>,
}

impl VirtualHost {
    /// A virtual host.
    pub fn new<D: Into<String>>(
        name: impl Into<String>,
        domains: impl IntoIterator<Item = D>,
        routes: Vec<Route>,
    ) -> Self {
        Self {
            name: name.into(),
            domains: domains.into_iter().map(Into::into).collect(),
            routes,
        }
    }
}

/// Which route of a table matched: stable for the table's life, so layers
/// may key state (a rate limiter, say) on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteId {
    /// Index of the virtual host.
    pub virtual_host: u32,
    /// Index of the route in it.
    pub route: u32,
}

/// What [`RouteTable::lookup`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The route that matched.
    Route(RouteId),
    /// A virtual host serves the authority, but none of its routes matched.
    NoRoute,
    /// No virtual host serves the authority.
    NoVirtualHost,
}

/// A checked, immutable route table; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    inner: Arc<Inner>,
}

/// Tables are equal when their virtual hosts are (the index follows).
impl PartialEq for RouteTable {
    fn eq(&self, other: &Self) -> bool {
        Self::ptr_eq(self, other) || self.inner.virtual_hosts == other.inner.virtual_hosts
    }
}

#[derive(Debug, Default)]
struct Inner {
    virtual_hosts: Vec<VirtualHost>,
    domains: DomainIndex,
}

impl RouteTable {
    /// Whether `a` and `b` are one table (clones of one another), which
    /// tells unchanged parts of successive configurations apart without
    /// comparing them.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.inner, &b.inner)
    }

    /// Checks and indexes `virtual_hosts`.
    pub fn new(virtual_hosts: Vec<VirtualHost>) -> Result<Self, RouteError> {
        if virtual_hosts.len() > u32::MAX as usize {
            return Err(RouteError::InvalidRoute {
                virtual_host: String::new(),
                route: String::new(),
                reason: "too many virtual hosts".into(),
            });
        }
        for vh in &virtual_hosts {
            for (i, route) in vh.routes.iter().enumerate() {
                route.check().map_err(|reason| RouteError::InvalidRoute {
                    virtual_host: vh.name.clone(),
                    route: route
                        .name
                        .as_ref()
                        .map_or_else(|| format!("#{i}"), |n| format!("{n:?}")),
                    reason,
                })?;
            }
        }
        let domains = DomainIndex::new(
            virtual_hosts
                .iter()
                .map(|vh| (vh.name.as_str(), vh.domains.as_slice())),
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                virtual_hosts,
                domains,
            }),
        })
    }

    /// The virtual hosts, in order.
    pub fn virtual_hosts(&self) -> &[VirtualHost] {
        &self.inner.virtual_hosts
    }

    /// The route for `req` sent to `authority`: the virtual host by domain,
    /// then its first matching route. `None` is Envoy's "no route" (`NR`).
    pub fn find<B>(&self, authority: &Authority, req: &http::Request<B>) -> Option<RouteId> {
        match self.lookup(authority, req) {
            Lookup::Route(id) => Some(id),
            Lookup::NoRoute | Lookup::NoVirtualHost => None,
        }
    }

    /// As [`find`](Self::find), telling apart an authority no virtual host
    /// serves from a request no route of its virtual host matches.
    pub fn lookup<B>(&self, authority: &Authority, req: &http::Request<B>) -> Lookup {
        let Some(vh) = self.inner.domains.find(authority.host(), authority.port()) else {
            return Lookup::NoVirtualHost;
        };
        let routes = &self.inner.virtual_hosts[vh].routes;
        match routes
            .iter()
            .position(|r| r.matches.matches(authority, req))
        {
            Some(route) => Lookup::Route(RouteId {
                virtual_host: vh as u32,
                route: route as u32,
            }),
            None => Lookup::NoRoute,
        }
    }

    /// Whether a virtual host serves `authority`.
    pub fn serves(&self, authority: &Authority) -> bool {
        self.inner
            .domains
            .find(authority.host(), authority.port())
            .is_some()
    }

    /// The route `id` names. Panics if `id` is not from this table.
    pub fn route(&self, id: RouteId) -> &Route {
        &self.inner.virtual_hosts[id.virtual_host as usize].routes[id.route as usize]
    }

    /// The virtual host of `id`. Panics if `id` is not from this table.
    pub fn virtual_host(&self, id: RouteId) -> &VirtualHost {
        &self.inner.virtual_hosts[id.virtual_host as usize]
    }

    /// Every cluster any route sends or mirrors to.
    pub fn clusters(&self) -> impl Iterator<Item = &ClusterName> {
        self.inner
            .virtual_hosts
            .iter()
            .flat_map(|vh| &vh.routes)
            .filter_map(Route::forwarding)
            .flat_map(|f| {
                f.destination
                    .clusters()
                    .chain(f.mirrors.iter().map(|m| &m.cluster))
            })
    }
}

#[cfg(test)]
mod tests;
