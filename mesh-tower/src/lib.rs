//! Tower layers that give a hyper or tonic client the mesh: routing, traffic
//! splitting, fault injection, mirroring, rate limiting, discovery, load
//! balancing, retries, timeouts, outlier detection and circuit breaking,
//! assembled into [`MeshClient`]; and the inbound side, [`MeshServer`]:
//! mutual TLS as Istio's `PeerAuthentication` asks, and authorization in
//! front of any hyper or tonic service.
//!
//! Each lives in its own module and takes its policy as a value when it is
//! built. The middleware (rate limit, fault, mirror, timeout, retry,
//! circuit breaker, outlier detection) works alone inside a
//! [`tower::ServiceBuilder`]; the route head, a split over branches, the
//! balancer and the cluster layer are the points a stack is built
//! between:
//!
//! | module | does | matches |
//! |---|---|---|
//! | [`route`] | the head: route matching into each route's prebuilt stack, rewrites, header changes, redirects, direct responses, 404 on no route | Envoy RDS, Istio VirtualService `http` |
//! | [`rate_limit`] | local token buckets per route or cluster, total and per client identity | linkerd `HTTPLocalRateLimitPolicy`, Envoy `local_ratelimit` |
//! | [`fault`] | delays and aborts by percentage or request header | Envoy fault filter, Istio `fault`, gRFC A33 |
//! | [`split`] | weighted cluster choice | Envoy `weighted_clusters`, Istio `route[].weight` |
//! | [`mirror`] | fire-and-forget copies to a shadow cluster | Envoy `request_mirror_policies`, Istio `mirror` |
//! | [`cluster`] | the end of every path: each cluster's stack, built on first use and kept by cluster; a route's timeout and retries in place of the cluster's | Envoy cluster manager |
//! | [`timeout`] | whole-request timeout | Envoy route `timeout`, Istio `timeout` |
//! | [`retry`] | retries with `retry_on` conditions, per-try timeout, backoff, budget, body replay | Envoy `retry_policy`, Istio `retries`, linkerd budgets |
//! | [`circuit`] | max concurrent and max pending requests | Envoy `circuit_breakers`, Istio `connectionPool` |
//! | [`balance`] | peak-EWMA P2C, least request, round robin, random, ring hash, maglev, over a live endpoint set | linkerd, Envoy `lb_policy`, gRPC `ring_hash` |
//! | [`outlier`] | passive health checking, ejection | Envoy `outlier_detection`, Istio `outlierDetection` |
//! | [`endpoint`] | pooled HTTP/1.1 and h2c connections to one endpoint, pluggable connector | Envoy connection pools |
//! | [`server`] | the inbound side: HTTP/1.1 and HTTP/2 on one port, `STRICT`/`PERMISSIVE`/`DISABLE` mutual TLS, the caller's identity in each request, edge limits, graceful drain | Envoy inbound listener, Istio `PeerAuthentication`, gRPC xDS server |
//! | [`proxy`] | a sidecar's two sides for a plain-HTTP application: outbound requests made absolute for the client, inbound ones forwarded to the application's port; hop-by-hop headers, `Upgrade` and `CONNECT` tunnels, Envoy's local replies | Envoy's HTTP connection manager and router in a sidecar |
//! | [`access_log`] | one line per request, Envoy's fields, text or JSON, off the request path (bounded queue, drops counted) | Envoy's access log |
//! | [`admin`] | the workload's admin port: `/stats/prometheus`, `/stats`, `/certs`, `/ready`, `/healthz` | Envoy's admin (`:15000`) |
//! | [`authorize`] | path normalization, then the port's RBAC filters: `403 RBAC: access denied` | Envoy RBAC filter, Istio `AuthorizationPolicy`, gRFC A41 |
//! | [`metadata_exchange`] | each side tells the other who it is (workload, namespace, app, version, canonical service), for metrics labels | Istio's `istio.metadata_exchange`, `x-envoy-peer-metadata` |
//! | [`metrics`] | Istio's standard request metrics (`istio_requests_total`, durations, sizes) with its labels, cardinality bounded | Istio's `istio.stats` filter |
//! | [`trace`] | server and client spans, W3C/B3 context and `x-request-id` propagated, parent-based sampling (1 %) | Envoy's tracing, Istio's propagation |
//! | [`tls`] | the workload's identity (certificate, key, roots; read, checked, rotated) and the mesh's mutual TLS dialled with it, SPIFFE ids checked | Envoy/gRPC upstream TLS, Istio's agent's certificates |
//!
//! A request through [`MeshClient`] takes this path (the route and its
//! stack only when the client has a
//! [`MeshConfig`](mesh_core::MeshConfig); each route's stack is built when
//! the configuration is applied, each cluster's on its first request):
//!
//! ```text
//! MeshClient -> route -> [rate_limit -> fault -> mirror -> split]  (the route's stack)
//!            -> cluster -> timeout -> retry -> circuit -> balance -> outlier -> endpoint
//! ```
//!
//! ```no_run
//! # async fn run() -> Result<(), mesh_tower::BoxError> {
//! use http_body_util::{BodyExt, Empty};
//! use mesh_core::{Endpoint, EndpointSet, StaticResolve};
//! use mesh_tower::MeshClient;
//! use tower::ServiceExt;
//!
//! let resolve = StaticResolve::default();
//! resolve.set(
//!     &"reviews:9080".parse()?,
//!     EndpointSet::new([Endpoint::new("127.0.0.1:9080".parse()?)]),
//! );
//! let client = MeshClient::builder(resolve).build();
//! let req = http::Request::get("http://reviews:9080/reviews/0").body(Empty::<bytes::Bytes>::new())?;
//! let res = client.oneshot(req).await?;
//! let body = res.into_body().collect().await?.to_bytes();
//! # Ok(()) }
//! ```
//!
//! Features:
//!
//! - `dns`: [`MeshBuilder::dns`], DNS discovery for a [`Mesh`]; with
//!   `xds`, [`Mesh::from_env`].
//! - `istio`: [`istio::load`], Istio `VirtualService` and `DestinationRule`
//!   files as a client's configuration, and [`istio::inbound_policy`],
//!   `PeerAuthentication` and `AuthorizationPolicy` as a server's.
//! - `xds`: [`MeshClientBuilder::xds`], routes, clusters and endpoints from
//!   an xDS control plane; each authority requests are sent to is the
//!   target `xds:///AUTHORITY`. [`MeshServerBuilder::xds`], a server's
//!   mutual TLS mode and authorization from its listener (gRFC A36).

pub mod access_log;
pub mod admin;
pub mod authorize;
pub mod balance;
pub mod body;
pub mod circuit;
pub mod client;
pub mod cluster;
pub mod endpoint;
pub mod error;
pub mod fault;
#[cfg(feature = "istio")]
pub mod istio;
pub mod mesh;
pub mod metadata_exchange;
pub mod metrics;
pub mod mirror;
pub mod outlier;
pub mod proxy;
pub mod rate_limit;
pub mod retry;
pub mod route;
pub mod server;
pub mod split;
mod time;
pub mod timeout;
pub mod tls;
pub mod trace;

mod draw;
mod lossy;
mod new_service;
#[cfg(test)]
mod test_support;

pub use body::{RequestBody, ResponseBody, ResponseFlag};
pub use client::{MeshChannel, MeshClient, MeshClientBuilder};
pub use error::{BoxError, classify};
pub use mesh::{Mesh, MeshBuilder, MeshError, Reported};
pub use new_service::NewService;
pub use server::{MeshServer, MeshServerBuilder};
