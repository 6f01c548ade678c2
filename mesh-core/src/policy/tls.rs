//! How a cluster's connections are secured: Istio's DestinationRule `tls`
//! in its `ISTIO_MUTUAL` mode, mutual TLS with the mesh's identities.

/// Mutual TLS with the mesh's own identities (Istio's `ISTIO_MUTUAL`): the
/// client presents its workload certificate and checks the server's
/// against the mesh's roots and, when some are given, its SPIFFE ids.
/// Where the certificates come from is the client's (Istio's agent writes
/// them; proxyless gRPC reads them through its certificate provider
/// `default`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamTls {
    /// The server name to send (SNI), if any.
    pub sni: Option<String>,
    /// Identities the server must have one of (`spiffe://…`); empty
    /// accepts any the roots sign.
    pub subject_alt_names: Vec<String>,
}
