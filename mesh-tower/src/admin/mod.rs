//! The admin endpoint of a workload, in the shape of Envoy's admin port
//! (`127.0.0.1:15000` by default; HTTP/1.1 and HTTP/2, plain text), so the
//! tools that read a sidecar's read it:
//!
//! - `GET /`: a page for people, refreshing itself: the clusters and
//!   endpoints with health and live request rates, the routes, rejected
//!   configuration and certificate expiry, self-contained (no other
//!   origin);
//! - `GET /stats/prometheus`: every metric of the [`Registry`] given
//!   (Istio's request metrics, the application's own), in the OpenMetrics
//!   text format Prometheus scrapes;
//! - `GET /stats`: the same samples one per line, `name{labels}: value`;
//! - `GET /clusters`: each client's clusters and endpoints with their
//!   health, weight, priority, locality, ejections and request counters,
//!   as Envoy's `CLUSTER::HOST::STAT::VALUE` lines (`?format=json`: its
//!   `ClusterStatuses` JSON);
//! - `GET /routes`: the route tables each client routes by, as the
//!   `RouteConfiguration`s Envoy would be sent for them (feature `xds`);
//! - `GET /config_dump` (feature `xds`): what the ADS client holds, as
//!   Envoy's `ConfigDump` in protobuf JSON, each resource with its
//!   version, when it was accepted, its client status (`ACKED`, `NACKED`,
//!   `REQUESTED`, `DOES_NOT_EXIST`) and what its NACK said; and the same
//!   over CSDS (gRFC A40) to gRPC calls on the same port;
//! - `GET /certs`: the workload certificate in use: its SPIFFE id, serial,
//!   validity and days until it expires, when it was last read and why the
//!   last read failed, if it did (never a key);
//! - `GET /ready`: `200 LIVE` once [`Admin::set_ready`] (or the
//!   application's check) says so, else
//!   `503 PRE_INITIALIZING`; `GET /healthz`: `200 OK`;
//! - `POST /drain_listeners` and `POST /quitquitquit`, given a
//!   [`Lifecycle`] ([`AdminBuilder::lifecycle`]): ask the process to stop
//!   taking connections, or to drain and exit, as Envoy's do;
//! - `POST /logging?level=LEVEL` (a `tracing` filter, `debug` or
//!   `mesh_tower=trace,info`): changes the log level at run time, through
//!   what the application gave [`AdminBuilder::logging`]; `GET` is refused, as
//!   Envoy refuses it, since it changes state.
//!
//! An application adds endpoints of its own ([`AdminBuilder::endpoint`]),
//! metrics read at each scrape ([`AdminBuilder::collector`]) and its own
//! readiness check ([`AdminBuilder::ready_when`]). Anything else is
//! `404`; a method other than `GET` (or `POST` for `/logging` and the
//! lifecycle) `405`.

mod certs;
mod clusters;
mod routes;
#[cfg(feature = "xds")]
mod xds;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use mesh_core::route::query_param;

use crate::client::ClientReader;
use crate::metrics::MeshState;
use crate::tls::IdentitySource;

/// Envoy's admin address, where a workload's admin listens by default.
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:15000";

/// The OpenMetrics text format's content type.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A workload's admin endpoint; clones share it.
#[derive(Clone, Debug)]
pub struct Admin {
    inner: Arc<Inner>,
}

/// What the process has been asked to do, in the order it goes through:
/// the value of the `watch` channel given to [`AdminBuilder::lifecycle`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lifecycle {
    /// Serving.
    #[default]
    Running,
    /// Stop taking connections; finish what is in flight
    /// (`POST /drain_listeners`).
    Draining,
    /// Drain, then exit (`POST /quitquitquit`, or a signal).
    Quitting,
}

impl Lifecycle {
    /// Moves `state` on to `next`; a process never goes back.
    pub fn advance(state: &tokio::sync::watch::Sender<Lifecycle>, next: Lifecycle) {
        state.send_if_modified(|now| {
            let moved = next > *now;
            if moved {
                *now = next;
            }
            moved
        });
    }
}

/// Sets the log level from a filter's text, or says why it cannot.
pub type SetLogLevel = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Answers a `GET` of an endpoint of the application's own, as JSON.
type JsonEndpoint = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// Says whether the workload is ready, read at each `GET /ready`.
type ReadyCheck = Arc<dyn Fn() -> bool + Send + Sync>;

struct Inner {
    registry: Arc<Registry>,
    identity: Option<IdentitySource>,
    ready: AtomicBool,
    logging: Option<SetLogLevel>,
    clients: Vec<(String, ClientReader)>,
    #[cfg(feature = "xds")]
    ads: Option<mesh_xds::ads::AdsHandle>,
    /// The application's own endpoints, by path.
    endpoints: Vec<(String, JsonEndpoint)>,
    ready_when: Option<ReadyCheck>,
    lifecycle: Option<tokio::sync::watch::Sender<Lifecycle>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let clients: Vec<&str> = self.clients.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Admin")
            .field("identity", &self.identity)
            .field("ready", &self.ready)
            .field("logging", &self.logging.is_some())
            .field("clients", &clients)
            .field(
                "endpoints",
                &self.endpoints.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// What an [`Admin`] serves: a registry, and the parts of the mesh it
/// reports, each also as metrics ([`MeshState`]).
#[derive(Debug)]
pub struct AdminBuilder {
    registry: Registry,
    state: MeshState,
    inner: Inner,
}

impl AdminBuilder {
    /// Serves `source`'s certificate at `/certs`, and its expiry as
    /// metrics.
    pub fn identity(mut self, source: IdentitySource) -> Self {
        self.state = self.state.identity(source.clone());
        self.inner.identity = Some(source);
        self
    }

    /// Reports `server`'s connections and refusals as `name`.
    pub fn server(mut self, name: &str, server: &crate::MeshServer) -> Self {
        self.state = self.state.server(name, server);
        self
    }

    /// Reports the ADS client of `ads` as `name` (feature `xds`): its
    /// counters as metrics, what it holds at `/config_dump` and over
    /// CSDS. One client is dumped: the last given.
    #[cfg(feature = "xds")]
    pub fn xds(mut self, name: &str, ads: &mesh_xds::ads::AdsHandle) -> Self {
        self.state = self.state.xds(name, ads);
        self.inner.ads = Some(ads.clone());
        self
    }

    /// Lets `POST /logging?level=LEVEL` change the log level with `set`
    /// (a `tracing_subscriber` reload handle's, say).
    pub fn logging(mut self, set: SetLogLevel) -> Self {
        self.inner.logging = Some(set);
        self
    }

    /// Lets `POST /drain_listeners` and `POST /quitquitquit` move
    /// `lifecycle` on, for the process to act on.
    pub fn lifecycle(mut self, lifecycle: tokio::sync::watch::Sender<Lifecycle>) -> Self {
        self.inner.lifecycle = Some(lifecycle);
        self
    }

    /// Serves `client`'s clusters and endpoints at `/clusters` and its
    /// route tables at `/routes`, and reports them as metrics, as `name`.
    pub fn client<B: 'static>(mut self, name: &str, client: &crate::MeshClient<B>) -> Self {
        let reader = ClientReader::new(client);
        self.state = self.state.reader(name, reader.clone());
        self.inner.clients.push((name.to_owned(), reader));
        self
    }

    /// Answers `GET path` with the JSON `respond` returns: an endpoint of
    /// the application's own (a control plane's `/config_dump`, say),
    /// which takes the place of the admin's own at that path (all but
    /// `/logging`).
    pub fn endpoint(
        mut self,
        path: &str,
        respond: impl Fn() -> serde_json::Value + Send + Sync + 'static,
    ) -> Self {
        self.inner.endpoints.retain(|(p, _)| p != path);
        self.inner
            .endpoints
            .push((path.to_owned(), Arc::new(respond)));
        self
    }

    /// `/ready` answers `LIVE` while `check` says so (or once
    /// [`Admin::set_ready`] did).
    pub fn ready_when(mut self, check: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.inner.ready_when = Some(Arc::new(check));
        self
    }

    /// Adds `collector` to the metrics: state read at each scrape.
    pub fn collector(mut self, collector: impl prometheus_client::collector::Collector) -> Self {
        self.registry.register_collector(Box::new(collector));
        self
    }

    /// The admin; not ready until [`Admin::set_ready`] or its
    /// [`ready_when`](Self::ready_when) check says so.
    pub fn build(self) -> Admin {
        let Self {
            mut registry,
            state,
            mut inner,
        } = self;
        state.register(&mut registry);
        inner.registry = Arc::new(registry);
        Admin {
            inner: Arc::new(inner),
        }
    }
}

impl Admin {
    /// An admin serving `registry`'s metrics (the application's own,
    /// Istio's request metrics), and what the builder adds.
    pub fn builder(registry: Registry) -> AdminBuilder {
        AdminBuilder {
            registry,
            state: MeshState::default(),
            inner: Inner {
                // The builder's, once `build` has added the mesh's state.
                registry: Arc::default(),
                identity: None,
                ready: AtomicBool::new(false),
                logging: None,
                clients: Vec::new(),
                #[cfg(feature = "xds")]
                ads: None,
                endpoints: Vec::new(),
                ready_when: None,
                lifecycle: None,
            },
        }
    }

    /// Whether `/ready` answers that the workload is ready (it also does
    /// while the builder's [`ready_when`](AdminBuilder::ready_when) check
    /// says so).
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::Release);
    }

    /// Serves on `listener` until the task is dropped: HTTP/1.1 and
    /// HTTP/2, with gRPC requests (CSDS, feature `xds`) to their service.
    pub async fn serve(self, listener: TcpListener) {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "admin: cannot accept a connection");
                    continue;
                }
            };
            let admin = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| admin.clone().call(req));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    async fn call(self, req: Request<Incoming>) -> Result<Response<AdminBody>, Infallible> {
        #[cfg(feature = "xds")]
        if let Some(ads) = &self.inner.ads
            && crate::body::is_grpc(req.headers())
        {
            use tower::ServiceExt;
            let Ok(res) = xds::csds(ads.clone()).oneshot(req).await;
            return Ok(res.map(|b| b.map_err(Into::into).boxed_unsync()));
        }
        let res = self.respond(&req);
        Ok(res.map(|b| b.map_err(|never| match never {}).boxed_unsync()))
    }

    /// The answer to `req`.
    pub fn respond<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        if req.uri().path() == "/logging" {
            return self.logging_level(req);
        }
        let asked = match req.uri().path() {
            "/drain_listeners" => Some(Lifecycle::Draining),
            "/quitquitquit" => Some(Lifecycle::Quitting),
            _ => None,
        };
        if let (Some(next), Some(lifecycle)) = (asked, &self.inner.lifecycle) {
            if req.method() != Method::POST {
                return text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("{} {}: use POST\n", req.method(), req.uri().path()),
                );
            }
            Lifecycle::advance(lifecycle, next);
            return text(StatusCode::OK, "OK\n".into());
        }
        if req.method() != Method::GET {
            let path = req.uri().path();
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{} {path}: the admin answers GET (POST for /logging)\n",
                    req.method()
                ),
            );
        }
        let own = self
            .inner
            .endpoints
            .iter()
            .find(|(p, _)| p == req.uri().path());
        if let Some((_, respond)) = own {
            return json_response(&respond());
        }
        match req.uri().path() {
            "/" => page(),
            "/stats/prometheus" => {
                let mut res = text(StatusCode::OK, self.exposition());
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(OPENMETRICS),
                );
                res
            }
            "/stats" => text(StatusCode::OK, plain_stats(&self.exposition())),
            "/clusters" => {
                let clients = self.client_statuses();
                if query_param(req.uri().query(), "format") == Some("json") {
                    json_response(&clusters::json(&clients))
                } else {
                    text(StatusCode::OK, clusters::text(&clients))
                }
            }
            "/routes" => json_response(&routes::routes(&self.inner.clients)),
            #[cfg(feature = "xds")]
            "/config_dump" => match &self.inner.ads {
                Some(ads) => json_response(&xds::config_dump(ads)),
                None => text(StatusCode::NOT_FOUND, "no xDS client here\n".into()),
            },
            "/certs" => json_response(&certs::certs(self.inner.identity.as_ref())),
            "/ready" if self.is_ready() => text(StatusCode::OK, "LIVE\n".into()),
            "/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "PRE_INITIALIZING\n".into()),
            "/healthz" => text(StatusCode::OK, "OK\n".into()),
            path => text(StatusCode::NOT_FOUND, self.not_found(path)),
        }
    }

    /// `POST /logging?level=LEVEL`.
    fn logging_level<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        if req.method() != Method::POST {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "POST /logging?level=LEVEL\n".into(),
            );
        }
        let Some(set) = &self.inner.logging else {
            return text(
                StatusCode::NOT_FOUND,
                "log levels are not set here\n".into(),
            );
        };
        let Some(raw) = query_param(req.uri().query(), "level").filter(|l| !l.is_empty()) else {
            return text(StatusCode::BAD_REQUEST, "no ?level=\n".into());
        };
        // `curl --data-urlencode` writes `mesh_tower=trace,info` escaped.
        let Some(level) = percent_decode(raw) else {
            return text(
                StatusCode::BAD_REQUEST,
                format!("{raw}: not a percent-encoded UTF-8 level\n"),
            );
        };
        let level = level.as_str();
        match set(level) {
            Ok(()) => {
                tracing::info!(level, "log level changed through the admin");
                text(StatusCode::OK, format!("log level: {level}\n"))
            }
            Err(why) => text(StatusCode::BAD_REQUEST, format!("{level}: {why}\n")),
        }
    }

    fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
            || self.inner.ready_when.as_ref().is_some_and(|check| check())
    }

    /// What a `404` says: the path, and the paths served.
    fn not_found(&self, path: &str) -> String {
        let mut paths = vec![
            "/",
            "/stats/prometheus",
            "/stats",
            "/clusters",
            "/routes",
            "/certs",
            "/ready",
            "/healthz",
            "/logging",
        ];
        #[cfg(feature = "xds")]
        if self.inner.ads.is_some() {
            paths.push("/config_dump");
        }
        paths.extend(self.inner.endpoints.iter().map(|(p, _)| p.as_str()));
        paths.sort_unstable();
        paths.dedup();
        format!("no admin endpoint {path}; served: {}\n", paths.join(" "))
    }

    /// The status of every client, by name.
    fn client_statuses(&self) -> Vec<(String, crate::client::ClientStatus)> {
        self.inner
            .clients
            .iter()
            .map(|(name, client)| (name.clone(), client.status()))
            .collect()
    }

    fn exposition(&self) -> String {
        let mut out = String::new();
        // Writing to a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
}

/// The samples of an exposition, one per line as Envoy's `/stats` lists
/// them: `name{labels}: value`.
fn plain_stats(exposition: &str) -> String {
    let mut out = String::new();
    for line in exposition.lines().filter(|l| !l.starts_with('#')) {
        if let Some((name, value)) = line.rsplit_once(' ') {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push('\n');
        }
    }
    out
}

/// The page for people: every part of the admin, refreshed every two
/// seconds, from the admin's own JSON; nothing from elsewhere (its
/// content security policy allows no other origin).
fn page() -> Response<Full<Bytes>> {
    let mut res = text(StatusCode::OK, include_str!("page.html").to_owned());
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
        ),
    );
    res
}

/// What the admin answers with: its own text, or a gRPC service's body.
type AdminBody = UnsyncBoxBody<Bytes, crate::BoxError>;

/// `s` with its `%XX` escapes decoded; `None` for a broken escape or
/// bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        // Digit by digit: `from_str_radix` would take `%+1` as 0x01.
        let digit = |b: Option<u8>| char::from(b?).to_digit(16);
        let (hi, lo) = (digit(bytes.next())?, digit(bytes.next())?);
        out.push((hi * 16 + lo) as u8);
    }
    String::from_utf8(out).ok()
}

fn json_response(value: &serde_json::Value) -> Response<Full<Bytes>> {
    let body = serde_json::to_string_pretty(value).unwrap_or_default();
    let mut res = text(StatusCode::OK, body + "\n");
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    res
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

#[cfg(test)]
mod tests;
