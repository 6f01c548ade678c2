//! LDS: a client `Listener` into an [`XdsListener`]: where its routes come
//! from, its HTTP filter chain and its stream time limit, as gRPC's
//! proxyless client reads them (gRFC A27, A39 filters, A31 timeouts).
//!
//! A proxyless client asks for the listener named by its target
//! (`reviews.default.svc.cluster.local:9080`); the listener's
//! `api_listener` holds an `HttpConnectionManager`, which names a route
//! configuration to fetch over RDS (or carries one inline) and lists the
//! HTTP filters every request goes through.
//!
//! ```
//! use envoy_types::pb::envoy::config::core::v3::{
//!     config_source::ConfigSourceSpecifier, AggregatedConfigSource, ConfigSource,
//! };
//! use envoy_types::pb::envoy::config::listener::v3::{ApiListener, Listener};
//! use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
//! use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
//!     http_connection_manager::RouteSpecifier, http_filter::ConfigType, HttpConnectionManager,
//!     HttpFilter, Rds,
//! };
//! use envoy_types::pb::google::protobuf::Any;
//! use mesh_xds::resource::{FilterKind, RouteSource, XdsListener};
//! use prost::{Message, Name};
//!
//! fn pack<T: Message + Name>(m: &T) -> Any {
//!     Any { type_url: T::type_url(), value: m.encode_to_vec() }
//! }
//!
//! let hcm = HttpConnectionManager {
//!     route_specifier: Some(RouteSpecifier::Rds(Rds {
//!         config_source: Some(ConfigSource {
//!             config_source_specifier: Some(ConfigSourceSpecifier::Ads(
//!                 AggregatedConfigSource {},
//!             )),
//!             ..Default::default()
//!         }),
//!         route_config_name: "9080".into(),
//!     })),
//!     http_filters: vec![HttpFilter {
//!         name: "envoy.filters.http.router".into(),
//!         config_type: Some(ConfigType::TypedConfig(pack(&Router::default()))),
//!         ..Default::default()
//!     }],
//!     ..Default::default()
//! };
//! let listener = Listener {
//!     name: "reviews.default.svc.cluster.local:9080".into(),
//!     api_listener: Some(ApiListener { api_listener: Some(pack(&hcm)) }),
//!     ..Default::default()
//! };
//! let converted = XdsListener::try_from(&listener)?;
//! assert!(matches!(
//!     &converted.routes,
//!     RouteSource::Rds { route_config_name } if route_config_name == "9080"
//! ));
//! assert!(matches!(converted.http_filters[0].kind, FilterKind::Router));
//! # Ok::<(), mesh_xds::resource::ResourceError>(())
//! ```
//!
//! # What is accepted, left out or rejected
//!
//! - A listener without an `api_listener` is a server listener (gRFC
//!   A36), read as [`XdsServer`] says (`server.rs`), unless its chains
//!   route by RDS: then it is a gateway's port, read as [`XdsGateway`]
//!   says (`gateway.rs`). An `api_listener`
//!   that is not an `HttpConnectionManager` is NACKed.
//! - Routes: `rds` whose `config_source` is `ads` or `self` (gRPC fetches
//!   routes only from the server that sent the listener; any other source
//!   is NACKed), or an inline `route_config`, converted as RDS converts it
//!   and NACKed as the listener, its fields under `…route_config`.
//!   `scoped_routes` is NACKed.
//! - Filters (A39) are known by their config's type, not their name:
//!   the router (`…router.v3.Router`), fault injection (`…fault.v3.HTTPFault`,
//!   the default fault for routes that set none, A33) and RBAC
//!   (`…rbac.v3.RBAC`, kept packed for authorization to read). Any other
//!   type is a NACK naming the filter, unless the filter `is_optional`,
//!   in which case it is left out and listed in [`XdsListener::ignored`].
//!   Every filter needs a non-empty name, unique in the chain, and a
//!   `typed_config` (config discovery is not supported); a filter
//!   `disabled` by default is NACKed (left out when optional), as the mesh
//!   cannot turn it on per route. The chain must end with the router, and
//!   only there.
//! - `common_http_protocol_options.max_stream_duration` (A31) limits every
//!   stream; zero or unset is no limit. Routes' own limits take precedence.
//! - Everything else in the manager (codec options, tracing, access logs,
//!   timeouts gRPC does not read) is ignored, as gRPC ignores it.

mod gateway;
mod server;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use envoy_types::pb::envoy::config::listener::v3 as lds;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3 as hcm;
use envoy_types::pb::google::protobuf::Any;
use hcm::http_connection_manager::RouteSpecifier;
use hcm::http_filter::ConfigType;
use mesh_core::route::FaultPolicy;
use prost::Name;

use super::error::{At, FieldError, Ignored, ResourceError};
use super::proto;
use super::route::{XdsRouteConfig, fault};

pub use gateway::{XdsGateway, XdsGatewayServer, XdsServerTls};
pub use server::{ServerTls, XdsServer};

/// A client `Listener`, converted.
#[derive(Clone, Debug, PartialEq)]
pub struct XdsListener {
    /// Its name: the target a client asked for, e.g.
    /// `reviews.default.svc.cluster.local:9080`.
    pub name: String,
    /// Where its routes come from.
    pub routes: RouteSource,
    /// The HTTP filters requests go through, in order; the last is always
    /// the [router](FilterKind::Router).
    pub http_filters: Vec<HttpFilter>,
    /// The longest a stream may last before it is cancelled (gRFC A31),
    /// unless its route says otherwise; `None` for no limit.
    pub max_stream_duration: Option<Duration>,
    /// Optional filters and parts of an inline route configuration left
    /// out, with why.
    pub ignored: Vec<Ignored>,
    /// For a server listener (one on an address, without `api_listener`):
    /// what it asks of the server there; its first chain's routes and
    /// filters are the ones above.
    pub server: Option<XdsServer>,
    /// For a gateway's port (a server listener routed by RDS): its
    /// servers; its first chain's routes and filters are the ones above.
    pub gateway: Option<XdsGateway>,
}

/// Where a listener's routes come from.
#[derive(Clone, Debug, PartialEq)]
pub enum RouteSource {
    /// A `RouteConfiguration` to fetch over RDS, from the same server.
    Rds {
        /// The name of the route configuration to subscribe to.
        route_config_name: String,
    },
    /// A route configuration carried in the listener itself.
    Inline(XdsRouteConfig),
}

/// One HTTP filter of a listener's chain.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpFilter {
    /// Its name in the chain, as per-route filter configs refer to it
    /// (`envoy.filters.http.fault`).
    pub name: String,
    /// What it does.
    pub kind: FilterKind,
}

/// What an HTTP filter does. Only filters the mesh acts on are listed: an
/// unknown filter is either left out (optional) or a NACK.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum FilterKind {
    /// Routes the request: the end of every chain.
    Router,
    /// Injects faults: its policy applies to routes that set none of their
    /// own (gRFC A33). An empty policy, as istiod writes it, injects none.
    Fault(FaultPolicy),
    /// Authorizes requests (gRFC A41); its configuration is kept as sent,
    /// for authorization to read.
    Rbac(PackedConfig),
}

/// A filter configuration kept as the control plane packed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedConfig {
    /// Its type URL, e.g.
    /// `type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC`.
    pub type_url: String,
    /// The encoded message.
    pub value: Bytes,
}

impl TryFrom<&lds::Listener> for XdsListener {
    type Error = ResourceError;

    fn try_from(l: &lds::Listener) -> Result<Self, ResourceError> {
        convert(l).map_err(|e| e.in_resource(lds::Listener::NAME, &l.name))
    }
}

fn convert(l: &lds::Listener) -> Result<XdsListener, FieldError> {
    if l.name.is_empty() {
        return Err(At::ROOT.field("name").error("must not be empty"));
    }
    let mut ignored = Vec::new();
    let Some(api) = &l.api_listener else {
        if gateway::is_gateway(l) {
            let (gateway, routes, http_filters) = gateway::convert(l, &mut ignored)?;
            return Ok(XdsListener {
                name: l.name.clone(),
                routes,
                http_filters,
                max_stream_duration: None,
                ignored,
                server: None,
                gateway: Some(gateway),
            });
        }
        let (server, routes, http_filters) = server::convert(l, &mut ignored)?;
        return Ok(XdsListener {
            name: l.name.clone(),
            routes,
            http_filters,
            max_stream_duration: None,
            ignored,
            server: Some(server),
            gateway: None,
        });
    };
    let api_at = At::ROOT.field("api_listener");
    let at = api_at.field("api_listener");
    let Some(any) = &api.api_listener else {
        return Err(at.error("missing: it must hold an HttpConnectionManager"));
    };
    let manager = unpack_manager(any, &at)?;
    let (routes, http_filters, max_stream_duration) = read_manager(&manager, &at, &mut ignored)?;
    Ok(XdsListener {
        name: l.name.clone(),
        routes,
        http_filters,
        max_stream_duration,
        ignored,
        server: None,
        gateway: None,
    })
}

/// Checks that a server chain's matched `transport` (at `at`, the chain)
/// agrees with its socket: `tls` for TLS, `raw_buffer` for plain text,
/// or none.
fn transport_agrees(transport: &str, tls: bool, at: &At<'_>) -> Result<(), FieldError> {
    match (transport, tls) {
        ("" | "tls", true) | ("" | "raw_buffer", false) => Ok(()),
        (other, _) => {
            let matched = at.field("filter_chain_match");
            Err(matched.field("transport_protocol").error(format_args!(
                "{other:?} does not match the chain's transport socket"
            )))
        }
    }
}

/// The one filter of the server chain `c` (at `at`), an
/// `HttpConnectionManager`; its errors are at `filters[0].typed_config`.
fn chain_manager(
    c: &lds::FilterChain,
    at: &At<'_>,
) -> Result<hcm::HttpConnectionManager, FieldError> {
    let [filter] = c.filters.as_slice() else {
        return Err(at
            .field("filters")
            .error("a chain must hold exactly one filter, an HttpConnectionManager"));
    };
    let filters_at = at.field("filters");
    let filter_at = filters_at.index(0);
    let Some(lds::filter::ConfigType::TypedConfig(any)) = &filter.config_type else {
        return Err(filter_at.error("no typed_config"));
    };
    unpack_manager(any, &filter_at.field("typed_config"))
}

/// The `HttpConnectionManager` packed in `any`.
fn unpack_manager(any: &Any, at: &At<'_>) -> Result<hcm::HttpConnectionManager, FieldError> {
    if !proto::is::<hcm::HttpConnectionManager>(any) {
        let reason = format_args!(
            "{:?} is not an HttpConnectionManager ({})",
            any.type_url,
            hcm::HttpConnectionManager::type_url()
        );
        return Err(at.error(reason));
    }
    proto::unpack(any, at)
}

/// What `manager` (at `at`) says: its routes, its filters and its stream
/// time limit.
fn read_manager(
    manager: &hcm::HttpConnectionManager,
    at: &At<'_>,
    ignored: &mut Vec<Ignored>,
) -> Result<(RouteSource, Vec<HttpFilter>, Option<Duration>), FieldError> {
    let routes = routes(manager, at, ignored)?;
    let http_filters = filters(&manager.http_filters, at, ignored)?;
    let options_at = at.field("common_http_protocol_options");
    let max_stream_duration = manager
        .common_http_protocol_options
        .as_ref()
        .map(|o| {
            proto::opt_duration(
                o.max_stream_duration.as_ref(),
                &options_at.field("max_stream_duration"),
            )
        })
        .transpose()?
        .flatten()
        .filter(|d| !d.is_zero());
    Ok((routes, http_filters, max_stream_duration))
}

fn routes(
    manager: &hcm::HttpConnectionManager,
    at: &At<'_>,
    ignored: &mut Vec<Ignored>,
) -> Result<RouteSource, FieldError> {
    match &manager.route_specifier {
        Some(RouteSpecifier::Rds(rds)) => {
            let at = at.field("rds");
            proto::same_server(rds.config_source.as_ref(), &at.field("config_source"))?;
            if rds.route_config_name.is_empty() {
                return Err(at.field("route_config_name").error("must not be empty"));
            }
            Ok(RouteSource::Rds {
                route_config_name: rds.route_config_name.clone(),
            })
        }
        Some(RouteSpecifier::RouteConfig(rc)) => {
            let at = at.field("route_config");
            let inline = XdsRouteConfig::try_from(rc).map_err(|e| FieldError {
                field: within(&at, &e.field),
                reason: e.reason,
            })?;
            ignored.extend(inline.ignored.iter().map(|i| Ignored {
                field: within(&at, &i.field),
                reason: i.reason.clone(),
            }));
            Ok(RouteSource::Inline(inline))
        }
        Some(RouteSpecifier::ScopedRoutes(_)) => Err(at
            .field("scoped_routes")
            .error("scoped routes are not supported")),
        None => Err(at.error("neither rds nor route_config: the listener has no routes")),
    }
}

/// The path `field`, relative to `at`, written from the listener.
fn within(at: &At<'_>, field: &str) -> String {
    match field {
        "" => at.to_string(),
        f if f.starts_with('[') => format!("{at}{f}"),
        f => format!("{at}.{f}"),
    }
}

fn filters(
    list: &[hcm::HttpFilter],
    manager_at: &At<'_>,
    ignored: &mut Vec<Ignored>,
) -> Result<Vec<HttpFilter>, FieldError> {
    let at = manager_at.field("http_filters");
    let mut names = HashSet::new();
    // Each kept filter with its index, for errors about the chain's order.
    let mut kept: Vec<(usize, HttpFilter)> = Vec::with_capacity(list.len());
    for (i, f) in list.iter().enumerate() {
        let at = at.index(i);
        if f.name.is_empty() {
            return Err(at.field("name").error("must not be empty"));
        }
        if !names.insert(f.name.as_str()) {
            let reason = format_args!("{:?} names two filters", f.name);
            return Err(at.field("name").error(reason));
        }
        match filter(f, &at)? {
            Ok(kind) => kept.push((
                i,
                HttpFilter {
                    name: f.name.clone(),
                    kind,
                },
            )),
            Err(why) => ignored.push(why),
        }
    }
    // Order is checked on the filters kept, as gRPC checks it: an optional
    // filter left out after the router does not matter.
    let last = kept.len().checked_sub(1);
    for (k, (i, f)) in kept.iter().enumerate() {
        let is_router = f.kind == FilterKind::Router;
        if is_router && Some(k) != last {
            return Err(at.index(*i).error(format_args!(
                "the router ({:?}) must be the last filter",
                f.name
            )));
        }
        if !is_router && Some(k) == last {
            return Err(at.index(*i).error(format_args!(
                "the last filter must be the router, not {:?}",
                f.name
            )));
        }
    }
    if kept.is_empty() {
        return Err(at.error("no router filter: a chain must end with the router"));
    }
    Ok(kept.into_iter().map(|(_, f)| f).collect())
}

/// The filter's kind; `Err` when it is optional and left out.
fn filter(f: &hcm::HttpFilter, at: &At<'_>) -> Result<Result<FilterKind, Ignored>, FieldError> {
    let unusable = |at: &At<'_>, reason: String| {
        if f.is_optional {
            Ok(Err(at.ignored(format_args!(
                "optional filter {:?} left out: {reason}",
                f.name
            ))))
        } else {
            Err(at.error(format_args!("filter {:?}: {reason}", f.name)))
        }
    };
    let any = match &f.config_type {
        Some(ConfigType::TypedConfig(any)) => any,
        Some(ConfigType::ConfigDiscovery(_)) => {
            let reason = "config discovery (ECDS) is not supported".to_owned();
            return unusable(&at.field("config_discovery"), reason);
        }
        None => return Err(at.error(format_args!("filter {:?} has no typed_config", f.name))),
    };
    let config_at = at.field("typed_config");
    let Some(kind) = kind(any, &config_at)? else {
        let reason = format!("unsupported filter type {:?}", any.type_url);
        return unusable(&config_at, reason);
    };
    if f.disabled {
        let at = at.field("disabled");
        if kind == FilterKind::Router {
            return Err(at.error("the router cannot be disabled"));
        }
        let reason = "filters disabled by default are not supported".to_owned();
        return unusable(&at, reason);
    }
    Ok(Ok(kind))
}

/// The kind of filter `any` configures, or `None` for one the mesh does
/// not know.
fn kind(any: &Any, at: &At<'_>) -> Result<Option<FilterKind>, FieldError> {
    if proto::is::<Router>(any) {
        // gRPC reads nothing of the router's config, but it must decode.
        proto::unpack::<Router>(any, at)?;
        return Ok(Some(FilterKind::Router));
    }
    if proto::is::<HttpFault>(any) {
        let config = proto::unpack::<HttpFault>(any, at)?;
        return fault::http_fault(&config, at).map(|f| Some(FilterKind::Fault(f)));
    }
    if proto::is::<Rbac>(any) {
        proto::unpack::<Rbac>(any, at)?;
        return Ok(Some(FilterKind::Rbac(PackedConfig {
            type_url: any.type_url.clone(),
            value: Bytes::copy_from_slice(&any.value),
        })));
    }
    Ok(None)
}
