//! Who is at the other end of a mutual TLS connection, as the request or
//! response it carries says it: the server's identity on a client's
//! responses ([`PeerIdentity`]), the client's on a server's requests
//! ([`ClientIdentity`]). Both are SPIFFE ids from the peer's certificate;
//! over plain text there is none.

pub use mesh_core::security::ClientIdentity;

/// The identity a connection's server presented (its SPIFFE id); a
/// response extension on requests sent over mutual TLS, shared by the
/// responses of one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity(pub std::sync::Arc<str>);
