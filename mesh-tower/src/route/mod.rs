//! Routing, as Envoy's router with RDS and Istio's VirtualService: each
//! request is matched against the current [`RouteTable`] — virtual host by
//! the request's authority, then the first route whose conditions hold — and
//! then:
//!
//! - **forward**: the route's request header changes and path/host rewrites
//!   are applied, its timeout and retry policy ride along as
//!   [`TimeoutOverride`] and [`RetryOverride`], a consistent-hash key is
//!   computed from its hash policy, and the request goes on carrying a
//!   [`RouteDecision`] that later layers ([`split`](crate::split),
//!   [`fault`](crate::fault), [`mirror`](crate::mirror),
//!   [`rate_limit`](crate::rate_limit)) read;
//! - **redirect** and **direct response** are answered here;
//! - **no route** is answered `404` with a body naming the authority and
//!   path (Envoy's `NR` response flag, logged at debug level). With
//!   [`Route::passthrough`], a request to an authority no virtual host
//!   serves is instead forwarded as it is, without a [`RouteDecision`]
//!   (Istio's `outboundTrafficPolicy: ALLOW_ANY`).
//!
//! Response header changes of the route are applied to the response.
//!
//! The configuration is read lock-free from a [`SharedConfig`], which an
//! owner (code, a YAML file watcher, xDS) replaces whole.

mod future;
mod hash;
mod layer;
mod rewrite;

use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use http::StatusCode;
use mesh_core::route::{Lookup, Route as RouteEntry, RouteAction, RouteId};
use mesh_core::{Authority, MeshConfig, RouteTable};
use tower::Service;

pub use future::ResponseFuture;
pub use hash::ClientAddr;
pub use layer::RouteLayer;

use crate::body::local_response;
use crate::retry::RetryOverride;
use crate::timeout::TimeoutOverride;
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

    /// Replaces the configuration; requests already routed keep the one
    /// they were routed by.
    pub fn store(&self, config: MeshConfig) {
        self.0.store(Arc::new(config))
    }
}

/// The route a request matched, in the configuration it was matched by; a
/// request extension.
#[derive(Clone, Debug)]
pub struct RouteDecision {
    config: Arc<MeshConfig>,
    table: RouteTable,
    id: RouteId,
    target: Authority,
}

impl RouteDecision {
    /// The configuration the request was routed by.
    pub fn config(&self) -> &MeshConfig {
        &self.config
    }

    /// The route table the request was matched against: its listener's,
    /// or the configuration's [`routes`](MeshConfig::routes).
    pub fn table(&self) -> &RouteTable {
        &self.table
    }

    /// Which route matched.
    pub fn id(&self) -> RouteId {
        self.id
    }

    /// The route that matched.
    pub fn route(&self) -> &RouteEntry {
        self.table.route(self.id)
    }

    /// The authority the request was sent to, before any rewrite.
    pub fn target(&self) -> &Authority {
        &self.target
    }
}

/// Routes each request by the current configuration.
#[derive(Clone, Debug)]
pub struct Route<S> {
    inner: S,
    config: SharedConfig,
    passthrough: bool,
}

impl<S> Route<S> {
    /// Routes by `config` into `inner`.
    pub fn new(inner: S, config: SharedConfig) -> Self {
        Self {
            inner,
            config,
            passthrough: false,
        }
    }

    /// Forwards requests to authorities that no virtual host serves as they
    /// are, instead of answering `404`.
    pub fn passthrough(mut self, passthrough: bool) -> Self {
        self.passthrough = passthrough;
        self
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<http::Request<B>> for Route<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResponseBody>>,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<ResponseBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let target = match Authority::from_uri(req.uri()) {
            Ok(t) => t,
            Err(e) => return ResponseFuture::failed(e.into()),
        };
        let config = self.config.load();
        let written = req.uri().authority().map_or("", |a| a.as_str());
        let table = config.routes_for(written);
        let id = match table.lookup(&target, &req) {
            Lookup::Route(id) => id,
            Lookup::NoVirtualHost if self.passthrough => {
                return ResponseFuture::forwarded(self.inner.call(req), None);
            }
            Lookup::NoRoute | Lookup::NoVirtualHost => {
                tracing::debug!(%target, path = req.uri().path(), response_flags = "NR", "no route");
                let body = format!("no route for {target}{}\n", req.uri().path());
                return ResponseFuture::local(local_response(StatusCode::NOT_FOUND, body));
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
        if let Some(timeout) = forward.timeout {
            extensions.insert(TimeoutOverride(timeout));
        }
        if let Some(retry) = &forward.retry {
            extensions.insert(RetryOverride(retry.clone()));
        }
        if let Some(hash) = hash {
            extensions.insert(hash);
        }
        // Kept for the response only when the route changes its headers.
        let keep = !route.response_headers.is_empty();
        let table = table.clone();
        let decision = RouteDecision {
            config,
            table,
            id,
            target,
        };
        let for_response = keep.then(|| decision.clone());
        extensions.insert(decision);
        ResponseFuture::forwarded(self.inner.call(req), for_response)
    }
}

#[cfg(test)]
mod tests;
