//! Certificates for TLS tests, made fresh for each test: a root, a
//! server certificate for 127.0.0.1 and a client certificate it signed,
//! written as PEM files in a directory of their own (removed on drop).

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// A root and what it signed, on disk.
pub(crate) struct Pki {
    dir: PathBuf,
    root: String,
    server: (String, String),
}

impl Pki {
    /// A root named `name`, a server certificate for `127.0.0.1` and a
    /// client certificate, written under a fresh temporary directory.
    pub(crate) fn new(name: &str) -> Self {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, name);
        let root = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let leaf = |san: &str| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(vec![san.to_owned()])
                .unwrap()
                .signed_by(&key, &root)
                .unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let server = leaf("127.0.0.1");
        let client = leaf("spiffe://cluster.local/ns/default/sa/test");
        let dir = std::env::temp_dir().join(format!(
            "mesh-pki-{name}-{}-{:x}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("root-cert.pem"), root.pem()).unwrap();
        std::fs::write(dir.join("cert-chain.pem"), &client.0).unwrap();
        std::fs::write(dir.join("key.pem"), &client.1).unwrap();
        Self {
            dir,
            root: root.pem(),
            server,
        }
    }

    /// The directory holding `root-cert.pem`, `cert-chain.pem` (the
    /// client's) and `key.pem`, Istio's layout.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// A server presenting its certificate and asking clients for one
    /// signed by the root.
    pub(crate) fn server_tls(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.server.0, &self.server.1))
            .client_ca_root(Certificate::from_pem(&self.root))
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Distinguishes directories of one process.
fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
