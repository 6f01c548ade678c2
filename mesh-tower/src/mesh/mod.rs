//! [`Mesh`]: the one handle an application holds. It keeps the workload's
//! identity (its certificates, as they rotate), its discovery (an xDS
//! control plane, DNS, or any [`Resolve`]) and hands out clients, tonic
//! channels and servers that share them:
//!
//! ```no_run
//! # #[cfg(all(feature = "xds", feature = "dns"))]
//! # async fn run() -> Result<(), mesh_tower::BoxError> {
//! use mesh_tower::Mesh;
//! use tower::ServiceExt;
//!
//! // GRPC_XDS_BOOTSTRAP (or _CONFIG) names a control plane and the
//! // workload's certificates; else DNS as /etc/resolv.conf says.
//! let mesh = Mesh::from_env()?;
//! let http = mesh.client();
//! let req = http::Request::get("http://reviews:9080/reviews/0").body(http_body_util::Empty::<bytes::Bytes>::new())?;
//! let res = http.oneshot(req).await?;
//! let channel = mesh.channel::<tonic::body::Body>("xds:///ratings.default.svc.cluster.local:9080")?;
//! # let app = tower::service_fn(|_req: http::Request<mesh_tower::server::Body>| async {
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
//! # });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9080").await?;
//! mesh.server().serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! What [`from_env`](Mesh::from_env) reads, [`MeshBuilder`] takes in
//! code.

mod builder;

use std::sync::Arc;

use bytes::Bytes;
use mesh_core::Resolve;
use mesh_core::telemetry::WorkloadMetadata;
use prometheus_client::registry::Registry;

pub use builder::{MeshBuilder, MeshError};

use crate::admin::{Admin, AdminBuilder};
use crate::client::{InvalidTarget, MeshChannel, MeshClientBuilder};
use crate::metrics::{
    IstioMetrics, IstioMetricsLayer, IstioMetricsService, LocalWorkload, Reporter,
};
use crate::server::MeshServerBuilder;
use crate::tls::IdentitySource;
use crate::trace::{Sampler, Trace, TraceLayer};
use crate::{BoxError, MeshClient};

/// A client whose requests are traced and recorded ([`Mesh::reported`]).
pub type Reported<S> = Trace<IstioMetricsService<S>>;

/// The workload's identity and discovery, handing out clients and
/// servers that use them; clones share them.
#[derive(Clone)]
pub struct Mesh {
    inner: Arc<Inner>,
}

struct Inner {
    resolve: Arc<dyn Resolve>,
    identity: Option<IdentitySource>,
    workload: Option<WorkloadMetadata>,
    access_log: Option<crate::access_log::AccessLog>,
    metrics: IstioMetrics,
    #[cfg(feature = "xds")]
    ads: Option<mesh_xds::ads::AdsHandle>,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Mesh");
        d.field("identity", &self.inner.identity);
        #[cfg(feature = "xds")]
        d.field("xds", &self.inner.ads.is_some());
        d.finish_non_exhaustive()
    }
}

impl Mesh {
    /// A builder: discovery and identity given in code.
    pub fn builder() -> MeshBuilder {
        MeshBuilder::default()
    }

    /// The mesh the environment describes (features `xds` and `dns`): the
    /// xDS bootstrap `GRPC_XDS_BOOTSTRAP` or `GRPC_XDS_BOOTSTRAP_CONFIG`
    /// names (the control plane, the node, and the workload's certificates
    /// as its certificate provider `default`), else DNS discovery with the
    /// name servers and search domains of `/etc/resolv.conf` (in a pod,
    /// Kubernetes' own) and no identity. Must be called within a Tokio
    /// runtime.
    #[cfg(all(feature = "xds", feature = "dns"))]
    pub fn from_env() -> Result<Self, MeshError> {
        MeshBuilder::from_env()?.build()
    }

    /// The workload's identity, if the mesh has one.
    pub fn identity(&self) -> Option<&IdentitySource> {
        self.inner.identity.as_ref()
    }

    /// The ADS client, if the mesh follows a control plane.
    #[cfg(feature = "xds")]
    pub fn ads(&self) -> Option<&mesh_xds::ads::AdsHandle> {
        self.inner.ads.as_ref()
    }

    /// A client builder with the mesh's discovery and identity, for
    /// policies of its own.
    pub fn client_builder(&self) -> MeshClientBuilder {
        let mut builder = MeshClient::builder(self.inner.resolve.clone());
        if let Some(identity) = &self.inner.identity {
            builder = builder.identity(identity.clone());
        }
        if let Some(workload) = &self.inner.workload {
            builder = builder.metadata(workload);
        }
        #[cfg(feature = "xds")]
        if let Some(ads) = &self.inner.ads {
            builder = builder.xds(ads.clone());
        }
        builder
    }

    /// A new client with the mesh's discovery and identity. Each call
    /// makes a client of its own, with its own connections: make one and
    /// clone it.
    pub fn client<B>(&self) -> MeshClient<B>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        self.client_builder().build()
    }

    /// A tonic channel to `target` (`xds:///HOST:PORT` with a control
    /// plane, `dns:///HOST:PORT` or `HOST:PORT` without), over a new
    /// [`client`](Self::client).
    pub fn channel<B>(&self, target: &str) -> Result<MeshChannel<B>, InvalidTarget>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        self.client().channel_to(target)
    }

    /// `client` (of this mesh's [`client_builder`](Self::client_builder))
    /// with its requests recorded in the mesh's [`metrics`](Self::metrics)
    /// (`reporter="source"`) and its [access log](MeshBuilder::access_log),
    /// and a client span for each ([`trace`](crate::trace)): a child of
    /// the context a handler copied into the request with
    /// [`propagate`](crate::trace::propagate).
    /// `client` is sent each request's body as a
    /// [`CountedBody`](crate::metrics::CountedBody), so that its bytes and
    /// gRPC messages are counted: `mesh.reported(mesh.client())` infers
    /// it.
    pub fn reported<S>(&self, client: S) -> Reported<S> {
        use tower::Layer;
        let local = LocalWorkload {
            metadata: Arc::new(self.inner.workload.clone().unwrap_or_default()),
            principal: self.principal(),
            service: None,
        };
        let mut metrics =
            IstioMetricsLayer::new(self.inner.metrics.clone(), Reporter::Source, local);
        if let Some(log) = &self.inner.access_log {
            metrics = metrics.access_log(log.clone());
        }
        TraceLayer::client(Sampler::default()).layer(metrics.layer(client))
    }

    /// The mesh's request metrics: its servers' and its reported clients'.
    pub fn metrics(&self) -> &IstioMetrics {
        &self.inner.metrics
    }

    /// The admin endpoint ([`admin`](crate::admin)) for `registry` (the
    /// application's own metrics, if any), the mesh's request metrics, its
    /// certificate and its xDS client; add its clients and servers, then
    /// serve it on a listener, `127.0.0.1:15000` as Envoy's.
    pub fn admin(&self, mut registry: Registry) -> AdminBuilder {
        self.inner.metrics.register(&mut registry);
        let mut admin = Admin::builder(registry);
        if let Some(identity) = &self.inner.identity {
            admin = admin.identity(identity.clone());
        }
        #[cfg(feature = "xds")]
        if let Some(ads) = &self.inner.ads {
            admin = admin.xds("mesh", ads);
        }
        admin
    }

    /// The workload's SPIFFE id, if it has an identity.
    fn principal(&self) -> Option<Arc<str>> {
        let identity = self.inner.identity.as_ref()?.current()?;
        Some(identity.id().to_string().into())
    }

    /// A server builder with the mesh's identity, and with a control
    /// plane its inbound policy from the listener for the address it
    /// serves (gRFC A36); `STRICT` mutual TLS otherwise until told. Its
    /// requests are recorded in the mesh's [`metrics`](Self::metrics) when
    /// the mesh knows its [`workload`](MeshBuilder::workload).
    pub fn server(&self) -> MeshServerBuilder {
        let mut builder = crate::MeshServer::builder();
        if let Some(identity) = &self.inner.identity {
            builder = builder.identity(identity.clone());
        }
        if let Some(workload) = &self.inner.workload {
            builder = builder.metrics(self.inner.metrics.clone(), workload.clone(), None);
            if let Some(log) = &self.inner.access_log {
                builder = builder.access_log(log.clone());
            }
        }
        #[cfg(feature = "xds")]
        if let Some(ads) = &self.inner.ads {
            builder = builder.xds(ads.clone());
        }
        builder
    }
}
