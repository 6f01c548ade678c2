//! Client listeners as LDS, in istiod's proxyless shape: an API listener
//! named as the client asked, whose `HttpConnectionManager` fetches its
//! routes over RDS from the same ADS stream and runs the fault filter, then
//! the router.

use envoy_types::pb::envoy::config::listener::v3::{ApiListener, Listener};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager::RouteSpecifier,
    http_filter::ConfigType,
};

use super::{FAULT_FILTER, ads, any};

/// The router filter's name.
const ROUTER_FILTER: &str = "envoy.filters.http.router";

/// The listener `name` (the target as the client asked for it, such as
/// `reviews.default.svc.cluster.local:9080` or `reviews:9080`), routed by
/// the RDS resource `route_config_name`.
///
/// ```
/// use mesh_xds::resource::{FilterKind, RouteSource, XdsListener};
/// use mesh_xds::translate;
///
/// let l = translate::api_listener("reviews:9080", "outbound|9080||reviews.default.svc.cluster.local");
/// let back = XdsListener::try_from(&l)?;
/// assert!(matches!(back.routes, RouteSource::Rds { .. }));
/// assert_eq!(back.http_filters.last().map(|f| &f.kind), Some(&FilterKind::Router));
/// # Ok::<(), mesh_xds::ResourceError>(())
/// ```
pub fn api_listener(name: &str, route_config_name: &str) -> Listener {
    let filter = |name: &str, config| HttpFilter {
        name: name.to_owned(),
        config_type: Some(ConfigType::TypedConfig(config)),
        ..Default::default()
    };
    let manager = HttpConnectionManager {
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: route_config_name.to_owned(),
        })),
        http_filters: vec![
            filter(FAULT_FILTER, any(&HttpFault::default())),
            filter(ROUTER_FILTER, any(&Router::default())),
        ],
        ..Default::default()
    };
    Listener {
        name: name.to_owned(),
        api_listener: Some(ApiListener {
            api_listener: Some(any(&manager)),
        }),
        ..Default::default()
    }
}
