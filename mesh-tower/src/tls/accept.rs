//! [`MeshTlsAcceptor`]: the server side of the mesh's mutual TLS. The
//! server presents its identity of the moment ([`IdentitySource`], as it
//! rotates) and takes only clients whose certificate chains to the mesh's
//! roots and names a SPIFFE id, which it hands back as the connection's
//! [`ClientIdentity`]. It offers HTTP/2 and HTTP/1.1 (ALPN).
//!
//! The rustls configuration is built once per identity and kept until the
//! identity changes (a new certificate, key or roots), so a handshake
//! costs one atomic load on top of TLS itself.

use std::io;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::verify::spiffe_ids;
use super::{ClientIdentity, IdentitySource, NoIdentity, WorkloadIdentity};

/// Accepts the mesh's mutual TLS with a workload's identity; clones share
/// the configuration.
#[derive(Clone, Debug)]
pub struct MeshTlsAcceptor {
    identity: IdentitySource,
    built: Arc<ArcSwapOption<Built>>,
}

/// The configuration built for one identity.
struct Built {
    identity: Arc<WorkloadIdentity>,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// Why a client's mutual TLS was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// This server has no certificate to present.
    #[error(transparent)]
    NoIdentity(#[from] NoIdentity),
    /// The handshake failed: the client sent no certificate, one the
    /// mesh's roots do not sign, or no TLS at all.
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] io::Error),
    /// The client's certificate names no SPIFFE id.
    #[error("the client's certificate names no SPIFFE identity")]
    NoSpiffeId,
    /// No server of the port takes the server name the client asked for
    /// ([`TlsTermination`](super::TlsTermination)).
    #[error("no server of this port is for {}", .0.as_deref().map_or("a client without a server name (SNI)".to_owned(), |n| format!("the server name {n}")))]
    NoServer(Option<String>),
    /// The client's certificate is not one the server takes.
    #[error("the client's certificate is refused: {0}")]
    ClientCertificate(String),
}

impl MeshTlsAcceptor {
    /// Accepts with the identity `identity` has at each handshake.
    pub fn new(identity: &IdentitySource) -> Self {
        Self {
            identity: identity.clone(),
            built: Arc::default(),
        }
    }

    /// Runs the server side of the handshake on `io`.
    pub async fn accept<IO>(&self, io: IO) -> Result<(TlsStream<IO>, ClientIdentity), AcceptError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = self.acceptor()?;
        let stream = acceptor.accept(io).await.map_err(AcceptError::Handshake)?;
        let id = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| spiffe_ids(cert).into_iter().next())
            .ok_or(AcceptError::NoSpiffeId)?;
        Ok((stream, ClientIdentity(id.into())))
    }

    /// The acceptor for the identity of the moment, built if it changed.
    fn acceptor(&self) -> Result<TlsAcceptor, NoIdentity> {
        let Some(identity) = self.identity.current() else {
            let reason = self.identity.last_error();
            return Err(NoIdentity { reason });
        };
        if let Some(built) = &*self.built.load()
            && Arc::ptr_eq(&built.identity, &identity)
        {
            return Ok(built.acceptor.clone());
        }
        let acceptor = TlsAcceptor::from(Arc::new(server_config(&identity)));
        self.built.store(Some(Arc::new(Built {
            identity,
            acceptor: acceptor.clone(),
        })));
        Ok(acceptor)
    }
}

fn server_config(identity: &WorkloadIdentity) -> rustls::ServerConfig {
    let provider = super::crypto_provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(identity.roots().clone(), provider.clone())
            .build()
            .expect("a checked identity has at least one root");
    let resolver = rustls::sign::SingleCertAndKey::from(identity.certified_key().clone());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default versions")
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}
