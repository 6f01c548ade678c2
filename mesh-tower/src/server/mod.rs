//! [`MeshServer`]: the inbound side of the mesh for any hyper or tonic
//! service (a `tower::Service<http::Request<server::Body>>`), on a TCP
//! listener: HTTP/1.1 and HTTP/2 (h2c and by ALPN) on one port, mutual
//! TLS as the port's [`MtlsMode`](mesh_core::security::MtlsMode) asks, and
//! authorization ([`authorize`](crate::authorize)) in front of the
//! service. Istio's `PeerAuthentication` modes, per connection:
//!
//! | mode | takes |
//! |---|---|
//! | `STRICT` | only mutual TLS from a client the mesh's roots sign, with a SPIFFE id |
//! | `PERMISSIVE` | mutual TLS and plain text on the one port, told apart by the connection's first byte (a TLS handshake record, as Envoy's TLS inspector reads it) |
//! | `DISABLE` | only plain text |
//!
//! Each request carries, in its extensions, its connection's
//! [`ConnectInfo`] and, over mutual TLS, the client's
//! [`ClientIdentity`](crate::tls::ClientIdentity) (its SPIFFE id).
//!
//! At the edge, before the service sees anything: a request head that
//! does not parse is answered `400`, one larger than
//! [`max_header_bytes`](MeshServerBuilder::max_header_bytes) `431`; a
//! connection that has not finished its TLS handshake or its request
//! head within [`header_read_timeout`](MeshServerBuilder::header_read_timeout)
//! is closed. A refused handshake is counted ([`ServerStats`]).
//!
//! A gateway's port terminates TLS with certificates of its own instead
//! ([`tls_termination`](MeshServerBuilder::tls_termination)): the server
//! is chosen by SNI, its route table put in each request
//! ([`RouteListener`](crate::route::RouteListener)), and plain text
//! refused.
//!
//! A [`connection_filter`](MeshServerBuilder::connection_filter) sees each
//! connection before any of that, and may keep it (a sidecar's outbound
//! listener passes intercepted non-HTTP connections through,
//! [`proxy::intercept`](crate::proxy::intercept)).
//!
//! [`serve_with_shutdown`](MeshServer::serve_with_shutdown) stops taking
//! connections when its signal fires and lets the open ones finish what
//! they have in flight (HTTP/2 `GOAWAY`, HTTP/1.1 `Connection: close`),
//! for at most the [`drain_timeout`](MeshServerBuilder::drain_timeout).
//!
//! With [`MeshServerBuilder::xds`] (feature `xds`) the policy comes from
//! the control plane, as a proxyless gRPC server's does (gRFC A36): the
//! server asks for the listener its bootstrap names for the address it
//! serves (Istio's `xds.istio.io/grpc/lds/inbound/HOST:PORT`), takes the
//! mutual TLS mode from its filter chains and the authorization from its
//! RBAC filter, and follows every accepted copy; a gateway's listener
//! (an Envoy gateway's port, chains chosen by SNI) has it terminate its
//! servers' TLS instead, with certificates from the listener or SDS. Until that listener has
//! come, and whenever the control plane drops it or sends one the server
//! cannot serve by, it is [not serving](ServingMode): connections are
//! closed as they are accepted and the open ones drained, and
//! [`serving_mode`](MeshServer::serving_mode) says why.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use mesh_core::security::MtlsMode;
//! use mesh_tower::server::MeshServer;
//! use mesh_tower::tls::{ClientIdentity, IdentityFiles, IdentitySource};
//!
//! let identity = IdentitySource::from_files(IdentityFiles::in_dir("/var/run/secrets/workload-spiffe-credentials"))?;
//! let hello = tower::service_fn(|req: http::Request<mesh_tower::server::Body>| async move {
//!     let caller = req.extensions().get::<ClientIdentity>().map_or("anonymous".into(), |c| c.0.clone());
//!     Ok::<_, std::convert::Infallible>(http::Response::new(format!("hello {caller}")))
//! });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9080").await?;
//! MeshServer::builder().identity(identity).mtls(MtlsMode::Strict).serve(listener, hello).await?;
//! # Ok(()) }
//! ```

mod builder;
mod connection;
mod io;
mod stats;
#[cfg(feature = "xds")]
mod xds;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::Service;

pub use builder::{
    DEFAULT_DRAIN_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_HEADER_BYTES,
    MeshServerBuilder, ServerError,
};
pub use stats::ServerStats;

use crate::BoxError;
use crate::authorize::SharedPolicy;
use crate::tls::{MeshTlsAcceptor, TlsTermination};

/// The addresses of the connection a request came on; a request
/// extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectInfo {
    /// The server's address the client connected to.
    pub local_addr: SocketAddr,
    /// The client's address.
    pub remote_addr: SocketAddr,
}

/// What sees each accepted connection before HTTP does
/// ([`MeshServerBuilder::connection_filter`]): it gives the connection
/// back to be served, or `None` when it has taken it.
#[derive(Clone)]
pub struct ConnectionFilter(Arc<FilterFn>);

type FilterFn = dyn Fn(
        tokio::net::TcpStream,
    ) -> futures_util::future::BoxFuture<'static, Option<tokio::net::TcpStream>>
    + Send
    + Sync;

impl ConnectionFilter {
    /// A filter calling `filter` with each connection.
    pub fn new(
        filter: impl Fn(
            tokio::net::TcpStream,
        )
            -> futures_util::future::BoxFuture<'static, Option<tokio::net::TcpStream>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Self(Arc::new(filter))
    }

    /// The connection to serve, if the filter gives it back.
    pub(crate) async fn filter(
        &self,
        stream: tokio::net::TcpStream,
    ) -> Option<tokio::net::TcpStream> {
        (self.0)(stream).await
    }
}

impl std::fmt::Debug for ConnectionFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionFilter")
    }
}

/// Whether a server takes connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServingMode {
    /// It takes connections under its policy.
    Serving,
    /// It closes connections as it accepts them, for this reason (its
    /// control plane has not sent, or no longer sends, a listener it can
    /// serve by).
    NotServing(Arc<str>),
}

/// Serves services with the mesh's inbound policy; clones share the
/// policy, certificates and counters.
#[derive(Clone, Debug)]
pub struct MeshServer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    telemetry: Option<Telemetry>,
    policy: SharedPolicy,
    tls: Option<MeshTlsAcceptor>,
    /// TLS of the port's own, in place of the mesh's.
    termination: arc_swap::ArcSwapOption<TlsTermination>,
    http: auto::Builder<TokioExecutor>,
    header_read_timeout: Duration,
    drain_timeout: Duration,
    stats: ServerStats,
    filter: Option<ConnectionFilter>,
    mode: watch::Sender<ServingMode>,
    #[cfg(feature = "xds")]
    xds: Option<mesh_xds::ads::AdsHandle>,
    /// The address the control plane knows the server by, if not the
    /// listener's.
    #[cfg(feature = "xds")]
    xds_address: Option<SocketAddr>,
}

/// The body of a request a [`MeshServer`]'s service is given: hyper's
/// own, counted on its way for the request's metrics
/// (`istio_request_bytes`, `istio_request_messages_total`). tonic's
/// services take it as they are.
pub type Body = crate::metrics::CountedBody<Incoming>;

/// What a server reports its requests with.
#[derive(Debug)]
struct Telemetry {
    trace: crate::trace::TraceLayer,
    exchange: crate::metadata_exchange::MetadataExchangeLayer,
    metrics: crate::metrics::IstioMetricsLayer,
}

impl Shared {
    /// Moves to `mode`, if that is a change.
    #[cfg(feature = "xds")]
    fn set_mode(&self, mode: ServingMode) {
        self.mode.send_if_modified(|current| {
            if *current == mode {
                return false;
            }
            match &mode {
                ServingMode::Serving => tracing::info!("serving"),
                ServingMode::NotServing(reason) => tracing::warn!(%reason, "not serving"),
            }
            *current = mode;
            true
        });
    }

    /// Follows the control plane for a server on `addr`, if it has one;
    /// never completes.
    async fn follow(&self, addr: std::io::Result<SocketAddr>) {
        #[cfg(feature = "xds")]
        if let Some(ads) = &self.xds {
            match self.xds_address.map_or(addr, Ok) {
                Ok(addr) => xds::follow(self, ads, addr).await,
                Err(e) => self.set_mode(ServingMode::NotServing(
                    format!("the listener's address is unknown: {e}").into(),
                )),
            }
        }
        #[cfg(not(feature = "xds"))]
        let _ = addr;
        std::future::pending().await
    }
}

/// How long accepting pauses after the listener fails (out of file
/// descriptors, say), so that the failure does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

impl MeshServer {
    /// A builder: `STRICT` mutual TLS and no authorization filter until
    /// told otherwise.
    pub fn builder() -> MeshServerBuilder {
        MeshServerBuilder::default()
    }

    /// The policy connections and requests are decided by; [`set`](SharedPolicy::set)
    /// it to change them from the next connection (the mode) and the next
    /// request (authorization, and a `STRICT` mode refusing the requests of
    /// plain-text connections made before it).
    pub fn policy(&self) -> &SharedPolicy {
        &self.shared.policy
    }

    /// Terminates TLS with `termination`'s certificates from the next
    /// connection on, in place of the mesh's mutual TLS
    /// ([`MeshServerBuilder::tls_termination`]); `None` goes back to the
    /// mesh's.
    pub fn set_tls_termination(&self, termination: Option<TlsTermination>) {
        self.shared.termination.store(termination.map(Arc::new));
    }

    /// What the server has accepted and refused.
    pub fn stats(&self) -> &ServerStats {
        &self.shared.stats
    }

    /// Whether the server takes connections, as it changes: always
    /// [`Serving`](ServingMode::Serving) but for a server that follows a
    /// control plane ([`MeshServerBuilder::xds`]).
    pub fn serving_mode(&self) -> watch::Receiver<ServingMode> {
        self.shared.mode.subscribe()
    }

    /// Serves `service` on `listener` until the task is dropped.
    pub async fn serve<S, B>(&self, listener: TcpListener, service: S)
    where
        S: Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.serve_with_shutdown(listener, service, std::future::pending())
            .await;
    }

    /// Serves `service` on `listener` until `signal` completes, then
    /// drains: no new connection, the open ones told to close once their
    /// requests are answered, and closed after the drain timeout if they
    /// have not.
    pub async fn serve_with_shutdown<S, B, F>(&self, listener: TcpListener, service: S, signal: F)
    where
        S: Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
        F: Future<Output = ()>,
    {
        let (shutdown, _) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut signal = std::pin::pin!(signal);
        let mut follow = std::pin::pin!(self.shared.follow(listener.local_addr()));
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, remote_addr)) => {
                        if let ServingMode::NotServing(reason) = &*self.shared.mode.borrow() {
                            self.shared.stats.not_serving();
                            tracing::debug!(%remote_addr, %reason, "connection closed: not serving");
                            continue;
                        }
                        let _ = stream.set_nodelay(true);
                        let shared = self.shared.clone();
                        let service = service.clone();
                        let shutdown = shutdown.subscribe();
                        connections.spawn(connection::serve(shared, stream, remote_addr, service, shutdown));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                () = &mut follow => {}
                () = &mut signal => break,
            }
        }
        drop(listener);
        shutdown.send_replace(true);
        let drained = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(self.shared.drain_timeout, drained)
            .await
            .is_err()
        {
            tracing::info!(
                open = connections.len(),
                "drain timed out; closing the connections still open"
            );
        }
        connections.shutdown().await;
    }
}
