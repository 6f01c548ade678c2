//! Helpers for the route-driven layers' unit tests.

use std::sync::Arc;
use std::time::Duration;

use mesh_core::route::{Route as RouteEntry, VirtualHost};
use mesh_core::{Cluster, MeshConfig, RouteTable};
use tower::Service;
use tower::util::BoxCloneSyncService;

use crate::route::{Route, Routes, SharedConfig, SharedRoutes};
use crate::{BoxError, ResponseBody};

/// A configuration with `routes` for the domain `reviews`, and a cluster
/// for every name they use.
pub(crate) fn config(routes: Vec<RouteEntry>) -> SharedConfig {
    let table = RouteTable::new(vec![VirtualHost::new("reviews", ["reviews"], routes)]).unwrap();
    SharedConfig::new(config_of(table))
}

/// `table` with a cluster for every name it uses.
pub(crate) fn config_of(table: RouteTable) -> MeshConfig {
    let clusters: Vec<Cluster> = table
        .clusters()
        .map(|c| Cluster {
            name: c.clone(),
            ..Cluster::service(&"reviews:9080".parse().unwrap())
        })
        .collect();
    MeshConfig::new(table, clusters).unwrap()
}

/// A stack of the tests' routes.
pub(crate) type Stack =
    BoxCloneSyncService<http::Request<()>, http::Response<ResponseBody>, BoxError>;

/// The route head over `config`, each route's stack an [`echo`] of it;
/// with `passthrough`, authorities no virtual host serves go to an echo
/// of no route.
pub(crate) fn routed(config: Arc<MeshConfig>, passthrough: bool) -> Route<Stack> {
    let routes = Routes::build(config, |_, route, forward| {
        BoxCloneSyncService::new(echo(route.name.clone(), forward.timeout))
    });
    let passthrough = passthrough.then(|| BoxCloneSyncService::new(echo(None, None)));
    Route::new(SharedRoutes::new(routes)).passthrough(passthrough)
}

/// Answers with what it was sent, as response headers: `x-uri`, `x-host`,
/// `x-added`, and what its route is: `x-route` (the route's name) and
/// `x-timeout` (its timeout, if it sets one).
pub(crate) fn echo<B: Send + 'static>(
    route: Option<String>,
    timeout: Option<Option<Duration>>,
) -> impl Service<
    http::Request<B>,
    Response = http::Response<ResponseBody>,
    Error = BoxError,
    Future: Send,
> + Clone
+ Send
+ Sync {
    tower::service_fn(move |req: http::Request<B>| {
        let route = route.clone();
        async move {
            let mut res = http::Response::new(ResponseBody::empty());
            let h = res.headers_mut();
            h.insert("x-uri", req.uri().to_string().parse()?);
            if let Some(host) = req.headers().get("host") {
                h.insert("x-host", host.clone());
            }
            if let Some(route) = route {
                h.insert("x-route", route.parse()?);
            }
            if let Some(t) = timeout {
                h.insert("x-timeout", format!("{t:?}").parse()?);
            }
            if let Some(v) = req.headers().get("x-added") {
                h.insert("x-added", v.clone());
            }
            Ok::<_, BoxError>(res)
        }
    })
}
