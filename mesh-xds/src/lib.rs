//! xDS v3 for the mesh, as proxyless gRPC speaks it.
//!
//! - [`bootstrap`]: the gRPC xDS bootstrap (gRFC A27 and later): which
//!   control plane to talk to, as whom, and with which certificates; read
//!   from `GRPC_XDS_BOOTSTRAP` (a file) or `GRPC_XDS_BOOTSTRAP_CONFIG`
//!   (inline JSON), or built in code. A bootstrap file as Istio's agent
//!   writes it for proxyless gRPC loads unchanged.
//! - [`resource`]: xDS resources (listeners, routes, clusters,
//!   endpoints) turned into `mesh-core` values, or rejected with an error
//!   naming the field at fault, the text of a NACK.
//! - [`ads`]: the ADS client, state of the world or delta: a core without I/O
//!   (subscriptions that follow LDS → RDS → CDS → EDS, ACKs and NACKs
//!   (gRFC A46), deletions (A53), re-subscription on reconnect and the
//!   does-not-exist timer's bookkeeping), and [`ads::AdsClient`], the task
//!   that runs it over a gRPC stream (`StreamAggregatedResources` or
//!   `DeltaAggregatedResources`), reconnecting with backoff, and
//!   publishes the accepted resources.
//! - [`config`] and [`resolve`]: what the client accepted, as a client
//!   routes by it: a `MeshConfig` with one route table per target, and
//!   [`XdsResolve`], the endpoints of each cluster by its name.
//! - [`translate`]: the reverse of [`resource`]: route tables, clusters,
//!   endpoint sets and client listeners written as the xDS resources a
//!   proxyless client reads, in istiod's names and shapes
//!   ([`translate::service_port`]), each reading back through
//!   [`resource`] as the value it was written from, or refused with a
//!   [`translate::TranslateError`] naming what xDS cannot say.
//! - [`server`]: the ADS server, state of the world and delta, serving
//!   each client the [`server::ResourceCache`] of listeners, routes,
//!   clusters and endpoints its node is given ([`server::Snapshots`]; one
//!   cache may serve all), and recording each client's ACKs and NACKs.
//! - [`json`]: any xDS resource as protobuf JSON, the form people read
//!   them in (a control plane's config dump, `mesh-control translate`).
//!
//! Features, as hyper and tonic name theirs: [`resource`] is always
//! there;
//!
//! - `client` (the default): [`bootstrap`], [`ads`], [`config`] and
//!   [`resolve`], all a client needs;
//! - `server`: [`server`];
//! - `translate`: [`translate`];
//! - `json`: [`json`].
//!
//! A control plane takes them all; a client only the default.

#[cfg(feature = "client")]
pub mod ads;
#[cfg(feature = "client")]
pub mod bootstrap;
#[cfg(feature = "client")]
pub mod config;
#[cfg(feature = "json")]
pub mod json;
#[cfg(feature = "client")]
pub mod resolve;
pub mod resource;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "translate")]
pub mod translate;

#[cfg(feature = "client")]
pub use ads::AdsState;
#[cfg(feature = "client")]
pub use bootstrap::{Bootstrap, BootstrapError};
#[cfg(feature = "client")]
pub use config::{ConfigBuilder, TargetState};
#[cfg(feature = "client")]
pub use resolve::XdsResolve;
pub use resource::ResourceError;
