//! One accepted connection: told apart (plain text or TLS, as the port's
//! mode or its own TLS allows), secured, then served by hyper with the request
//! extensions authorization and the service read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use mesh_core::security::MtlsMode;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower::util::Either;
use tower::{Layer, Service};

use super::Body;
use super::io::ServerIo;
use super::{ConnectInfo, ServingMode, Shared};
use crate::BoxError;
use crate::authorize::Authorize;
use crate::metrics::IstioMetricsLayer;
use crate::route::RouteListener;
use crate::tls::{AcceptError, ClientIdentity, MeshTlsAcceptor, NoIdentity, TlsTermination};

/// The first byte of a TLS connection: a handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

pub(super) async fn serve<S, B>(
    shared: Arc<Shared>,
    stream: TcpStream,
    remote_addr: SocketAddr,
    service: S,
    shutdown: watch::Receiver<bool>,
) where
    S: Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    shared.stats.connection();
    let Ok(local_addr) = stream.local_addr() else {
        return;
    };
    let info = ConnectInfo {
        local_addr,
        remote_addr,
    };
    let stream = match &shared.filter {
        Some(filter) => match filter.filter(stream).await {
            Some(stream) => stream,
            None => return,
        },
        None => stream,
    };
    let secured = tokio::time::timeout(shared.header_read_timeout, secure(&shared, stream)).await;
    let secured = match secured {
        Ok(Ok(Some(secured))) => secured,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            shared.stats.handshake_failed();
            tracing::debug!(%remote_addr, error = %e, "connection refused");
            return;
        }
        Err(_) => {
            shared.stats.handshake_failed();
            tracing::debug!(%remote_addr, "connection closed: no TLS handshake in time");
            return;
        }
    };
    // Telemetry sees every request, denied ones too; the caller's
    // metadata is read before it is needed.
    let authorized = Authorize::new(service, shared.policy.clone());
    let inner = match &shared.telemetry {
        Some(t) => Either::Left(t.trace.layer(t.exchange.layer(t.metrics.layer(authorized)))),
        None => Either::Right(IstioMetricsLayer::disabled().layer(authorized)),
    };
    let service = WithPeer {
        inner,
        info,
        identity: secured.identity,
        routes: secured.routes,
    };
    let conn = shared.http.serve_connection_with_upgrades(
        TokioIo::new(secured.io),
        TowerToHyperService::new(service),
    );
    let mut conn = std::pin::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        () = draining(shutdown, shared.mode.subscribe()) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(%remote_addr, error = %e, "connection ended with an error");
    }
}

/// Completes when the connection is to close once its requests are
/// answered: at shutdown, or when the server stops serving.
async fn draining(mut shutdown: watch::Receiver<bool>, mut mode: watch::Receiver<ServingMode>) {
    let down = async { shutdown.wait_for(|down| *down).await.is_ok() };
    let stopped = async { mode.wait_for(|m| *m != ServingMode::Serving).await.is_ok() };
    tokio::select! {
        true = down => {}
        true = stopped => {}
        else => std::future::pending().await,
    }
}

/// A connection as the port takes it, with what its requests carry.
struct Secured {
    io: ServerIo,
    /// The client's mesh identity, over the mesh's mutual TLS.
    identity: Option<ClientIdentity>,
    /// The route table of the server its TLS chose, when the port
    /// terminates TLS of its own.
    routes: Option<RouteListener>,
}

impl Secured {
    fn plain(stream: TcpStream) -> Self {
        Self {
            io: ServerIo::Plain(stream),
            identity: None,
            routes: None,
        }
    }
}

/// The connection as the port takes it: plain text, the mesh's mutual
/// TLS as its mode asks, or TLS of the port's own; `None` for a
/// connection closed unanswered (plain text on a `STRICT` or TLS port, or
/// nothing sent).
async fn secure(shared: &Shared, stream: TcpStream) -> Result<Option<Secured>, AcceptError> {
    /// Whose TLS a connection gets.
    enum Tls<'a> {
        Mesh(&'a MeshTlsAcceptor),
        Own(Arc<TlsTermination>),
    }
    let mode = shared.policy.get().mtls;
    let (tls, plain_refused) = match (shared.termination.load_full(), mode, &shared.tls) {
        (Some(own), _, _) => (Tls::Own(own), true),
        (None, MtlsMode::Disable, _) | (None, MtlsMode::Permissive, None) => {
            return Ok(Some(Secured::plain(stream)));
        }
        (None, MtlsMode::Strict, None) => return Err(NoIdentity { reason: None }.into()),
        (None, mode, Some(mesh)) => (Tls::Mesh(mesh), mode == MtlsMode::Strict),
    };
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(1) => {}
        _ => return Ok(None),
    }
    if first[0] != TLS_HANDSHAKE {
        if plain_refused {
            shared.stats.plaintext();
            tracing::debug!(peer = ?stream.peer_addr().ok(), "plain text to a TLS-only port: closed");
            return Ok(None);
        }
        return Ok(Some(Secured::plain(stream)));
    }
    Ok(Some(match tls {
        Tls::Own(termination) => {
            let (stream, routes) = termination.accept(stream).await?;
            Secured {
                io: ServerIo::Tls(Box::new(stream)),
                identity: None,
                routes: Some(routes),
            }
        }
        Tls::Mesh(mesh) => {
            let (stream, identity) = mesh.accept(stream).await?;
            shared.stats.mtls();
            Secured {
                io: ServerIo::Tls(Box::new(stream)),
                identity: Some(identity),
                routes: None,
            }
        }
    }))
}

/// Puts the connection's addresses, client identity and route table in
/// each request.
#[derive(Clone, Debug)]
struct WithPeer<S> {
    inner: S,
    info: ConnectInfo,
    identity: Option<ClientIdentity>,
    routes: Option<RouteListener>,
}

impl<S, B> Service<http::Request<B>> for WithPeer<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> S::Future {
        let extensions = req.extensions_mut();
        extensions.insert(self.info);
        if let Some(identity) = &self.identity {
            extensions.insert(identity.clone());
        }
        if let Some(routes) = &self.routes {
            extensions.insert(routes.clone());
        }
        self.inner.call(req)
    }
}
