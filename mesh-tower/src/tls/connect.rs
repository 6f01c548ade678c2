//! [`MeshTlsConnector`]: mutual TLS dialled over any connector, for the
//! endpoints of a cluster whose policy asks for the mesh's mutual TLS. The
//! client presents its identity ([`IdentitySource`]: the certificate of the
//! moment, as it rotates, for each new handshake), checks the server's chain
//! against the mesh's roots and its SPIFFE id against the cluster's
//! expected identities ([`IdentityMismatch`](super::IdentityMismatch)),
//! offers HTTP/2 and HTTP/1.1 (ALPN) as the cluster's protocol allows,
//! and tells the pool which one it got. The server's identity rides on every response of the connection
//! as a [`PeerIdentity`] extension.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use mesh_core::policy::{Protocol, TlsFiles, UpstreamTls};
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tower::{Service, ServiceExt};

use super::files::FileTlsError;
use super::verify::{IdentityMismatch, ServerVerifier, spiffe_ids};
use super::{IdentitySource, NoIdentity, PeerIdentity};
use crate::BoxError;

/// Dials mutual TLS over `C`, as one cluster's policy says.
#[derive(Clone)]
pub struct MeshTlsConnector<C> {
    inner: C,
    /// The mesh identity presented, checked for before each connection;
    /// `None` with files of the cluster's own.
    identity: Option<IdentitySource>,
    tls: TlsConnector,
    sni: Option<ServerName<'static>>,
    handshake_timeout: Duration,
}

/// How long a TLS handshake may take unless told otherwise: Istio's
/// default connect timeout.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server did not finish the TLS handshake in time.
#[derive(Debug, thiserror::Error)]
#[error("TLS handshake timed out after {0:?}")]
pub struct HandshakeTimeout(Duration);

impl<C> std::fmt::Debug for MeshTlsConnector<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshTlsConnector")
            .field("sni", &self.sni)
            .finish_non_exhaustive()
    }
}

/// The server name a cluster's TLS sends is not a DNS name or address.
#[derive(Debug, thiserror::Error)]
#[error("sni {0:?} is not a DNS name or IP address")]
pub struct InvalidSni(String);

impl<C> MeshTlsConnector<C> {
    /// Dials with the identity `identity` has at each handshake, expecting
    /// the server to be one of `tls.subject_alt_names` (any SPIFFE id the
    /// roots sign, when none is named), sending `tls.sni` if set, and
    /// offering by ALPN the HTTP versions `protocol` allows (both for
    /// [`Protocol::UseClientProtocol`], HTTP/2 first).
    pub fn new(
        inner: C,
        identity: &IdentitySource,
        tls: &UpstreamTls,
        protocol: Protocol,
    ) -> Result<Self, InvalidSni> {
        let sni = sni(tls)?;
        let verifier = ServerVerifier::mesh(identity.clone(), tls.subject_alt_names.clone());
        let provider = super::crypto_provider();
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_cert_resolver(Arc::new(Presents(identity.clone())));
        config.alpn_protocols = alpn(protocol);
        Ok(Self {
            inner,
            identity: Some(identity.clone()),
            tls: TlsConnector::from(Arc::new(config)),
            sni,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }

    /// Dials TLS with files of the cluster's own (`tls.files`: Istio's
    /// `SIMPLE` and `MUTUAL`), checking the server as the `tls::files`
    /// rules say, sending `tls.sni` if set, offering by ALPN what `protocol`
    /// allows.
    pub fn with_files(
        inner: C,
        tls: &UpstreamTls,
        files: &TlsFiles,
        protocol: Protocol,
    ) -> Result<Self, FileTlsError> {
        let mut config = super::files::client_config(tls, files)?;
        config.alpn_protocols = alpn(protocol);
        let sni = sni(tls)?;
        Ok(Self {
            inner,
            identity: None,
            tls: TlsConnector::from(Arc::new(config)),
            sni,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }
}

impl<C: Clone> MeshTlsConnector<C> {
    /// The same connector offering only HTTP/1.1 by ALPN: for a request
    /// that upgrades its connection (WebSocket), which HTTP/2 cannot
    /// carry.
    pub fn http1_only(&self) -> Self {
        let mut config = rustls::ClientConfig::clone(self.tls.config());
        config.alpn_protocols = alpn(Protocol::Http1);
        Self {
            inner: self.inner.clone(),
            identity: self.identity.clone(),
            tls: TlsConnector::from(Arc::new(config)),
            sni: self.sni.clone(),
            handshake_timeout: self.handshake_timeout,
        }
    }
}

impl<C> MeshTlsConnector<C> {
    /// Gives up on a server that has not finished the handshake within
    /// `timeout` ([`DEFAULT_HANDSHAKE_TIMEOUT`] unless set): one that
    /// takes the connection and never answers fails the request instead
    /// of holding it.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
}

/// The server name `tls` sends, if any.
fn sni(tls: &UpstreamTls) -> Result<Option<ServerName<'static>>, InvalidSni> {
    tls.sni
        .as_deref()
        .map(|s| ServerName::try_from(s.to_owned()).map_err(|_| InvalidSni(s.to_owned())))
        .transpose()
}

/// The ALPN protocols offered for `protocol`, HTTP/2 first.
fn alpn(protocol: Protocol) -> Vec<Vec<u8>> {
    match protocol {
        Protocol::Http1 => vec![b"http/1.1".to_vec()],
        Protocol::Http2 => vec![b"h2".to_vec()],
        Protocol::UseClientProtocol => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    }
}

/// Presents the source's certificate of the moment.
#[derive(Debug)]
struct Presents(IdentitySource);

impl rustls::client::ResolvesClientCert for Presents {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.current()?.certified_key().clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl<C> Service<SocketAddr> for MeshTlsConnector<C>
where
    C: Service<SocketAddr> + Clone + Send + 'static,
    C::Response: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = TlsIo<C::Response>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, addr: SocketAddr) -> Self::Future {
        // Refused before a connection is opened while there is no
        // identity to present.
        if let Some(identity) = self.identity.as_ref().filter(|i| i.current().is_none()) {
            let reason = identity.last_error();
            return Box::pin(std::future::ready(Err(NoIdentity { reason }.into())));
        }
        let connect = self.inner.clone().oneshot(addr);
        let tls = self.tls.clone();
        let timeout = self.handshake_timeout;
        // A mesh identity is not a host name: without an SNI of the
        // cluster's, the address stands in.
        let name = self
            .sni
            .clone()
            .unwrap_or(ServerName::IpAddress(addr.ip().into()));
        Box::pin(async move {
            let io = TokioIo::new(connect.await.map_err(Into::into)?);
            let handshake = tokio::time::timeout(timeout, tls.connect(name, io));
            let stream = handshake
                .await
                .map_err(|_| HandshakeTimeout(timeout))?
                .map_err(handshake_error)?;
            Ok(TlsIo(TokioIo::new(stream)))
        })
    }
}

/// A failed handshake's error: the identity mismatch itself when that is
/// what failed it, so that it reads as one.
fn handshake_error(e: io::Error) -> BoxError {
    let mismatch = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|e| match e {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
                other.0.downcast_ref::<IdentityMismatch>().cloned()
            }
            _ => None,
        });
    match mismatch {
        Some(m) => m.into(),
        None => e.into(),
    }
}

/// A mutual TLS connection over the connection `T`, as the pool takes it.
#[derive(Debug)]
pub struct TlsIo<T>(TokioIo<TlsStream<TokioIo<T>>>);

impl<T: Connection> Connection for TlsIo<T> {
    fn connected(&self) -> Connected {
        let (io, session) = self.0.inner().get_ref();
        let mut connected = io.inner().connected();
        if session.alpn_protocol() == Some(b"h2") {
            connected = connected.negotiated_h2();
        }
        let peer = session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(spiffe_ids)
            .and_then(|ids| ids.into_iter().next());
        match peer {
            Some(id) => connected.extra(PeerIdentity(id.into())),
            None => connected,
        }
    }
}

impl<T: hyper::rt::Read + hyper::rt::Write + Unpin> hyper::rt::Read for TlsIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Read + hyper::rt::Write + Unpin> hyper::rt::Write for TlsIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
