//! [`MeshServerBuilder`]: a [`MeshServer`]'s identity, inbound policy and
//! edge limits.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use mesh_core::security::{InboundPolicy, MtlsMode, Rbac};
use tokio::net::TcpListener;
use tower::Service;

use mesh_core::telemetry::WorkloadMetadata;

use super::{Body, MeshServer, ServerStats, ServingMode, Shared, Telemetry};
use crate::BoxError;
use crate::access_log::AccessLog;
use crate::authorize::SharedPolicy;
use crate::metadata_exchange::{self, MetadataExchangeLayer, Side};
use crate::metrics::{IstioMetrics, IstioMetricsLayer, LocalWorkload, Reporter};
use crate::tls::{IdentitySource, MeshTlsAcceptor, TlsTermination};
use crate::trace::{Sampler, SpanSink, TraceLayer};

/// The request head size a server takes by default, as Envoy's
/// `max_request_headers_kb` (60 KiB).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 60 * 1024;

/// How long a connection has for its TLS handshake and each request head,
/// by default.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long open connections have to finish after shutdown, by default
/// (Istio's `terminationDrainDuration`, 5 s).
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The least request head size hyper takes.
const MIN_HEADER_BYTES: usize = 8 * 1024;

/// A server that cannot be built as configured.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Mutual TLS was asked for without an identity to present.
    #[error("{0:?} mutual TLS needs the workload's identity: give the server one, or use DISABLE")]
    NoIdentity(MtlsMode),
}

/// Builds a [`MeshServer`].
#[derive(Debug)]
pub struct MeshServerBuilder {
    identity: Option<IdentitySource>,
    policy: InboundPolicy,
    max_header_bytes: usize,
    header_read_timeout: Duration,
    drain_timeout: Duration,
    http2_keepalive: Option<(Duration, Duration)>,
    telemetry: Option<(IstioMetrics, WorkloadMetadata, Option<String>)>,
    sampler: Sampler,
    spans: Option<SpanSink>,
    access_log: Option<AccessLog>,
    filter: Option<super::ConnectionFilter>,
    termination: Option<TlsTermination>,
    #[cfg(feature = "xds")]
    xds: Option<mesh_xds::ads::AdsHandle>,
    #[cfg(feature = "xds")]
    xds_address: Option<std::net::SocketAddr>,
}

impl Default for MeshServerBuilder {
    fn default() -> Self {
        Self {
            identity: None,
            policy: InboundPolicy {
                mtls: MtlsMode::Strict,
                rbac: Vec::new(),
            },
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            http2_keepalive: None,
            telemetry: None,
            sampler: Sampler::default(),
            spans: None,
            access_log: None,
            filter: None,
            termination: None,
            #[cfg(feature = "xds")]
            xds: None,
            #[cfg(feature = "xds")]
            xds_address: None,
        }
    }
}

impl MeshServerBuilder {
    /// The workload's identity: the certificate the server presents and
    /// the roots its clients' certificates must chain to, as it rotates.
    pub fn identity(mut self, identity: impl Into<IdentitySource>) -> Self {
        self.identity = Some(identity.into());
        self
    }

    /// How the port takes mutual TLS (`STRICT` unless set).
    pub fn mtls(mut self, mode: MtlsMode) -> Self {
        self.policy.mtls = mode;
        self
    }

    /// The authorization filters every request must pass, in order (an
    /// Istio `AuthorizationPolicy` as [`mesh_istio`]'s `authorization`
    /// converts it, or written in code).
    pub fn rbac(mut self, filters: Vec<Rbac>) -> Self {
        self.policy.rbac = filters;
        self
    }

    /// The whole inbound policy at once.
    pub fn policy(mut self, policy: InboundPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The largest request head taken (at least 8 KiB); a larger one is
    /// answered `431`.
    pub fn max_header_bytes(mut self, max: usize) -> Self {
        self.max_header_bytes = max.max(MIN_HEADER_BYTES);
        self
    }

    /// How long a connection has to finish its TLS handshake, and each
    /// HTTP/1.1 request its head, before it is closed.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long connections open at shutdown have to finish.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Pings every HTTP/2 connection each `interval` and closes one whose
    /// ping is not answered within `timeout`: finds clients gone without
    /// closing, whose long-lived streams (an ADS stream, a watch) would
    /// otherwise stay. Off unless set.
    pub fn http2_keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.http2_keepalive = Some((interval, timeout));
        self
    }

    /// Takes the inbound policy from the control plane `ads` follows
    /// (feature `xds`; gRFC A36, as the [`server`](super) module says): the listener the
    /// bootstrap names for the address served, and the identity of the
    /// bootstrap's certificate provider `default` unless
    /// [`identity`](Self::identity) gives one. Until that listener has
    /// come the server is not serving, and the policy set here is
    /// replaced by the listener's.
    #[cfg(feature = "xds")]
    pub fn xds(mut self, ads: mesh_xds::ads::AdsHandle) -> Self {
        self.xds = Some(ads);
        self
    }

    /// With [`xds`](Self::xds), the address the control plane knows the
    /// server by, when it is not the one it listens on: a sidecar's
    /// inbound listener (`0.0.0.0:15006`) serves the application's port,
    /// and asks for that port's listener (`…/inbound/10.0.0.5:9080`).
    #[cfg(feature = "xds")]
    pub fn xds_address(mut self, addr: std::net::SocketAddr) -> Self {
        self.xds_address = Some(addr);
        self
    }

    /// Hands each accepted connection to `filter` first, as Envoy's
    /// listener filters see it: it gives the connection back to be served
    /// as HTTP, or keeps it (an intercepted connection of another protocol
    /// passed through, [`proxy::intercept`](crate::proxy::intercept)).
    pub fn connection_filter(mut self, filter: super::ConnectionFilter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Terminates TLS with the certificates of a gateway's servers, each
    /// chosen by the server name a client asks for, instead of taking the
    /// mesh's mutual TLS: a connection's requests are routed by its
    /// server's route table, plain text is refused, and the mutual TLS
    /// mode does not apply. Swapped with [`MeshServer::set_tls_termination`].
    pub fn tls_termination(mut self, termination: TlsTermination) -> Self {
        self.termination = Some(termination);
        self
    }

    /// The server; refused when its mode asks for mutual TLS and it has
    /// no identity (with xDS, the listener's mode decides, when it comes).
    #[cfg_attr(not(feature = "xds"), allow(unused_mut))]
    pub fn build(mut self) -> Result<MeshServer, ServerError> {
        let mut mode = ServingMode::Serving;
        #[cfg(feature = "xds")]
        if let Some(ads) = &self.xds {
            if self.identity.is_none() {
                self.identity = match crate::tls::bootstrap_identity(ads.bootstrap()) {
                    Some(Ok(identity)) => Some(identity),
                    Some(Err(reason)) => {
                        tracing::warn!(reason, "the server has no identity");
                        None
                    }
                    None => None,
                };
            }
            mode = super::xds::waiting();
        }
        if self.identity.is_none()
            && self.termination.is_none()
            && self.policy.mtls != MtlsMode::Disable
            && mode == ServingMode::Serving
        {
            return Err(ServerError::NoIdentity(self.policy.mtls));
        }
        let mut http = auto::Builder::new(TokioExecutor::new());
        http.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .max_buf_size(self.max_header_bytes);
        http.http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.max_header_bytes).unwrap_or(u32::MAX));
        if let Some((interval, timeout)) = self.http2_keepalive {
            http.http2()
                .keep_alive_interval(interval)
                .keep_alive_timeout(timeout);
        }
        let principal = self
            .identity
            .as_ref()
            .and_then(IdentitySource::current)
            .map(|identity| Arc::<str>::from(identity.id().to_string()));
        let telemetry = self.telemetry.map(|(metrics, workload, service)| {
            let exchange = MetadataExchangeLayer::new(
                Side::Server,
                &workload,
                metadata_exchange::node_id(&workload),
            );
            let local = LocalWorkload {
                metadata: Arc::new(workload),
                principal,
                service: service.map(Arc::from),
            };
            Telemetry {
                trace: match self.spans {
                    Some(sink) => TraceLayer::server(self.sampler).export(sink),
                    None => TraceLayer::server(self.sampler),
                },
                exchange,
                metrics: match self.access_log {
                    Some(log) => IstioMetricsLayer::new(metrics, Reporter::Destination, local)
                        .access_log(log),
                    None => IstioMetricsLayer::new(metrics, Reporter::Destination, local),
                },
            }
        });
        Ok(MeshServer {
            shared: Arc::new(Shared {
                telemetry,
                policy: SharedPolicy::new(self.policy),
                tls: self.identity.as_ref().map(MeshTlsAcceptor::new),
                http,
                header_read_timeout: self.header_read_timeout,
                drain_timeout: self.drain_timeout,
                stats: ServerStats::default(),
                filter: self.filter,
                termination: arc_swap::ArcSwapOption::from(self.termination.map(Arc::new)),
                mode: tokio::sync::watch::Sender::new(mode),
                #[cfg(feature = "xds")]
                xds: self.xds,
                #[cfg(feature = "xds")]
                xds_address: self.xds_address,
            }),
        })
    }

    /// Reports every request in `metrics` as Istio's sidecars do
    /// (`reporter="destination"`), this server being the workload
    /// `workload` serving `service` (its host name,
    /// `reviews.default.svc.cluster.local`; the canonical service if not
    /// given); and exchanges metadata with callers that send theirs
    /// ([`metadata_exchange`]), so the caller's labels are known; and
    /// starts a server span for each request ([`trace`](crate::trace)),
    /// its context a [`TraceContext`](crate::trace::TraceContext) the
    /// handler passes on with [`propagate`](crate::trace::propagate).
    pub fn metrics(
        mut self,
        metrics: IstioMetrics,
        workload: WorkloadMetadata,
        service: Option<&str>,
    ) -> Self {
        self.telemetry = Some((metrics, workload, service.map(str::to_owned)));
        self
    }

    /// With [`metrics`](Self::metrics), also writes a line for each
    /// request to `log` ([`access_log`](crate::access_log)).
    pub fn access_log(mut self, log: AccessLog) -> Self {
        self.access_log = Some(log);
        self
    }

    /// With [`metrics`](Self::metrics), hands each sampled server span to
    /// `sink` ([`OtlpExporter`](crate::trace::OtlpExporter), say).
    pub fn spans(mut self, sink: SpanSink) -> Self {
        self.spans = Some(sink);
        self
    }

    /// Samples new traces as `sampler` says (Istio's 1 % unless told).
    pub fn sampling(mut self, sampler: Sampler) -> Self {
        self.sampler = sampler;
        self
    }

    /// Builds the server and serves `service` on `listener` until the
    /// task is dropped.
    pub async fn serve<S, B>(self, listener: TcpListener, service: S) -> Result<(), ServerError>
    where
        S: Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.build()?.serve(listener, service).await;
        Ok(())
    }
}
