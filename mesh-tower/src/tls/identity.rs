//! A workload's identity for mutual TLS: its certificate chain and private
//! key and the roots of the mesh it trusts, read from PEM (Istio's
//! proxyless file layout, [`IdentityFiles`], or text from anywhere) and
//! checked before anything uses
//! them: each part parses, the key is the certificate's, the certificate
//! is valid now and names one SPIFFE id in its URI SAN. What is wrong is
//! an [`IdentityError`] naming the part (its file, when it came from one)
//! and the cause; the private key is never printed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mesh_core::security::{InvalidIdentity, SpiffeId};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Where Istio's agent (and `mesh-control ca issue`) writes a proxyless
/// workload's certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityFiles {
    /// The workload's certificate, then its intermediates.
    pub certificate_chain: PathBuf,
    /// Its private key.
    pub private_key: PathBuf,
    /// The roots of the mesh.
    pub roots: PathBuf,
}

impl IdentityFiles {
    /// `cert-chain.pem`, `key.pem` and `root-cert.pem` in `dir`.
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        Self {
            certificate_chain: dir.join("cert-chain.pem"),
            private_key: dir.join("key.pem"),
            roots: dir.join("root-cert.pem"),
        }
    }
}

/// A checked workload identity, ready for rustls.
#[derive(Clone)]
pub struct WorkloadIdentity {
    id: SpiffeId,
    key: Arc<CertifiedKey>,
    roots: Arc<rustls::RootCertStore>,
    not_after: SystemTime,
}

impl std::fmt::Debug for WorkloadIdentity {
    // Not the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadIdentity")
            .field("id", &format_args!("{}", self.id))
            .field("not_after", &self.not_after)
            .field("roots", &self.roots.len())
            .finish_non_exhaustive()
    }
}

/// Which part of an identity an error is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// The certificate chain.
    CertificateChain,
    /// The private key.
    PrivateKey,
    /// The roots.
    Roots,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Part::CertificateChain => "certificate chain",
            Part::PrivateKey => "private key",
            Part::Roots => "roots",
        })
    }
}

/// Why an identity cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{part}{}: {cause}", from.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
pub struct IdentityError {
    /// The part at fault.
    pub part: Part,
    /// The file it was read from, if it was.
    pub from: Option<PathBuf>,
    /// What is wrong.
    pub cause: IdentityCause,
}

/// What is wrong with an identity.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityCause {
    /// The file could not be read.
    #[error("cannot be read: {0}")]
    Read(#[source] std::io::Error),
    /// It holds no PEM of what it should.
    #[error("holds no {0} in PEM")]
    Missing(&'static str),
    /// It is not valid PEM or DER.
    #[error("does not parse: {0}")]
    Parse(String),
    /// The private key is not the certificate's.
    #[error("is not the key of the certificate's public key")]
    KeyMismatch,
    /// The certificate is not valid yet.
    #[error("is not valid before {0}")]
    NotYetValid(String),
    /// The certificate has expired.
    #[error("expired at {0}")]
    Expired(String),
    /// The certificate names no SPIFFE id.
    #[error("names no SPIFFE id (a spiffe:// URI SAN)")]
    NoSpiffeId,
    /// The certificate names several SPIFFE ids.
    #[error("names more than one SPIFFE id: {0}")]
    SeveralSpiffeIds(String),
    /// The SPIFFE id is not a workload's.
    #[error(transparent)]
    InvalidSpiffeId(InvalidIdentity),
    /// A [`CertificateSource`](super::CertificateSource) of code's could
    /// not give one, for the reason it says.
    #[error("could not be had: {0}")]
    Unavailable(String),
}

impl WorkloadIdentity {
    /// Reads and checks the identity in `files`, as of `now`.
    pub fn load(files: &IdentityFiles, now: SystemTime) -> Result<Self, IdentityError> {
        let read = |part: Part, path: &Path| {
            std::fs::read(path).map_err(|e| IdentityError {
                part,
                from: Some(path.to_owned()),
                cause: IdentityCause::Read(e),
            })
        };
        let chain = read(Part::CertificateChain, &files.certificate_chain)?;
        let key = read(Part::PrivateKey, &files.private_key)?;
        let roots = read(Part::Roots, &files.roots)?;
        Self::check(&chain, &key, &roots, now).map_err(|mut e| {
            e.from = Some(
                match e.part {
                    Part::CertificateChain => &files.certificate_chain,
                    Part::PrivateKey => &files.private_key,
                    Part::Roots => &files.roots,
                }
                .clone(),
            );
            e
        })
    }

    /// Checks the identity of the PEM `chain`, `key` and `roots`, as of
    /// `now`.
    pub fn from_pem(
        chain: &[u8],
        key: &[u8],
        roots: &[u8],
        now: SystemTime,
    ) -> Result<Self, IdentityError> {
        Self::check(chain, key, roots, now)
    }

    fn check(
        chain: &[u8],
        key: &[u8],
        roots: &[u8],
        now: SystemTime,
    ) -> Result<Self, IdentityError> {
        let fail = |part, cause| IdentityError {
            part,
            from: None,
            cause,
        };
        let parse = |part, e: rustls::pki_types::pem::Error| {
            fail(part, IdentityCause::Parse(e.to_string()))
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain)
            .collect::<Result<_, _>>()
            .map_err(|e| parse(Part::CertificateChain, e))?;
        let Some(leaf) = chain.first() else {
            return Err(fail(
                Part::CertificateChain,
                IdentityCause::Missing("certificate"),
            ));
        };
        let (id, not_after) =
            leaf_identity(leaf, now).map_err(|cause| fail(Part::CertificateChain, cause))?;
        let key = match PrivateKeyDer::from_pem_slice(key) {
            Ok(key) => key,
            Err(rustls::pki_types::pem::Error::NoItemsFound) => {
                return Err(fail(
                    Part::PrivateKey,
                    IdentityCause::Missing("private key"),
                ));
            }
            Err(e) => return Err(parse(Part::PrivateKey, e)),
        };
        let provider = super::crypto_provider();
        let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                fail(Part::PrivateKey, IdentityCause::KeyMismatch)
            }
            e => fail(Part::PrivateKey, IdentityCause::Parse(e.to_string())),
        })?;
        let mut store = rustls::RootCertStore::empty();
        let mut any = false;
        for root in CertificateDer::pem_slice_iter(roots) {
            let root = root.map_err(|e| parse(Part::Roots, e))?;
            store
                .add(root)
                .map_err(|e| fail(Part::Roots, IdentityCause::Parse(e.to_string())))?;
            any = true;
        }
        if !any {
            return Err(fail(Part::Roots, IdentityCause::Missing("certificate")));
        }
        Ok(Self {
            id,
            key: Arc::new(certified),
            roots: Arc::new(store),
            not_after,
        })
    }

    /// The workload's SPIFFE id, from its certificate.
    pub fn id(&self) -> &SpiffeId {
        &self.id
    }

    /// When its certificate expires.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The certificate chain and key, as rustls presents them.
    pub fn certified_key(&self) -> &Arc<CertifiedKey> {
        &self.key
    }

    /// The roots of the mesh.
    pub fn roots(&self) -> &Arc<rustls::RootCertStore> {
        &self.roots
    }
}

/// The SPIFFE id and expiry of the certificate `der`, checked valid at
/// `now`.
fn leaf_identity(
    der: &CertificateDer<'_>,
    now: SystemTime,
) -> Result<(SpiffeId, SystemTime), IdentityCause> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| IdentityCause::Parse(e.to_string()))?;
    let validity = cert.validity();
    let at = |t: &x509_parser::time::ASN1Time| {
        let secs = t.timestamp();
        let time = if secs >= 0 {
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
        } else {
            SystemTime::UNIX_EPOCH
        };
        (time, t.to_string())
    };
    let (not_before, before_text) = at(&validity.not_before);
    let (not_after, after_text) = at(&validity.not_after);
    if now < not_before {
        return Err(IdentityCause::NotYetValid(before_text));
    }
    if now > not_after {
        return Err(IdentityCause::Expired(after_text));
    }
    let spiffe = spiffe_uris(&cert).map_err(IdentityCause::Parse)?;
    match spiffe.as_slice() {
        [] => Err(IdentityCause::NoSpiffeId),
        [one] => one
            .parse()
            .map(|id| (id, not_after))
            .map_err(IdentityCause::InvalidSpiffeId),
        many => Err(IdentityCause::SeveralSpiffeIds(many.join(", "))),
    }
}

/// The `spiffe://` URI SANs of `cert`.
pub(super) fn spiffe_uris<'c>(cert: &'c X509Certificate<'_>) -> Result<Vec<&'c str>, String> {
    let san = cert.subject_alternative_name().map_err(|e| e.to_string())?;
    Ok(san
        .iter()
        .flat_map(|s| &s.value.general_names)
        .filter_map(|n| match n {
            GeneralName::URI(uri) if uri.starts_with("spiffe://") => Some(*uri),
            _ => None,
        })
        .collect())
}
