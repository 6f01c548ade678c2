//! A mesh server's certificate as a mesh client checks it: its chain to
//! the mesh's roots, and its SPIFFE id (the `spiffe://` URI SAN) among
//! those the cluster expects. Host names are not checked: a mesh identity
//! is the workload's, not its address's. A mismatch fails the handshake,
//! before any byte of a request, with an [`IdentityMismatch`] naming the
//! identities expected and presented.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use x509_parser::prelude::{FromDer, X509Certificate};

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

/// Checks a server's chain against the mesh's roots now (the identity
/// source's, which may rotate) and its SPIFFE id against `expected` (any,
/// when empty).
#[derive(Debug)]
pub(crate) struct SpiffeServerVerifier {
    source: IdentitySource,
    expected: Vec<String>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl SpiffeServerVerifier {
    pub(crate) fn new(source: IdentitySource, expected: Vec<String>) -> Self {
        let algorithms = super::crypto_provider().signature_verification_algorithms;
        Self {
            source,
            expected,
            algorithms,
        }
    }
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        let Some(identity) = self.source.current() else {
            let reason = NoIdentity {
                reason: self.source.last_error(),
            };
            return Err(rustls::Error::General(reason.to_string()));
        };
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            identity.roots(),
            intermediates,
            now,
            self.algorithms.all,
        )?;
        let presented = spiffe_ids(end_entity);
        if self.expected.is_empty() && !presented.is_empty()
            || presented.iter().any(|p| self.expected.contains(p))
        {
            return Ok(ServerCertVerified::assertion());
        }
        let mismatch = IdentityMismatch {
            expected: if self.expected.is_empty() {
                vec!["a SPIFFE identity".to_owned()]
            } else {
                self.expected.clone()
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

/// The `spiffe://` URI SANs of the certificate `der`; none when it does
/// not parse.
pub(crate) fn spiffe_ids(der: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let ids = spiffe_uris(&cert).unwrap_or_default();
    ids.into_iter().map(str::to_owned).collect()
}
