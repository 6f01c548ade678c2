//! Routing, as Envoy's router with RDS and Istio's VirtualService: the
//! head of the routed request path. When a configuration is applied, each
//! forwarding route of each table gets a prebuilt stack ([`Routes`]) with
//! the route's policies bound in; each request is matched against the
//! current [`RouteTable`](mesh_core::RouteTable) — virtual host by the request's authority, then
//! the first route whose conditions hold — and then:
//!
//! - **forward**: the route's request header changes and path/host
//!   rewrites are applied, a consistent-hash key is computed from its hash
//!   policy (a [`RequestHash`](crate::balance::RequestHash) for the
//!   balancer), the authority it was sent to rides along as a
//!   [`RequestTarget`] when the route rewrites the host, and the request
//!   goes into the route's stack;
//! - **redirect** and **direct response** are answered here;
//! - **no route** is answered `404` with a body naming the authority and
//!   path (Envoy's `NR` response flag, logged at debug level). With a
//!   passthrough service ([`Route::passthrough`]), a request to an
//!   authority no virtual host serves goes there as it is (Istio's
//!   `outboundTrafficPolicy: ALLOW_ANY`).
//!
//! Response header changes of the route are applied to the response. A
//! request costs one load of the routes, one lookup and one call into a
//! prebuilt stack; per-request layers (metrics, tracing, an access log) go
//! around the head.

mod future;
mod hash;
mod rewrite;
mod routes;

use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use http::StatusCode;
use mesh_core::route::{Lookup, RouteAction};
use mesh_core::{Authority, MeshConfig};
use tower::Service;
use tower::util::Oneshot;

pub use future::ResponseFuture;
pub use hash::ClientAddr;
pub use routes::{RouteKey, Routes, SharedRoutes};

use crate::body::{flagged, local_response};
use crate::{BoxError, ResponseBody};

/// The mesh configuration in use, replaced whole by its owner and read by
/// requests without locks. Clones share it.
#[derive(Clone, Debug, Default)]
pub struct SharedConfig(Arc<ArcSwap<MeshConfig>>);

impl SharedConfig {
    /// Starts with `config`.
    pub fn new(config: MeshConfig) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(config)))
    }

    /// The configuration now.
    pub fn load(&self) -> Arc<MeshConfig> {
        self.0.load_full()
    }

    /// Whether the configuration now has a listener named `name`; reads
    /// it without taking a reference.
    pub fn has_listener(&self, name: &str) -> bool {
        self.0.load().listener(name).is_some()
    }

    /// Replaces the configuration.
    pub fn store(&self, config: Arc<MeshConfig>) {
        self.0.store(config)
    }
}

impl From<Arc<MeshConfig>> for SharedConfig {
    fn from(config: Arc<MeshConfig>) -> Self {
        Self(Arc::new(ArcSwap::new(config)))
    }
}

/// The authority a routed request was sent to, before its route rewrote
/// the host; a request extension. Its port picks the policies of a
/// cluster that takes the port of each request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestTarget(pub Authority);

/// The listener whose route table a request is matched against, when it
/// is not the one its authority names: a gateway's server (`http.8080`,
/// [`GatewayServer::routes`](mesh_core::gateway::GatewayServer::routes)),
/// which serves every host its VirtualServices bind; a request extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteListener(pub Arc<str>);

/// Puts a [`RouteListener`] in each request that has none yet (its
/// connection's TLS server gave it one,
/// [`MeshServerBuilder::tls_termination`](crate::server::MeshServerBuilder::tls_termination))
/// before `inner` routes it.
#[derive(Clone, Debug)]
pub struct ForListener<S> {
    inner: S,
    listener: RouteListener,
}

impl<S> ForListener<S> {
    /// Requests to `inner` matched against the table of `listener`.
    pub fn new(inner: S, listener: &str) -> Self {
        Self {
            inner,
            listener: RouteListener(Arc::from(listener)),
        }
    }
}

impl<S, B> Service<http::Request<B>> for ForListener<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> S::Future {
        let extensions = req.extensions_mut();
        if extensions.get::<RouteListener>().is_none() {
            extensions.insert(self.listener.clone());
        }
        self.inner.call(req)
    }
}

/// Routes each request into its route's prebuilt stack.
#[derive(Debug)]
pub struct Route<S> {
    routes: SharedRoutes<S>,
    passthrough: Option<S>,
}

impl<S: Clone> Clone for Route<S> {
    fn clone(&self) -> Self {
        Self {
            routes: self.routes.clone(),
            passthrough: self.passthrough.clone(),
        }
    }
}

impl<S> Route<S> {
    /// Routes by the routes `routes` holds now.
    pub fn new(routes: SharedRoutes<S>) -> Self {
        Self {
            routes,
            passthrough: None,
        }
    }

    /// Sends requests to authorities that no virtual host serves to
    /// `passthrough` as they are, instead of answering `404`.
    pub fn passthrough(mut self, passthrough: Option<S>) -> Self {
        self.passthrough = passthrough;
        self
    }

    /// The routes.
    pub fn routes(&self) -> &SharedRoutes<S> {
        &self.routes
    }
}

impl<S, B> Service<http::Request<B>> for Route<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResponseBody>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<ResponseBody>;
    type Error = BoxError;
    type Future = ResponseFuture<Oneshot<S, http::Request<B>>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Each request readies the stack it goes into.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        self.route(req)
    }
}

impl<S> Route<S> {
    /// Routes `req`, as [`call`](Service::call) does, from a shared
    /// reference.
    pub fn route<B>(
        &self,
        mut req: http::Request<B>,
    ) -> ResponseFuture<Oneshot<S, http::Request<B>>>
    where
        S: Service<http::Request<B>, Response = http::Response<ResponseBody>> + Clone,
        S::Error: Into<BoxError>,
    {
        use tower::ServiceExt;
        let target = match Authority::from_uri(req.uri()) {
            Ok(t) => t,
            Err(e) => return ResponseFuture::failed(e.into()),
        };
        let routes = self.routes.load();
        let (written, named) = match req.extensions().get::<RouteListener>() {
            Some(RouteListener(listener)) => (&**listener, true),
            None => (req.uri().authority().map_or("", |a| a.as_str()), false),
        };
        let (table, stacks) = routes.for_authority(written);
        let id = match table.lookup(&target, &req) {
            Lookup::Route(id) => id,
            // A named table (a gateway's) answers for its hosts only: a
            // host it does not serve goes nowhere, as Envoy's gateways
            // answer it, rather than wherever its name resolves.
            Lookup::NoVirtualHost if !named && let Some(passthrough) = &self.passthrough => {
                return ResponseFuture::forwarded(passthrough.clone().oneshot(req), None);
            }
            Lookup::NoRoute | Lookup::NoVirtualHost => {
                tracing::debug!(%target, path = req.uri().path(), response_flags = "NR", "no route");
                let body = format!("no route for {target}{}\n", req.uri().path());
                let res = flagged(local_response(StatusCode::NOT_FOUND, body), "NR");
                return ResponseFuture::local(res);
            }
        };
        let route = table.route(id);
        let forward = match &route.action {
            RouteAction::Forward(f) => f,
            RouteAction::Direct(d) => {
                let mut res = local_response(d.status, d.body.clone().unwrap_or_default());
                route.response_headers.apply(res.headers_mut());
                return ResponseFuture::local(res);
            }
            RouteAction::Redirect(r) => {
                let mut res = rewrite::redirect(r, &target, req.uri());
                route.response_headers.apply(res.headers_mut());
                return ResponseFuture::local(res);
            }
        };
        route.request_headers.apply(req.headers_mut());
        if let Err(e) = rewrite::apply(&mut req, route, forward) {
            return ResponseFuture::failed(e);
        }
        let hash = hash::compute(&forward.hash_policy, &req);
        let extensions = req.extensions_mut();
        if let Some(hash) = hash {
            extensions.insert(hash);
        }
        // The port the request was sent to is the URI's unless the route
        // rewrote the host.
        if forward.host_rewrite.is_some() {
            extensions.insert(RequestTarget(target));
        }
        let stack = stacks[id.virtual_host as usize][id.route as usize].clone();
        let stack = stack.expect("a forwarding route has a stack");
        // Kept for the response only when the route changes its headers.
        let response_headers =
            (!route.response_headers.is_empty()).then(|| route.response_headers.clone());
        ResponseFuture::forwarded(stack.oneshot(req), response_headers)
    }
}

#[cfg(test)]
mod tests;
