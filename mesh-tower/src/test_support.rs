//! Helpers for the route-driven layers' unit tests.

use mesh_core::route::{Route, VirtualHost};
use mesh_core::{Cluster, MeshConfig, RouteTable};
use tower::Service;

use crate::route::{RouteDecision, SharedConfig};
use crate::split::SelectedCluster;
use crate::timeout::TimeoutOverride;
use crate::{BoxError, ResponseBody};

/// A configuration with `routes` for the domain `reviews`, and a cluster
/// for every name they use.
pub(crate) fn config(routes: Vec<Route>) -> SharedConfig {
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

/// Answers with what it was sent, as response headers: `x-uri`, `x-host`,
/// `x-route` (the route's name), `x-timeout`, `x-cluster`, `x-added`.
pub(crate) fn echo<B: Send + 'static>() -> impl Service<
    http::Request<B>,
    Response = http::Response<ResponseBody>,
    Error = BoxError,
    Future: Send,
> + Clone
+ Send {
    tower::service_fn(|req: http::Request<B>| async move {
        let mut res = http::Response::new(ResponseBody::empty());
        let h = res.headers_mut();
        h.insert("x-uri", req.uri().to_string().parse()?);
        if let Some(host) = req.headers().get("host") {
            h.insert("x-host", host.clone());
        }
        if let Some(d) = req.extensions().get::<RouteDecision>() {
            h.insert(
                "x-route",
                d.route().name.clone().unwrap_or_default().parse()?,
            );
        }
        if let Some(TimeoutOverride(t)) = req.extensions().get() {
            h.insert("x-timeout", format!("{t:?}").parse()?);
        }
        if let Some(SelectedCluster(c)) = req.extensions().get() {
            h.insert("x-cluster", c.as_str().parse()?);
        }
        if let Some(v) = req.headers().get("x-added") {
            h.insert("x-added", v.clone());
        }
        Ok::<_, BoxError>(res)
    })
}
