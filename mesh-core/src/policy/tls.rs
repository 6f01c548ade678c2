//! How a cluster's connections are secured: Istio's DestinationRule `tls`
//! (`ISTIO_MUTUAL` with the mesh's identities; `SIMPLE` and `MUTUAL` with
//! files of the client's own), whole or chosen per endpoint by its labels.

use std::collections::BTreeMap;

use crate::route::StringMatch;

/// TLS towards a cluster's endpoints. With [`files`](Self::files) unset it
/// is mutual TLS with the mesh's own identities (Istio's `ISTIO_MUTUAL`):
/// the client presents its workload certificate and checks the server's
/// against the mesh's roots, where the certificates come from being the
/// client's (Istio's agent writes them; proxyless gRPC reads them through
/// its certificate provider `default`). Either way, when identities are
/// given the server must have one of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamTls {
    /// The server name to send (SNI), if any.
    pub sni: Option<String>,
    /// Identities the server must have one of (Envoy's SAN matchers:
    /// exact `spiffe://…` ids, or DNS names for a service outside the mesh,
    /// or a prefix, suffix, substring or pattern of them), matched against
    /// its SPIFFE id under the mesh's identities and against its DNS and
    /// URI SANs with files; empty accepts any SPIFFE id the roots sign, or
    /// with files the host name in [`sni`](Self::sni).
    pub subject_alt_names: Vec<StringMatch>,
    /// The client's own files (Istio's `SIMPLE` and `MUTUAL`), instead of
    /// the mesh's identities.
    pub files: Option<TlsFiles>,
}

impl UpstreamTls {
    /// Ordinary TLS to `host` (an `https://` target outside the mesh): the
    /// system's roots, and the host name checked against the certificate.
    pub fn web(host: &str) -> Self {
        Self {
            sni: Some(host.to_owned()),
            subject_alt_names: Vec::new(),
            files: Some(TlsFiles::default()),
        }
    }
}

/// TLS for the endpoints whose labels carry `criteria` (Envoy's
/// `transport_socket_matches`): how Istio's auto mTLS gives endpoints with
/// a sidecar (`tlsMode: istio`) mutual TLS and others plain text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsMatch {
    /// Its name, e.g. `tlsMode-istio`.
    pub name: String,
    /// The labels an endpoint must carry, all of them; none matches every
    /// endpoint.
    pub criteria: BTreeMap<String, String>,
    /// The TLS of those endpoints; `None` for plain text.
    pub tls: Option<UpstreamTls>,
}

impl TlsMatch {
    /// Whether an endpoint with `labels` is matched.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.criteria.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// Certificate files a DestinationRule names for `SIMPLE` or `MUTUAL` TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The client certificate chain to present (`MUTUAL`).
    pub client_certificate: Option<String>,
    /// Its private key (`MUTUAL`).
    pub private_key: Option<String>,
    /// The roots the server's certificate is checked against; without
    /// them, the system's (as Istio's proxies do with
    /// `VERIFY_CERTIFICATE_AT_CLIENT`, its default).
    pub ca_certificates: Option<String>,
}

/// PEM data a server reads: a file it opens, or the text itself (from a
/// Kubernetes secret, as istiod serves those by SDS).
#[derive(Clone, PartialEq, Eq)]
pub enum Pem {
    /// The path of a file.
    File(String),
    /// The PEM text.
    Inline(String),
}

impl Default for Pem {
    fn default() -> Self {
        Pem::File(String::new())
    }
}

impl From<&str> for Pem {
    /// The file at `path`.
    fn from(path: &str) -> Self {
        Pem::File(path.to_owned())
    }
}

impl std::fmt::Debug for Pem {
    /// A file by its path; inline text only by its length, as it may be a
    /// private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pem::File(path) => f.debug_tuple("File").field(path).finish(),
            Pem::Inline(text) => write!(f, "Inline(<{} bytes>)", text.len()),
        }
    }
}

/// TLS a server terminates with certificates of its own (an Istio
/// Gateway server's `SIMPLE` and `MUTUAL` modes), from files or a secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerTls {
    /// The Kubernetes Secret the certificates came from (a Gateway's
    /// `credentialName`), if they did: a control plane sends them by SDS
    /// as the secrets `kubernetes://NAME` (and `kubernetes://NAME-cacert`
    /// for the client roots), as istiod does, only to a gateway allowed
    /// them, and never inline.
    pub credential: Option<String>,
    /// The certificate chain it presents.
    pub certificate_chain: Pem,
    /// Its private key.
    pub private_key: Pem,
    /// The roots client certificates are checked against; with them a
    /// client must present one (`MUTUAL`).
    pub client_ca: Option<Pem>,
    /// Identities a client certificate must have one of; empty accepts
    /// any the roots sign.
    pub subject_alt_names: Vec<String>,
    /// Revoked client certificates (a CRL).
    pub crl: Option<Pem>,
    /// Base64 SHA-256 hashes of the public keys (SPKI) of the client
    /// certificates accepted; empty accepts any.
    pub verify_certificate_spki: Vec<String>,
    /// Hex SHA-256 hashes of the client certificates accepted; empty
    /// accepts any.
    pub verify_certificate_hash: Vec<String>,
    /// The lowest TLS version accepted; `None` is the server's default.
    pub min_version: Option<TlsVersion>,
    /// The highest TLS version accepted; `None` is the server's default.
    pub max_version: Option<TlsVersion>,
    /// The cipher suites accepted (for TLS 1.2 and below); empty is the
    /// server's default.
    pub cipher_suites: Vec<String>,
}

/// A TLS protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.0.
    V1_0,
    /// TLS 1.1.
    V1_1,
    /// TLS 1.2.
    V1_2,
    /// TLS 1.3.
    V1_3,
}
