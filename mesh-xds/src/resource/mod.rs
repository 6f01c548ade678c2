//! xDS resources turned into mesh values at the edge: nothing past this
//! module sees a proto.
//!
//! Each resource type converts with `TryFrom<&proto>` into a value of this
//! module, built from `mesh-core` types:
//!
//! | xDS resource | converted into |
//! |---|---|
//! | `Listener` (LDS) | [`XdsListener`]: where its routes come from and its HTTP filter chain |
//! | `RouteConfiguration` (RDS) | [`XdsRouteConfig`]: a checked [`RouteTable`](mesh_core::RouteTable) |
//! | `Cluster` (CDS) | [`XdsCluster`]: a [`ClusterPolicy`](mesh_core::ClusterPolicy), its [`Discovery`] and transport sockets |
//! | `ClusterLoadAssignment` (EDS) | [`XdsLoadAssignment`]: an [`EndpointSet`](mesh_core::EndpointSet) and drop overloads |
//! | `Secret` (SDS) | [`XdsSecret`]: a gateway server's certificate and key, or its client roots |
//!
//! A resource that cannot be converted is rejected whole — a NACK, never a
//! panic and never half a resource — with a [`ResourceError`] naming the
//! resource, the field and what is wrong, whose `Display` is the NACK's
//! `error_detail`. Parts that gRPC's xDS client would ignore are ignored
//! here too; the parts a conversion leaves out on purpose are listed as
//! [`Ignored`], for logs. Each module says which fields it reads and what
//! it rejects.

pub mod cluster;
pub mod endpoint;
mod error;
mod kind;
pub mod listener;
mod matcher;
pub(crate) mod proto;
mod rbac;
pub mod route;
pub mod secret;
mod tls_context;

pub use cluster::{Discovery, XdsCluster};
pub use endpoint::XdsLoadAssignment;
pub use error::{Ignored, ResourceError};
pub use kind::{Protocol, ResourceType};
pub use listener::{
    FilterKind, HttpFilter, PackedConfig, RouteSource, ServerTls, XdsGateway, XdsGatewayServer,
    XdsListener, XdsServer, XdsServerTls,
};
pub use route::XdsRouteConfig;
pub use secret::XdsSecret;
