//! The root: making it, reading it back, and signing workload
//! certificates with it.

use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;

use super::error::CaError;
use super::files::{self, Access};
use super::workload::WorkloadCert;
use super::{ROOT_CERT, ROOT_KEY};
use mesh_core::security::SpiffeId;

/// How long a root made by [`Ca::init`] is valid: ten years, istiod's
/// default for its self-signed root.
const ROOT_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How far before "now" a workload certificate starts being valid, so a
/// peer whose clock is a little behind still accepts it.
const BACKDATE: Duration = Duration::from_secs(60);

/// A certificate authority: the root certificate and the key that signs
/// with it.
pub struct Ca {
    root_pem: String,
    root_not_after: OffsetDateTime,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("root_not_after", &self.root_not_after)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// Makes a new self-signed root and writes it to `dir` as
    /// `root-cert.pem` and `root-key.pem` (mode 0600 on unix), creating
    /// `dir` if needed. An existing root in `dir` is never replaced:
    /// that is [`CaError::RootExists`].
    pub fn init(dir: impl AsRef<Path>) -> Result<Self, CaError> {
        let dir = dir.as_ref();
        let (cert_path, key_path) = (dir.join(ROOT_CERT), dir.join(ROOT_KEY));
        for path in [&cert_path, &key_path] {
            if path.exists() {
                return Err(CaError::RootExists { path: path.clone() });
            }
        }
        std::fs::create_dir_all(dir).map_err(|source| CaError::Write {
            path: dir.to_owned(),
            source,
        })?;

        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "mesh");
        params
            .distinguished_name
            .push(DnType::CommonName, "mesh root CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - BACKDATE;
        params.not_after = now + ROOT_LIFETIME;
        let key = KeyPair::generate().map_err(CaError::Generate)?;
        let key_pem = key.serialize_pem();
        let root = CertifiedIssuer::self_signed(params.clone(), key).map_err(CaError::Generate)?;
        let root_pem = root.pem();

        // The key first: a root certificate on disk always has its key.
        create_new(&key_path, key_pem.as_bytes(), Access::Private)?;
        if let Err(err) = create_new(&cert_path, root_pem.as_bytes(), Access::Public) {
            let _ = std::fs::remove_file(&key_path);
            return Err(err);
        }
        Self::load(dir)
    }

    /// Reads the root that [`Ca::init`] wrote to `dir`. Errors name the
    /// file and what is wrong with it: missing, unreadable, not PEM, not
    /// a CA certificate, or a key that is not the certificate's.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, CaError> {
        let dir = dir.as_ref();
        let (cert_path, key_path) = (dir.join(ROOT_CERT), dir.join(ROOT_KEY));
        let root_pem = read(&cert_path)?;
        let key_pem = read(&key_path)?;

        let not_pem_cert = || CaError::NotPem {
            path: cert_path.clone(),
            expected: "a PEM certificate",
        };
        let (_, pem) =
            x509_parser::pem::parse_x509_pem(root_pem.as_bytes()).map_err(|_| not_pem_cert())?;
        if pem.label != "CERTIFICATE" {
            return Err(not_pem_cert());
        }
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&pem.contents)
            .map_err(|_| not_pem_cert())?;
        let is_ca = cert
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca);
        if !is_ca {
            return Err(CaError::NotCa { path: cert_path });
        }

        let key = KeyPair::from_pem(&key_pem).map_err(|_| CaError::NotPem {
            path: key_path.clone(),
            expected: "a PEM private key",
        })?;
        if key.public_key_raw() != cert.public_key().subject_public_key.data.as_ref() {
            return Err(CaError::KeyMismatch {
                cert: cert_path,
                key: key_path,
            });
        }
        let root_not_after = cert.validity().not_after.to_datetime();
        let issuer = Issuer::from_ca_cert_der(&pem.contents.clone().into(), key)
            .map_err(|_| not_pem_cert())?;
        Ok(Self {
            root_pem,
            root_not_after,
            issuer,
        })
    }

    /// The root certificate, PEM.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// Issues a workload certificate for `identity`, which must be a
    /// SPIFFE id of the form `spiffe://TRUST_DOMAIN/ns/NS/sa/SA`, valid
    /// from a minute ago until `ttl` from now, with a fresh key.
    pub fn issue(&self, identity: &str, ttl: Duration) -> Result<WorkloadCert, CaError> {
        self.issue_for_hosts(identity, &[], ttl)
    }

    /// As [`issue`](Self::issue), for a server also dialled by name:
    /// `hosts` (DNS names and IP addresses) join the SPIFFE id among its
    /// SANs, for clients that check the host they dial, as gRPC's TLS
    /// credentials do.
    pub fn issue_for_hosts(
        &self,
        identity: &str,
        hosts: &[String],
        ttl: Duration,
    ) -> Result<WorkloadCert, CaError> {
        let identity: SpiffeId = identity.parse()?;
        if ttl.is_zero() {
            return Err(CaError::ZeroTtl);
        }
        let now = OffsetDateTime::now_utc();
        let not_after = now
            .checked_add(time_duration(ttl))
            .filter(|not_after| *not_after <= self.root_not_after)
            .ok_or(CaError::OutlivesRoot {
                not_after: now.saturating_add(time_duration(ttl)),
                root_not_after: self.root_not_after,
            })?;

        let mut params = CertificateParams::default();
        // Istio leaves the subject empty; the identity is the SAN alone.
        params.distinguished_name = DistinguishedName::new();
        let uri = identity.to_string().try_into().map_err(CaError::Generate)?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        for host in hosts {
            params.subject_alt_names.push(match host.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(host.as_str().try_into().map_err(CaError::Generate)?),
            });
        }
        params.is_ca = IsCa::ExplicitNoCa;
        // Key encipherment is for RSA keys (RFC 5480 §3): these are ECDSA.
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - BACKDATE;
        params.not_after = not_after;
        let key = KeyPair::generate().map_err(CaError::Generate)?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(CaError::Generate)?;
        Ok(WorkloadCert::new(
            identity,
            cert.pem(),
            key.serialize_pem(),
            self.root_pem.clone(),
            not_after.into(),
        ))
    }
}

fn time_duration(ttl: Duration) -> time::Duration {
    time::Duration::try_from(ttl).unwrap_or(time::Duration::MAX)
}

fn read(path: &Path) -> Result<String, CaError> {
    std::fs::read_to_string(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => CaError::Missing {
            path: path.to_owned(),
        },
        std::io::ErrorKind::InvalidData => CaError::NotPem {
            path: path.to_owned(),
            expected: "PEM text",
        },
        _ => CaError::Read {
            path: path.to_owned(),
            source,
        },
    })
}

fn create_new(path: &Path, contents: &[u8], access: Access) -> Result<(), CaError> {
    files::create_new(path, contents, access).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            CaError::RootExists {
                path: path.to_owned(),
            }
        } else {
            CaError::Write {
                path: path.to_owned(),
                source,
            }
        }
    })
}
