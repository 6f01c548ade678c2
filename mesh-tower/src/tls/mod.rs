//! Mutual TLS for the mesh's clients and servers, with rustls and the
//! workspace's one crypto provider (ring): a workload's identity, its
//! certificate and key and the mesh's roots, read and checked
//! ([`WorkloadIdentity`]), fixed or following its files as they rotate
//! ([`IdentitySource`]); a connector that dials the mesh's mutual TLS
//! with it, checking the server's SPIFFE id ([`MeshTlsConnector`]), and
//! an acceptor that takes it, reading the client's
//! ([`MeshTlsAcceptor`]); and TLS a gateway's port terminates with
//! certificates of its own, chosen by SNI ([`TlsTermination`]).

mod accept;
#[cfg(feature = "xds")]
mod bootstrap;
mod connect;
mod files;
mod identity;
mod peer;
mod provider;
mod source;
mod terminate;
mod verify;

pub use accept::{AcceptError, MeshTlsAcceptor};
#[cfg(feature = "xds")]
pub(crate) use bootstrap::bootstrap_identity;
pub use connect::{
    DEFAULT_HANDSHAKE_TIMEOUT, HandshakeTimeout, InvalidSni, MeshTlsConnector, TlsIo,
};
pub use files::FileTlsError;
pub use identity::{IdentityCause, IdentityError, IdentityFiles, Part, WorkloadIdentity};
pub use peer::{ClientIdentity, PeerIdentity};
pub use provider::crypto_provider;
pub use source::{CertificateSource, IdentitySource, NoIdentity};
pub use terminate::{TerminationCause, TerminationError, TlsTermination};
pub use verify::IdentityMismatch;
