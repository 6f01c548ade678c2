//! Mutual TLS for the mesh's clients and servers, with rustls and the
//! workspace's one crypto provider (ring): a workload's identity, its
//! certificate and key and the mesh's roots, read and checked
//! ([`WorkloadIdentity`]), fixed or following its files as they rotate
//! ([`IdentitySource`]); and a connector that dials the mesh's mutual TLS
//! with it, checking the server's SPIFFE id ([`MeshTlsConnector`]).

mod connect;
mod identity;
mod source;
mod verify;

pub use connect::{InvalidSni, MeshTlsConnector, PeerIdentity, TlsIo};
pub use identity::{IdentityCause, IdentityError, IdentityFiles, Part, WorkloadIdentity};
pub use source::{IdentitySource, NoIdentity};
pub use verify::IdentityMismatch;
