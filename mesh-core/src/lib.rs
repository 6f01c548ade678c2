//! The mesh model: everything the mesh knows about services, endpoints and
//! policies, as plain values with no I/O.
//!
//! - [`name`]: service authorities (`reviews.default.svc.cluster.local:9080`)
//!   and Kubernetes short forms (`reviews`, `reviews.default`).
//! - [`endpoint`]: an [`Endpoint`] and the immutable, shared [`EndpointSet`].
//! - [`resolve`]: the [`Resolve`] discovery trait every discovery source
//!   (static list, DNS, xDS) implements, and [`StaticResolve`].
//! - [`policy`]: load-balancing, retry, timeout, outlier-detection,
//!   circuit-breaker and connection policies, with Envoy/Istio defaults.
//! - [`cluster`] and [`config`]: the clusters routes name (a service, a
//!   subset of its endpoints, a policy) and the [`MeshConfig`] snapshot of
//!   routes and clusters a client routes by.
//! - [`route`]: route tables with Envoy's RDS semantics (virtual hosts,
//!   ordered routes, weighted splits, rewrites, faults, mirrors, hashing).
//! - [`gateway`]: what a gateway proxy serves: ports, servers, the TLS
//!   they terminate.
//! - [`registry`]: the services that exist (host names, ports) and the
//!   workload instances serving them, for a control plane without
//!   Kubernetes.
//! - [`security`]: what a server asks of its callers: mutual TLS
//!   ([`MtlsMode`](security::MtlsMode)) and authorization
//!   ([`Rbac`](security::Rbac)).
//! - [`sidecar`]: what a sidecar proxy listens on for its workload and
//!   for the hosts it reaches.
//! - [`telemetry`]: who a workload is, as its peers and its metrics
//!   name it ([`WorkloadMetadata`](telemetry::WorkloadMetadata)).
//! - [`trace`]: trace context in request headers (W3C, B3), read and
//!   written as Istio's proxies propagate it.
//! - [`outcome`]: how an attempt ended (a response, or a classified
//!   failure), which the retry and outlier layers decide from.
//!
//! Istio's YAML is read into these values by the `mesh-istio` crate.

pub mod cluster;
pub mod config;
pub mod endpoint;
pub mod gateway;
pub mod name;
pub mod outcome;
pub mod policy;
pub mod registry;
pub mod resolve;
pub mod route;
pub mod security;
pub mod sidecar;
pub mod telemetry;
pub mod trace;

pub use cluster::{Cluster, Discovery};
pub use config::{ConfigError, MeshConfig};
pub use endpoint::{DropOverload, Endpoint, EndpointSet, Health, Locality};
pub use name::{Authority, InvalidAuthority, KubernetesNames};
pub use outcome::{FailureKind, GrpcCode, Outcome, UpstreamError};
pub use policy::ClusterPolicy;
pub use registry::Registry;
pub use resolve::{Resolution, Resolve, ResolveError, ResolveState, ResolveTarget, StaticResolve};
pub use route::{RouteError, RouteTable};
