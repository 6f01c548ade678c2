//! The mesh's local control plane: what istiod does for a cluster, for a
//! directory on one machine.
//!
//! - [`config_dir`]: a directory of Istio YAML read whole, with every
//!   error's file and line.
//! - [`node`]: what a connecting node is (proxyless client, Envoy sidecar
//!   or gateway; namespace, labels), read from its xDS `Node`.
//! - [`proxyless`]: the resources istiod's `grpc` generator serves a
//!   proxyless client for the listener names it asks for.
//! - [`envoy`]: the resources istiod serves an Envoy sidecar: listeners
//!   with filter chains, routes by port, every service's clusters.
//! - [`sidecar_inbound`]: an Envoy sidecar's inbound listeners, for its
//!   `Sidecar`'s ingress ports, with mutual TLS and RBAC.
//! - [`ControlPlane`]: the configuration, the registry and a resource
//!   cache per kind of node, served by `mesh_xds::server::AdsServer`.
//! - [`watch`]: applies the directory again whenever a file changes,
//!   keeping the last good configuration when one does not load.
//! - [`admin`]: `/config_dump`, `/clients`, `/ready`, `/stats/prometheus`.
//! - [`secure`]: ADS over mutual TLS with a certificate from the CA, as
//!   istiod serves it on 15012, each client known by its certificate.
//! - [`ca`]: a certificate authority that keeps a self-signed root and
//!   issues SPIFFE workload certificates in the file layout Istio's agent
//!   writes for proxyless gRPC (`cert-chain.pem`, `key.pem`,
//!   `root-cert.pem`).
//!
//! The `mesh-control` binary drives it: `mesh-control serve --config DIR`,
//! `mesh-control ca init --dir DIR` and
//! `mesh-control ca issue --dir DIR --identity ID --out OUT [--ttl 24h]`.
//!
//! This crate has no feature flags.

pub mod admin;
mod assemble;
pub mod ca;
pub mod config_dir;
pub mod embedded;
pub mod envoy;
pub mod node;
mod plane;
pub mod proxyless;
pub mod secure;
pub mod sidecar_inbound;
pub mod watch;

pub use assemble::{BuildError, ByType};
pub use plane::{ControlPlane, Counters, MAX_NODE_CLASSES, NodeStatus, Status};
