//! [`IstioMetricsLayer`]: records each request of a service in
//! [`IstioMetrics`], at the server (`reporter="destination"`: the caller
//! from its certificate and the metadata it sent) or at the client
//! (`reporter="source"`: the server from its certificate and the metadata
//! it answered with). The request is recorded when its response body
//! ends ([`MeasuredBody`]); one that fails before a response is recorded
//! with code 0.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, Request, Response};
use mesh_core::security::ClientIdentity;
use mesh_core::telemetry::WorkloadMetadata;
use pin_project::pin_project;
use tower::{Layer, Service};

use super::body::{MeasuredBody, Pending};
use super::{GrpcStatus, IstioMetrics, Peer, Reporter, RequestLabels, ServiceLabels};
use crate::access_log::{AccessLog, Entry};
use crate::body::ResponseFlag;
use crate::endpoint::UpstreamHost;
use crate::metadata_exchange::PeerMetadata;
use crate::split::SelectedCluster;
use crate::tls::PeerIdentity;

/// This workload, as its metrics name it.
#[derive(Clone, Debug, Default)]
pub struct LocalWorkload {
    /// Its metadata.
    pub metadata: Arc<WorkloadMetadata>,
    /// Its SPIFFE id, when it has one.
    pub principal: Option<Arc<str>>,
    /// At a server: the host name of the service it serves
    /// (`reviews.default.svc.cluster.local`), for `destination_service`.
    pub service: Option<Arc<str>>,
}

/// Records requests in [`IstioMetrics`] as `reporter` (or, made
/// [`disabled`](Self::disabled), records nothing).
#[derive(Clone, Debug)]
pub struct IstioMetricsLayer {
    shared: Option<Arc<Shared>>,
}

#[derive(Debug)]
struct Shared {
    metrics: IstioMetrics,
    reporter: Reporter,
    local: LocalWorkload,
    access_log: Option<AccessLog>,
    /// At a server: the service it serves, as labels.
    served: Option<ServiceLabels>,
    /// At a client: the labels of the services it has called.
    services: RwLock<HashMap<Arc<str>, ServiceLabels>>,
}

/// How many services' labels a client keeps; past that they are made per
/// request.
const SERVICES: usize = 1024;

impl Shared {
    fn new(
        metrics: IstioMetrics,
        reporter: Reporter,
        local: LocalWorkload,
        access_log: Option<AccessLog>,
    ) -> Self {
        let served = match reporter {
            Reporter::Destination => local
                .service
                .as_deref()
                .or(local.metadata.canonical_service.as_deref())
                .map(ServiceLabels::of),
            Reporter::Source => None,
        };
        Self {
            metrics,
            reporter,
            local,
            access_log,
            served,
            services: RwLock::default(),
        }
    }

    /// The labels of the service `host`, made on its first request.
    fn service(&self, host: &str) -> ServiceLabels {
        let known = self.services.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(labels) = known.get(host) {
            return labels.clone();
        }
        drop(known);
        let labels = ServiceLabels::of(host);
        let mut known = self
            .services
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if known.len() < SERVICES {
            known.insert(host.into(), labels.clone());
        }
        labels
    }
}

impl IstioMetricsLayer {
    /// Records in `metrics`, as `reporter`, for the workload `local`.
    pub fn new(metrics: IstioMetrics, reporter: Reporter, local: LocalWorkload) -> Self {
        Self {
            shared: Some(Arc::new(Shared::new(metrics, reporter, local, None))),
        }
    }

    /// Also writes each request's line to `log` ([`access_log`](crate::access_log)).
    pub fn access_log(self, log: AccessLog) -> Self {
        let shared = self.shared.map(|shared| {
            Arc::new(Shared::new(
                shared.metrics.clone(),
                shared.reporter,
                shared.local.clone(),
                Some(log),
            ))
        });
        Self { shared }
    }

    /// Records nothing: the bodies pass as they are.
    pub fn disabled() -> Self {
        Self { shared: None }
    }
}

impl<S> Layer<S> for IstioMetricsLayer {
    type Service = IstioMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        IstioMetricsService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service of [`IstioMetricsLayer`].
#[derive(Clone, Debug)]
pub struct IstioMetricsService<S> {
    inner: S,
    shared: Option<Arc<Shared>>,
}

/// What is known of a request when it is sent on.
#[derive(Debug)]
struct Started {
    shared: Arc<Shared>,
    start: Instant,
    request_bytes: u64,
    grpc: bool,
    /// At a server: the caller's metadata and certificate.
    caller: Option<(Option<PeerMetadata>, Option<ClientIdentity>)>,
    /// At a client: the authority the request was for.
    authority: Option<http::uri::Authority>,
    /// With an access log: the request's line so far.
    entry: Option<Box<Entry>>,
}

impl<S, B, R> Service<Request<B>> for IstioMetricsService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Error: 'static,
    R: http_body::Body,
{
    type Response = Response<MeasuredBody<R>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Some(shared) = &self.shared else {
            return ResponseFuture {
                inner: self.inner.call(req),
                started: None,
            };
        };
        let grpc = is_grpc(req.headers());
        let caller = (shared.reporter == Reporter::Destination).then(|| {
            let extensions = req.extensions();
            (
                extensions.get::<PeerMetadata>().cloned(),
                extensions.get::<ClientIdentity>().cloned(),
            )
        });
        let authority = (shared.reporter == Reporter::Source)
            .then(|| req.uri().authority().cloned())
            .flatten();
        let entry = shared.access_log.as_ref().map(|_| {
            let headers = req.headers();
            Box::new(Entry {
                start_time: SystemTime::now(),
                method: req.method().clone(),
                uri: req.uri().clone(),
                protocol: req.version(),
                response_code: 0,
                response_flags: "-",
                bytes_received: 0,
                bytes_sent: 0,
                duration: Duration::ZERO,
                upstream_host: None,
                upstream_cluster: String::new(),
                request_id: headers.get("x-request-id").cloned(),
                user_agent: headers.get(http::header::USER_AGENT).cloned(),
                peer: None,
            })
        });
        let started = Started {
            shared: shared.clone(),
            start: Instant::now(),
            request_bytes: head_bytes(req.headers()) + content_length(req.headers()),
            grpc,
            caller,
            authority,
            entry,
        };
        ResponseFuture {
            inner: self.inner.call(req),
            started: Some(started),
        }
    }
}

/// Resolves to the response, its body measured.
#[pin_project]
#[derive(Debug)]
pub struct ResponseFuture<F> {
    #[pin]
    inner: F,
    /// `None` when nothing is recorded.
    started: Option<Started>,
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
    R: http_body::Body,
    E: 'static,
{
    type Output = Result<Response<MeasuredBody<R>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let Some(mut started) = this.started.take() else {
            return Poll::Ready(result.map(|res| res.map(|body| MeasuredBody::new(body, None))));
        };
        Poll::Ready(match result {
            Ok(res) => {
                let mut labels = started.labels(&res);
                labels.response_code = res.status().as_u16();
                if let Some(ResponseFlag(flag)) = res.extensions().get::<ResponseFlag>() {
                    labels.response_flags = flag;
                }
                if let Some(status) = grpc_status(res.headers()) {
                    labels.grpc_response_status = GrpcStatus(Some(status));
                }
                let upstream = res.extensions().get::<UpstreamHost>().map(|h| h.0);
                let log = started.log(&labels, upstream);
                let pending = Pending {
                    metrics: started.shared.metrics.clone(),
                    labels,
                    start: started.start,
                    request_bytes: started.request_bytes,
                    response_bytes: head_bytes(res.headers()),
                    response_messages: started.grpc.then(Default::default),
                    log,
                };
                Ok(res.map(|body| MeasuredBody::new(body, Some(pending))))
            }
            Err(e) => {
                let mut labels = started.labels_without_response();
                labels.response_code = 0;
                labels.response_flags = failure_flag(&e);
                let log = started.log(&labels, None);
                Pending {
                    metrics: started.shared.metrics.clone(),
                    labels,
                    start: started.start,
                    request_bytes: started.request_bytes,
                    response_bytes: 0,
                    response_messages: started.grpc.then(Default::default),
                    log,
                }
                .record();
                Err(e)
            }
        })
    }
}

impl Started {
    /// The access log and the request's line, with what `labels` and the
    /// answering endpoint say, if there is a log.
    fn log(
        &mut self,
        labels: &RequestLabels,
        upstream: Option<std::net::SocketAddr>,
    ) -> Option<(AccessLog, Box<Entry>)> {
        let log = self.shared.access_log.clone()?;
        let mut entry = self.entry.take()?;
        entry.upstream_host = upstream;
        entry.upstream_cluster = labels.destination_service.to_string();
        let peer = match self.shared.reporter {
            Reporter::Destination => &labels.source_principal,
            Reporter::Source => &labels.destination_principal,
        };
        entry.peer = (&**peer != super::UNKNOWN).then(|| peer.to_string());
        Some((log, entry))
    }

    /// The labels, with what the response says of the server and of the
    /// cluster that answered (an Istio cluster, `outbound|PORT|SUBSET|HOST`,
    /// names the service's host).
    fn labels<R>(&self, res: &Response<R>) -> RequestLabels {
        let server = res.extensions().get::<PeerMetadata>();
        let principal = res
            .extensions()
            .get::<PeerIdentity>()
            .map(|p| Arc::<str>::from(p.0.as_str()));
        let cluster_host = res
            .extensions()
            .get::<SelectedCluster>()
            .and_then(|SelectedCluster(cluster)| cluster.as_str().strip_prefix("outbound|"))
            .and_then(|rest| rest.rsplit('|').next().filter(|h| !h.is_empty()));
        self.labels_with(server, principal.as_ref(), cluster_host)
    }

    fn labels_without_response(&self) -> RequestLabels {
        self.labels_with(None, None, None)
    }

    /// The labels, the server known by `server` and `server_principal`
    /// at a client, and the service by `cluster_host` (else the request's
    /// host) at a client.
    fn labels_with(
        &self,
        server: Option<&PeerMetadata>,
        server_principal: Option<&Arc<str>>,
        cluster_host: Option<&str>,
    ) -> RequestLabels {
        let shared = &self.shared;
        let local = Peer {
            metadata: Some(&shared.local.metadata),
            principal: shared.local.principal.as_ref(),
        };
        let mut labels = match &self.caller {
            Some((metadata, identity)) => {
                let caller = Peer {
                    metadata: metadata.as_ref().map(|m| &*m.0),
                    principal: identity.as_ref().map(|i| &i.0),
                };
                let mut labels = RequestLabels::edge(Reporter::Destination, caller, local);
                labels.connection_security_policy = if identity.is_some() {
                    "mutual_tls"
                } else {
                    "none"
                };
                labels
            }
            None => {
                let server = Peer {
                    metadata: server.map(|m| &*m.0),
                    principal: server_principal,
                };
                RequestLabels::edge(Reporter::Source, local, server)
            }
        };
        let service = match shared.reporter {
            Reporter::Destination => shared.served.clone(),
            Reporter::Source => cluster_host
                .or(self.authority.as_ref().map(http::uri::Authority::host))
                .map(|host| shared.service(host)),
        };
        if let Some(service) = &service {
            labels = labels.with_service(service);
        }
        if self.grpc {
            labels.request_protocol = "grpc";
        }
        labels
    }
}

/// Envoy's response flag for a request that failed with `e`: the mesh's
/// own errors by their kind ([`classify`](crate::classify)), `-` for
/// others.
fn failure_flag<E: 'static>(e: &E) -> &'static str {
    match (e as &dyn std::any::Any).downcast_ref::<crate::BoxError>() {
        Some(e) => crate::classify(&**e).response_flag(),
        None => "-",
    }
}

/// Whether a request is gRPC, by its content type.
fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The `grpc-status` in `headers`, if any.
pub(super) fn grpc_status(headers: &HeaderMap) -> Option<u16> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

/// The size of a head's headers, as HTTP/1.1 writes them.
fn head_bytes(headers: &HeaderMap) -> u64 {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().len() + value.len() + 4) as u64)
        .sum()
}

/// The body size a head announces.
fn content_length(headers: &HeaderMap) -> u64 {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0)
}
