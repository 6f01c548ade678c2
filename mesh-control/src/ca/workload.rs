//! A workload's certificate, key and root, and writing them in Istio's
//! file layout so that a rotation replaces them in place.

use std::path::Path;
use std::time::SystemTime;

use super::error::CaError;
use super::files::{self, Access};
use super::{CERT_CHAIN, KEY, ROOT_CERT};
use mesh_core::security::SpiffeId;

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

    /// Writes `key.pem` (mode 0600), `cert-chain.pem` and `root-cert.pem`
    /// into `out_dir`, creating it if needed, replacing what is there.
    ///
    /// The three are replaced at once, as Kubernetes updates a mounted
    /// secret and Istio's agent relies on: they are written into a fresh
    /// hidden directory of `out_dir`, the link `..data` is switched to it
    /// by one rename, and each file is a link through `..data`. A reader
    /// (gRPC's `file_watcher` certificate provider, Envoy's SDS from
    /// files) sees the old key, chain and root or the new ones, never a
    /// mix; a failure before the switch leaves the old ones in place.
    /// Files of an older layout (plain files) are replaced by the links.
    pub fn write(&self, out_dir: impl AsRef<Path>) -> Result<(), CaError> {
        let out_dir = out_dir.as_ref();
        let files = [
            (KEY, self.key_pem.as_bytes(), Access::Private),
            (CERT_CHAIN, self.chain_pem.as_bytes(), Access::Public),
            (ROOT_CERT, self.root_pem.as_bytes(), Access::Public),
        ];
        files::replace_all(out_dir, &files).map_err(|source| CaError::Write {
            path: out_dir.to_owned(),
            source,
        })
    }
}
