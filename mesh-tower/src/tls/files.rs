//! TLS with files of a cluster's own (Istio's DestinationRule `SIMPLE` and
//! `MUTUAL`) or none (an `https://` target): the server's chain checked
//! against the roots the rule names, else the system's, and its name
//! against the rule's `subjectAltNames` (matched against any DNS or URI
//! SAN of the certificate), else its `sni` as a host name; under `MUTUAL`,
//! the rule's client certificate presented. The files are read when the
//! cluster's endpoint is set up; one that cannot be read or parsed, a
//! client certificate without its key, no roots, or nothing to check the
//! server's name against is an error naming it, and the cluster's requests
//! fail with it (never in plain text, never unchecked).
//!
//! The system's roots are read once, with `rustls-native-certs`: the
//! operating system's store (on Linux the distribution's bundle, which
//! its package updates and an operator's own CAs join), or the files
//! `SSL_CERT_FILE`/`SSL_CERT_DIR` name, as OpenSSL and Go read them. A
//! list compiled into the binary (`webpki-roots`) would age with the
//! binary and not know a company's own CA.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use mesh_core::policy::{Pem, TlsFiles, UpstreamTls};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use super::InvalidSni;
use super::verify::ServerVerifier;

/// Why TLS with a cluster's own files cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum FileTlsError {
    /// A file could not be read, or holds no PEM of what it should.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// PEM text given inline (a Secret's) holds no PEM of what it should.
    #[error("inline PEM: {0}")]
    Inline(String),
    /// Only one of the client certificate and its key is named.
    #[error("MUTUAL TLS names a {0} but not its pair")]
    Unpaired(&'static str),
    /// No roots to check the server's chain against: none named, and
    /// none in the system's store.
    #[error(
        "no caCertificates, and no system roots to check the server's certificate against: {0}"
    )]
    NoRoots(Arc<str>),
    /// Neither a name nor SANs to check the server's certificate for.
    #[error("neither sni nor subjectAltNames to check the server's certificate for")]
    NoName,
    /// The `sni` is not a server name.
    #[error(transparent)]
    Sni(#[from] InvalidSni),
    /// rustls refused the configuration (a key that does not match its
    /// certificate, say).
    #[error("the client certificate and key: {0}")]
    Config(#[source] rustls::Error),
}

/// The rustls configuration `tls` and its `files` ask for; its ALPN is
/// the caller's to set.
pub(crate) fn client_config(
    tls: &UpstreamTls,
    files: &TlsFiles,
) -> Result<rustls::ClientConfig, FileTlsError> {
    if tls.sni.is_none() && tls.subject_alt_names.is_empty() {
        return Err(FileTlsError::NoName);
    }
    let roots = match files.ca_certificates.as_deref() {
        Some(roots_file) => {
            let mut roots = RootCertStore::empty();
            for cert in pem_certificates(&Pem::File(roots_file.to_owned()))? {
                roots.add(cert).map_err(|e| FileTlsError::File {
                    path: roots_file.into(),
                    reason: e.to_string(),
                })?;
            }
            Arc::new(roots)
        }
        None => system_roots().map_err(FileTlsError::NoRoots)?,
    };
    let verifier = ServerVerifier::files(roots, tls.subject_alt_names.clone());
    let builder = rustls::ClientConfig::builder_with_provider(super::crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    match (&files.client_certificate, &files.private_key) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(chain), Some(key)) => {
            let chain = pem_certificates(&Pem::File(chain.clone()))?;
            let key = pem_key(&Pem::File(key.clone()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(FileTlsError::Config)
        }
        (Some(_), None) => Err(FileTlsError::Unpaired("clientCertificate")),
        (None, Some(_)) => Err(FileTlsError::Unpaired("privateKey")),
    }
}

/// The system's roots, read on first use: what loaded, or why none did.
fn system_roots() -> Result<Arc<RootCertStore>, Arc<str>> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, Arc<str>>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added > 0 {
                return Ok(Arc::new(roots));
            }
            let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
            Err(if errors.is_empty() {
                "the system's store has none (install ca-certificates, or set SSL_CERT_FILE)".into()
            } else {
                errors.join("; ").into()
            })
        })
        .clone()
}

/// The PEM objects of type `T` in `pem`, at least one, each wrapped in
/// the error its place (a file, or inline text) gives.
fn pem_all<T: PemObject>(pem: &Pem, what: &str) -> Result<Vec<T>, FileTlsError> {
    let fail = |reason: String| failure(pem, reason);
    let all = match pem {
        Pem::File(path) => T::pem_file_iter(path)
            .map_err(|e| fail(e.to_string()))?
            .collect::<Result<Vec<_>, _>>(),
        Pem::Inline(text) => T::pem_slice_iter(text.as_bytes()).collect::<Result<Vec<_>, _>>(),
    }
    .map_err(|e| fail(e.to_string()))?;
    if all.is_empty() {
        return Err(fail(format!("no {what}")));
    }
    Ok(all)
}

/// What is wrong with `pem`, named by its place.
fn failure(pem: &Pem, reason: String) -> FileTlsError {
    match pem {
        Pem::File(path) => FileTlsError::File {
            path: path.into(),
            reason,
        },
        Pem::Inline(_) => FileTlsError::Inline(reason),
    }
}

/// The certificates in `pem`, at least one.
pub(crate) fn pem_certificates(pem: &Pem) -> Result<Vec<CertificateDer<'static>>, FileTlsError> {
    pem_all(pem, "certificate")
}

/// The revocation lists in `pem`, at least one.
pub(crate) fn pem_crls(
    pem: &Pem,
) -> Result<Vec<CertificateRevocationListDer<'static>>, FileTlsError> {
    pem_all(pem, "certificate revocation list")
}

/// The private key in `pem`.
pub(crate) fn pem_key(pem: &Pem) -> Result<PrivateKeyDer<'static>, FileTlsError> {
    match pem {
        Pem::File(path) => PrivateKeyDer::from_pem_file(path),
        Pem::Inline(text) => PrivateKeyDer::from_pem_slice(text.as_bytes()),
    }
    .map_err(|e| failure(pem, format!("no private key: {e}")))
}
