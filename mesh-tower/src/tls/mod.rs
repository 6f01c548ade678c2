//! Mutual TLS for the mesh's clients and servers, with rustls and the
//! workspace's one crypto provider (ring): a workload's identity, its
//! certificate and key and the mesh's roots, read and checked
//! ([`WorkloadIdentity`]).

mod identity;

pub use identity::{IdentityCause, IdentityError, IdentityFiles, Part, WorkloadIdentity};
