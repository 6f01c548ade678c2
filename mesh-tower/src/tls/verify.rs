//! A server's certificate as the client checks it. A mesh server's: its
//! chain to the mesh's roots, and its SPIFFE id (the `spiffe://` URI SAN)
//! among those the cluster expects; host names are not checked, a mesh
//! identity being the workload's, not its address's. A server checked by
//! a cluster's own files: its chain to those roots, and one of the rule's
//! `subjectAltNames` among its DNS and URI SANs, or else the host name it
//! was dialled by. A mismatch fails the handshake, before any byte of a
//! request, with an [`IdentityMismatch`] naming the names expected and
//! presented.

use std::sync::Arc;

use mesh_core::route::StringMatch;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::identity::spiffe_uris;
use super::{IdentitySource, NoIdentity};

/// The server presented a certificate for another identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the server is {}, where {} was expected",
    if presented.is_empty() { "no SPIFFE identity".to_owned() } else { presented.join(", ") },
    expected.join(" or ")
)]
pub struct IdentityMismatch {
    /// The identities the cluster accepts.
    pub expected: Vec<String>,
    /// The SPIFFE ids the server's certificate names.
    pub presented: Vec<String>,
}

/// The roots a server's chain must lead to.
#[derive(Debug)]
enum Roots {
    /// The mesh's, as the workload's identity has them now (they rotate
    /// with it).
    Mesh(IdentitySource),
    /// A cluster's own (a DestinationRule's `caCertificates`).
    Fixed(Arc<rustls::RootCertStore>),
}

/// What the server's certificate must name.
#[derive(Debug)]
enum Names {
    /// A SPIFFE id one of these matches (any, when empty).
    Spiffe(Vec<StringMatch>),
    /// A DNS or URI SAN one of these matches.
    Sans(Vec<StringMatch>),
    /// The host name it was dialled by.
    Host,
}

/// Checks a server's chain against its roots and its certificate's names.
#[derive(Debug)]
pub(crate) struct ServerVerifier {
    roots: Roots,
    names: Names,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerVerifier {
    /// A mesh server: the mesh's roots of the moment, and a SPIFFE id of
    /// `expected` (any, when empty).
    pub(crate) fn mesh(source: IdentitySource, expected: Vec<StringMatch>) -> Self {
        Self::with(Roots::Mesh(source), Names::Spiffe(expected))
    }

    /// A server checked by a cluster's own files: `roots`, and one of
    /// `expected` among its SANs, or the host name when none is expected.
    pub(crate) fn files(roots: Arc<rustls::RootCertStore>, expected: Vec<StringMatch>) -> Self {
        let names = if expected.is_empty() {
            Names::Host
        } else {
            Names::Sans(expected)
        };
        Self::with(Roots::Fixed(roots), names)
    }

    fn with(roots: Roots, names: Names) -> Self {
        Self {
            roots,
            names,
            algorithms: super::crypto_provider().signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        let roots = match &self.roots {
            Roots::Mesh(source) => match source.current() {
                Some(identity) => identity.roots().clone(),
                None => {
                    let reason = NoIdentity {
                        reason: source.last_error(),
                    };
                    return Err(rustls::Error::General(reason.to_string()));
                }
            },
            Roots::Fixed(roots) => roots.clone(),
        };
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        let (expected, presented) = match &self.names {
            Names::Host => {
                rustls::client::verify_server_name(&cert, server_name)?;
                return Ok(ServerCertVerified::assertion());
            }
            Names::Spiffe(expected) => (expected, spiffe_ids(end_entity)),
            Names::Sans(expected) => (expected, sans(end_entity)),
        };
        if expected.is_empty() && !presented.is_empty()
            || presented
                .iter()
                .any(|p| expected.iter().any(|m| m.matches(p, false)))
        {
            return Ok(ServerCertVerified::assertion());
        }
        let mismatch = IdentityMismatch {
            expected: if expected.is_empty() {
                vec!["a SPIFFE identity".to_owned()]
            } else {
                expected.iter().map(expected_name).collect()
            },
            presented,
        };
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(mismatch)),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// An expected name as an error shows it: an exact one as it is, others
/// by how they match (`prefix "spiffe://cluster.local/ns/default/"`).
fn expected_name(m: &StringMatch) -> String {
    match m {
        StringMatch::Exact(name) => name.clone(),
        other => other.to_string(),
    }
}

/// The `spiffe://` URI SANs of the certificate `der`; none when it does
/// not parse.
pub(crate) fn spiffe_ids(der: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let ids = spiffe_uris(&cert).unwrap_or_default();
    ids.into_iter().map(str::to_owned).collect()
}

/// The DNS and URI SANs of the certificate `der`; none when it does not
/// parse.
pub(crate) fn sans(der: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(name) | GeneralName::URI(name) => Some((*name).to_owned()),
            _ => None,
        })
        .collect()
}
