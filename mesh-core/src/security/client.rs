//! [`ClientIdentity`]: who a request came from, as the server that took
//! it over mutual TLS read it from the client's certificate.

use std::sync::Arc;

/// The identity of the client a request came from (its certificate's
/// SPIFFE id); a request extension a mesh server sets on requests that
/// came over mutual TLS, read by authorization, per-identity rate limits
/// and the control plane's per-identity views. Over plain text there is
/// none.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientIdentity(pub Arc<str>);
