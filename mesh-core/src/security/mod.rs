//! What a server asks of its callers, as Istio's `security.istio.io`
//! resources say it and Envoy's filters enforce it: how a port takes
//! mutual TLS ([`MtlsMode`], Istio's `PeerAuthentication`) and who may call
//! it with what ([`Rbac`], Envoy's RBAC filter, which istiod writes
//! `AuthorizationPolicy` as, and gRPC enforces per gRFC A41), and the
//! decision those filters make of one request ([`authorize`]), the two
//! together for one port ([`InboundPolicy`]); and who a workload is
//! ([`SpiffeId`]) and who a request came from ([`ClientIdentity`]).

mod authorize;
mod client;
mod rbac;
mod spiffe;

pub use authorize::{AccessRequest, Decision, authorize};
pub use client::ClientIdentity;
pub use rbac::{
    Cidr, InvalidCidr, Permission, Principal, Rbac, RbacAction, RbacPolicy, ValueMatch,
};
pub use spiffe::{InvalidIdentity, SpiffeId};

/// How a server's port takes mutual TLS (Istio's `PeerAuthentication`
/// modes, resolved: there is no `UNSET` here).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MtlsMode {
    /// Mutual TLS only.
    Strict,
    /// Mutual TLS and plain text side by side, Istio's default.
    #[default]
    Permissive,
    /// Plain text only.
    Disable,
}

/// What one of a server's ports asks of its callers: how they connect
/// and what they may do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InboundPolicy {
    /// How the port takes mutual TLS.
    pub mtls: MtlsMode,
    /// The authorization filters every request must pass, in order; none
    /// lets every request through.
    pub rbac: Vec<Rbac>,
}
