//! The mesh's local control plane: what istiod does for a cluster, for a
//! directory on one machine.
//!
//! - [`ca`]: a certificate authority that keeps a self-signed root and
//!   issues SPIFFE workload certificates in the file layout Istio's agent
//!   writes for proxyless gRPC (`cert-chain.pem`, `key.pem`,
//!   `root-cert.pem`).
//! - [`json`]: an xDS resource as protobuf JSON, nested `Any`s expanded.
//!
//! The `mesh-control` binary drives it: `mesh-control ca init --dir DIR`
//! and `mesh-control ca issue --dir DIR --identity ID --out OUT [--ttl 24h]`.
//!
//! This crate has no feature flags.

pub mod ca;
pub mod json;
