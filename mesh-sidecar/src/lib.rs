//! `mesh-sidecar`: the mesh for an application that cannot link it, as
//! Istio's Envoy sidecar gives it to a pod. It is wiring only, of the
//! library's parts:
//!
//! - the outbound listener (`127.0.0.1:15001`) is a plain-text
//!   [`MeshServer`](mesh_tower::MeshServer) whose service is the mesh's
//!   [`MeshClient`](mesh_tower::MeshClient) behind
//!   [`proxy::Outbound`](mesh_tower::proxy::Outbound), reported as the
//!   library reports its clients;
//! - the inbound listener (`0.0.0.0:15006`) is the mesh's server, with its
//!   mutual TLS, authorization and metrics, whose service is
//!   [`proxy::Inbound`](mesh_tower::proxy::Inbound) to the application's
//!   port;
//! - the admin (`127.0.0.1:15000`) is the library's, with the lifecycle
//!   endpoints.
//!
//! [`gateway`] is the ingress gateway: Istio's Gateways and the
//! VirtualServices bound to them, over the mesh's client.
//!
//! [`iptables`] installs the rules that send a pod's traffic through it
//! without the application knowing (Istio's init container's), and the
//! outbound listener then takes each redirected connection by its
//! original destination ([`proxy::intercept`](mesh_tower::proxy::intercept)).
//!
//! Its configuration comes from a control plane ([`source`]): a gRPC
//! bootstrap, an xDS address, or a directory of Istio YAML served by a
//! control plane inside the process.

pub mod cli;
pub mod gateway;
pub mod iptables;
pub mod lifecycle;
pub mod sidecar;
pub mod source;
