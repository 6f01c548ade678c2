//! The admin endpoint of a workload, in the shape of Envoy's admin port
//! (`127.0.0.1:15000` by default; HTTP/1.1 and HTTP/2, plain text), so the
//! tools that read a sidecar's read it:
//!
//! - `GET /stats/prometheus`: every metric of the [`Registry`] given
//!   (Istio's request metrics, the application's own), in the OpenMetrics
//!   text format Prometheus scrapes;
//! - `GET /stats`: the same samples one per line, `name{labels}: value`;
//! - `GET /certs`: the workload certificate in use: its SPIFFE id, serial,
//!   validity and days until it expires, when it was last read and why the
//!   last read failed, if it did (never a key);
//! - `GET /ready`: `200 LIVE` once [`Admin::set_ready`] says so, else
//!   `503 PRE_INITIALIZING`; `GET /healthz`: `200 OK`;
//! - `POST /logging?level=LEVEL` (a `tracing` filter, `debug` or
//!   `mesh_tower=trace,info`): changes the log level at run time, through
//!   what the application gave [`Admin::logging`]; `GET` is refused, as
//!   Envoy refuses it, since it changes state.
//!
//! Anything else is `404`; a method other than `GET` (or `POST` for
//! `/logging`) `405`.

mod certs;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

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

/// Sets the log level from a filter's text, or says why it cannot.
pub type SetLogLevel = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

struct Inner {
    registry: Arc<Registry>,
    identity: Option<IdentitySource>,
    ready: AtomicBool,
    logging: Option<SetLogLevel>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("identity", &self.identity)
            .field("ready", &self.ready)
            .field("logging", &self.logging.is_some())
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// Serves `registry`'s metrics, and `identity`'s certificate if given;
    /// not ready until [`set_ready`](Self::set_ready).
    pub fn new(registry: Arc<Registry>, identity: Option<IdentitySource>) -> Self {
        Self {
            inner: Arc::new(Inner {
                registry,
                identity,
                ready: AtomicBool::new(false),
                logging: None,
            }),
        }
    }

    /// Lets `POST /logging?level=LEVEL` change the log level with `set`
    /// (a `tracing_subscriber` reload handle's, say). The admin returned
    /// is apart from earlier clones of this one.
    pub fn logging(self, set: SetLogLevel) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                registry: inner.registry.clone(),
                identity: inner.identity.clone(),
                ready: AtomicBool::new(inner.ready.load(Ordering::Acquire)),
                logging: Some(set),
            }),
        }
    }

    /// Whether `/ready` answers that the workload is ready.
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::Release);
    }

    /// Serves on `listener` until the task is dropped.
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
                let service = hyper::service::service_fn(move |req| {
                    let response = admin.respond(&req);
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    /// The answer to `req`.
    pub fn respond<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        if req.uri().path() == "/logging" {
            return self.logging_level(req);
        }
        if req.method() != Method::GET {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
        }
        match req.uri().path() {
            "/stats/prometheus" => {
                let mut res = text(StatusCode::OK, self.exposition());
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(OPENMETRICS),
                );
                res
            }
            "/stats" => text(StatusCode::OK, plain_stats(&self.exposition())),
            "/certs" => {
                let body = certs::certs(self.inner.identity.as_ref()).to_string();
                let mut res = text(StatusCode::OK, body + "\n");
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
                res
            }
            "/ready" if self.inner.ready.load(Ordering::Acquire) => {
                text(StatusCode::OK, "LIVE\n".into())
            }
            "/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "PRE_INITIALIZING\n".into()),
            "/healthz" => text(StatusCode::OK, "OK\n".into()),
            _ => text(StatusCode::NOT_FOUND, "no such admin endpoint\n".into()),
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
        let level = req
            .uri()
            .query()
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|pair| pair.strip_prefix("level="));
        let Some(level) = level.filter(|l| !l.is_empty()) else {
            return text(StatusCode::BAD_REQUEST, "no ?level=\n".into());
        };
        match set(level) {
            Ok(()) => {
                tracing::info!(level, "log level changed through the admin");
                text(StatusCode::OK, format!("log level: {level}\n"))
            }
            Err(why) => text(StatusCode::BAD_REQUEST, format!("{level}: {why}\n")),
        }
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
