//! What can go wrong keeping the root and issuing certificates; every
//! error that touches a file names it.

use std::io;
use std::path::PathBuf;

use mesh_core::security::InvalidIdentity;

/// An error from the certificate authority.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// `init` found a root already there and would not replace it.
    #[error("{path} already exists; refusing to overwrite an existing root")]
    RootExists {
        /// The file that exists.
        path: PathBuf,
    },
    /// A file the CA needs is not there.
    #[error("{path} is missing")]
    Missing {
        /// The missing file.
        path: PathBuf,
    },
    /// A file could not be read.
    #[error("could not read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file or directory could not be written.
    #[error("could not write {path}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file is not the PEM it should be.
    #[error("{path} is not {expected}")]
    NotPem {
        /// The file.
        path: PathBuf,
        /// What it should hold, e.g. "a PEM certificate".
        expected: &'static str,
    },
    /// The root certificate is not a CA certificate.
    #[error("{path} is not a CA certificate (its basic constraints do not say CA)")]
    NotCa {
        /// The certificate file.
        path: PathBuf,
    },
    /// The root key does not belong to the root certificate.
    #[error("{key} is not the key of {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The identity asked for is not a workload SPIFFE id.
    #[error(transparent)]
    Identity(#[from] InvalidIdentity),
    /// The lifetime asked for is zero.
    #[error("a certificate lifetime must be more than zero")]
    ZeroTtl,
    /// The certificate would outlive the root that signs it.
    #[error(
        "a certificate valid until {not_after} would outlive the root, which expires at {root_not_after}"
    )]
    OutlivesRoot {
        /// When the certificate would expire.
        not_after: time::OffsetDateTime,
        /// When the root expires.
        root_not_after: time::OffsetDateTime,
    },
    /// Making a key or signing a certificate failed.
    #[error("could not generate a certificate")]
    Generate(#[source] rcgen::Error),
}
