//! A workload's certificate, key and root, and writing them in Istio's
//! file layout so that a rotation replaces them in place.

use std::path::Path;
use std::time::SystemTime;

use super::error::CaError;
use super::files::{self, Access, Staged};
use super::identity::SpiffeId;
use super::{CERT_CHAIN, KEY, ROOT_CERT};

/// A certificate issued by [`Ca::issue`](super::Ca::issue), with its
/// private key and the root that signed it, all PEM.
#[derive(Clone)]
pub struct WorkloadCert {
    identity: SpiffeId,
    chain_pem: String,
    key_pem: String,
    root_pem: String,
    not_after: SystemTime,
}

impl std::fmt::Debug for WorkloadCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadCert")
            .field("identity", &self.identity)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl WorkloadCert {
    pub(super) fn new(
        identity: SpiffeId,
        chain_pem: String,
        key_pem: String,
        root_pem: String,
        not_after: SystemTime,
    ) -> Self {
        Self {
            identity,
            chain_pem,
            key_pem,
            root_pem,
            not_after,
        }
    }

    /// The SPIFFE id in the certificate's URI SAN.
    pub fn identity(&self) -> &SpiffeId {
        &self.identity
    }

    /// The certificate chain, PEM: the workload certificate alone, since
    /// the root signs it directly and the root is not part of a chain a
    /// peer is sent (Istio's `cert-chain.pem` likewise ends below the
    /// root for its own CA).
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// The private key, PEM (PKCS#8).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The root certificate that signed it, PEM: what peers must trust.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// When the certificate stops being valid.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// Writes `key.pem` (mode 0600 on unix), `cert-chain.pem` and
    /// `root-cert.pem` into `out_dir`, creating it if needed, replacing
    /// what is there.
    ///
    /// What a reader can rely on: each file is replaced whole (written to a
    /// temporary file in `out_dir`, flushed, then renamed over the old
    /// one), so no file is ever seen half-written, and nothing is replaced
    /// unless all three new files were written. The three renames happen in
    /// the order key, chain, root, so a chain on disk always has its key
    /// there already. They are three steps, not one: a reader that reads
    /// the key before a rotation and the chain after it (or the reverse)
    /// gets a pair that does not match, and should read again, as gRPC's
    /// `file_watcher` provider does on its next refresh while keeping the
    /// certificates it had. No temporary file is left behind.
    pub fn write(&self, out_dir: impl AsRef<Path>) -> Result<(), CaError> {
        let out_dir = out_dir.as_ref();
        std::fs::create_dir_all(out_dir).map_err(|source| CaError::Write {
            path: out_dir.to_owned(),
            source,
        })?;
        let staged = [
            (KEY, &self.key_pem, Access::Private),
            (CERT_CHAIN, &self.chain_pem, Access::Public),
            (ROOT_CERT, &self.root_pem, Access::Public),
        ]
        .into_iter()
        .map(|(name, contents, access)| {
            let path = out_dir.join(name);
            Staged::write(&path, contents.as_bytes(), access)
                .map_err(|source| CaError::Write { path, source })
        })
        .collect::<Result<Vec<_>, _>>()?;
        for file in staged {
            let path = file.path().to_owned();
            file.commit()
                .map_err(|source| CaError::Write { path, source })?;
        }
        files::sync_dir(out_dir).map_err(|source| CaError::Write {
            path: out_dir.to_owned(),
            source,
        })
    }
}
