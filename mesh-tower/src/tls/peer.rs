//! Who is at the other end of a mutual TLS connection, as the request or
//! response it carries says it: the server's identity on a client's
//! responses ([`PeerIdentity`]), the client's on a server's requests
//! ([`ClientIdentity`]). Both are SPIFFE ids from the peer's certificate;
//! over plain text there is none.

use std::sync::Arc;

/// The identity a connection's server presented (its SPIFFE id); a
/// response extension on requests sent over mutual TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity(pub String);

/// The identity of the client a request came from (its certificate's
/// SPIFFE id); a request extension set by [`MeshServer`](crate::server::MeshServer)
/// on requests that came over mutual TLS, and read by authorization and
/// per-identity rate limits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientIdentity(pub Arc<str>);
