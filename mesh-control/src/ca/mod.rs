//! A certificate authority for the mesh: a self-signed root kept in a
//! directory, and SPIFFE workload certificates it signs, written in the
//! layout Istio's agent gives proxyless gRPC.
//!
//! The root lives in `DIR/root-cert.pem` and `DIR/root-key.pem` (the key
//! mode 0600 on unix); it is an ECDSA P-256 key valid for ten years (the
//! self-signed root istiod makes is RSA 2048; rustls and gRPC take
//! either). A workload
//! certificate carries exactly one URI SAN, its SPIFFE id
//! (`spiffe://cluster.local/ns/NS/sa/SA`), an empty subject (so the SAN is
//! critical), key usages for TLS client and server (digital signature;
//! serverAuth and clientAuth), and is not a CA. It is valid
//! from a minute before it was issued, for clock skew, until its TTL has
//! passed. See [`WorkloadCert::write`] for the files and how they are
//! replaced.
//!
//! ```
//! use std::time::Duration;
//! use mesh_control::ca::Ca;
//!
//! # let tmp = std::env::temp_dir().join(format!("mesh-ca-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&tmp);
//! let ca = Ca::init(tmp.join("ca"))?;
//! let cert = ca.issue("spiffe://cluster.local/ns/default/sa/reviews", Duration::from_secs(24 * 3600))?;
//! cert.write(tmp.join("workload"))?;
//! assert!(tmp.join("workload/cert-chain.pem").exists());
//! # std::fs::remove_dir_all(&tmp).unwrap();
//! # Ok::<(), mesh_control::ca::CaError>(())
//! ```

mod error;
mod files;
mod root;
mod ttl;
mod workload;

pub use error::CaError;
pub use mesh_core::security::{InvalidIdentity, SpiffeId};
pub use root::Ca;
pub use ttl::{InvalidTtl, parse_ttl};
pub use workload::WorkloadCert;

/// The root certificate's file name, in the CA's directory and in each
/// workload's.
pub const ROOT_CERT: &str = "root-cert.pem";
/// The root key's file name in the CA's directory.
pub const ROOT_KEY: &str = "root-key.pem";
/// The workload certificate chain's file name.
pub const CERT_CHAIN: &str = "cert-chain.pem";
/// The workload private key's file name.
pub const KEY: &str = "key.pem";
