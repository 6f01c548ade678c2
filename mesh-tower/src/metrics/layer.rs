//! [`IstioMetricsLayer`]: records each request of a service in
//! [`IstioMetrics`], at the server (`reporter="destination"`: the caller
//! from its certificate and the metadata it sent) or at the client
//! (`reporter="source"`: the server from its certificate and the metadata
//! it answered with). The request is recorded when its response body
//! ends ([`MeasuredBody`]), with what its own body carried by then
//! ([`CountedBody`], which the inner service is given); one that fails
//! before a response is recorded with code 0.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, HeaderValue, Request, Response};
use mesh_core::route::ClusterName;
use mesh_core::security::ClientIdentity;
use mesh_core::telemetry::WorkloadMetadata;
use pin_project::pin_project;
use tower::{Layer, Service};

use super::body::{MeasuredBody, Pending};
use super::grpc::Tally;
use super::request::{Carried, CountedBody};
use super::{GrpcStatus, IstioMetrics, LabelsRef, Peer, Reporter, ServiceLabels};
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
        let room = known.len() < SERVICES;
        drop(known);
        let labels = ServiceLabels::of(host);
        if room {
            let mut known = self
                .services
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if known.len() < SERVICES {
                known.insert(host.into(), labels.clone());
            }
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
    /// A [`disabled`](Self::disabled) layer stays disabled and writes none.
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
    /// The request's head.
    request_bytes: u64,
    /// What its body carries, counted as it goes.
    request_body: Option<Arc<Carried>>,
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
    S: Service<Request<CountedBody<B>>, Response = Response<R>>,
    S::Error: 'static,
    B: http_body::Body,
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
                inner: self.inner.call(req.map(CountedBody::uncounted)),
                started: None,
            };
        };
        let grpc = crate::body::is_grpc(req.headers());
        // A request without a body (most GETs) has nothing to count.
        let mut request_body = None;
        let req = req.map(|body| {
            if body.is_end_stream() {
                return CountedBody::uncounted(body);
            }
            let (body, carried) = CountedBody::counted(body, grpc);
            request_body = Some(carried);
            body
        });
        let caller = (shared.reporter == Reporter::Destination).then(|| {
            let extensions = req.extensions();
            (
                extensions.get::<PeerMetadata>().cloned(),
                extensions.get::<ClientIdentity>().cloned(),
            )
        });
        // An origin-form request (one a sidecar takes) names its target
        // in `Host`.
        let authority = (shared.reporter == Reporter::Source)
            .then(|| {
                req.uri().authority().cloned().or_else(|| {
                    let host = req.headers().get(http::header::HOST)?;
                    http::uri::Authority::try_from(host.as_bytes()).ok()
                })
            })
            .flatten();
        let entry = shared.access_log.as_ref().map(|_| {
            let headers = req.headers();
            Box::new(Entry {
                start_time: SystemTime::now(),
                method: req.method().clone(),
                uri: req.uri().clone(),
                authority: match req.uri().authority() {
                    Some(a) => HeaderValue::from_str(a.as_str()).ok(),
                    None => headers.get(http::header::HOST).cloned(),
                },
                protocol: req.version(),
                response_code: 0,
                response_flags: "-",
                bytes_received: 0,
                bytes_sent: 0,
                duration: Duration::ZERO,
                upstream_host: None,
                upstream_cluster: None,
                request_id: headers.get("x-request-id").cloned(),
                user_agent: headers.get(http::header::USER_AGENT).cloned(),
                peer: None,
            })
        });
        let started = Started {
            shared: shared.clone(),
            start: Instant::now(),
            request_bytes: head_bytes(req.headers()),
            request_body,
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
        let Some(started) = this.started.take() else {
            return Poll::Ready(result.map(|res| res.map(|body| MeasuredBody::new(body, None))));
        };
        Poll::Ready(match result {
            Ok(res) => {
                let (mut edge, rest) = started.edge(Some(&res));
                edge.response_code = res.status().as_u16();
                if let Some(ResponseFlag(flag)) = res.extensions().get::<ResponseFlag>() {
                    edge.response_flags = flag;
                }
                if let Some(status) = grpc_status(res.headers()) {
                    edge.grpc_response_status = GrpcStatus(Some(status));
                }
                let extensions = res.extensions();
                let upstream = extensions.get::<UpstreamHost>().map(|h| h.0);
                let cluster = extensions.get::<SelectedCluster>().map(|c| c.0.clone());
                let pending = rest.pending(edge, head_bytes(res.headers()), upstream, cluster);
                Ok(res.map(|body| MeasuredBody::new(body, Some(pending))))
            }
            Err(e) => {
                let (mut edge, rest) = started.edge::<()>(None);
                edge.response_code = 0;
                edge.response_flags = failure_flag(&e);
                rest.pending(edge, 0, None, None).record();
                Err(e)
            }
        })
    }
}

/// What a request's labels are made of, held until its body ends: the
/// layer's own workload, the peer's metadata and principal and the
/// service, so that a request takes a few reference counts, not one per
/// label; its series is found by labels borrowed from them.
#[derive(Debug)]
pub(super) struct Edge {
    shared: Arc<Shared>,
    /// At a server the caller, at a client the server: what it said of
    /// itself, and the principal its certificate proves.
    peer: Option<Arc<WorkloadMetadata>>,
    peer_principal: Option<Arc<str>>,
    service: Option<ServiceLabels>,
    pub(super) grpc: bool,
    /// At a server: whether the caller came over mutual TLS.
    mutual_tls: bool,
    pub(super) response_code: u16,
    pub(super) grpc_response_status: GrpcStatus,
    pub(super) response_flags: &'static str,
}

impl Edge {
    /// Where the request is recorded.
    pub(super) fn metrics(&self) -> &IstioMetrics {
        &self.shared.metrics
    }

    /// The request's labels, borrowed.
    pub(super) fn labels(&self) -> LabelsRef<'_> {
        let shared = &*self.shared;
        let local = Peer {
            metadata: Some(&shared.local.metadata),
            principal: shared.local.principal.as_ref(),
        };
        let peer = Peer {
            metadata: self.peer.as_deref(),
            principal: self.peer_principal.as_ref(),
        };
        let mut labels = match shared.reporter {
            Reporter::Destination => {
                let mut labels = LabelsRef::edge(Reporter::Destination, peer, local);
                labels.connection_security_policy = if self.mutual_tls {
                    "mutual_tls"
                } else {
                    "none"
                };
                labels
            }
            Reporter::Source => LabelsRef::edge(Reporter::Source, local, peer),
        };
        if let Some(service) = &self.service {
            labels = labels.with_service(service);
        }
        if self.grpc {
            labels.request_protocol = "grpc";
        }
        labels.response_code = self.response_code;
        labels.grpc_response_status = self.grpc_response_status;
        labels.response_flags = self.response_flags;
        labels
    }
}

/// What [`Started`] keeps once its [`Edge`] is made.
struct Rest {
    start: Instant,
    request_bytes: u64,
    request_body: Option<Arc<Carried>>,
    log: Option<(AccessLog, Box<Entry>)>,
}

impl Rest {
    /// What is recorded when the response (whose head is
    /// `response_bytes`) ends, with the access log's line if there is a
    /// log: what `edge`, the answering endpoint and the cluster the route
    /// chose say.
    fn pending(
        self,
        edge: Edge,
        response_bytes: u64,
        upstream: Option<std::net::SocketAddr>,
        cluster: Option<ClusterName>,
    ) -> Pending {
        let log = self.log.map(|(log, mut entry)| {
            entry.upstream_host = upstream;
            entry.upstream_cluster = cluster.or_else(|| {
                let service = edge.service.as_ref()?;
                Some(ClusterName::new(service.shared_host().clone()))
            });
            entry.peer = edge.peer_principal.clone();
            (log, entry)
        });
        Pending {
            response: Tally::new(response_bytes, edge.grpc),
            edge,
            start: self.start,
            request_bytes: self.request_bytes,
            request_body: self.request_body,
            log,
        }
    }
}

impl Started {
    /// The request's edge, with what `res` (if it came) says of the
    /// server and of the cluster that answered (an Istio cluster,
    /// `outbound|PORT|SUBSET|HOST`, names the service's host).
    fn edge<R>(self, res: Option<&Response<R>>) -> (Edge, Rest) {
        let shared = self.shared;
        let (peer, peer_principal, mutual_tls) = match self.caller {
            Some((metadata, identity)) => {
                let mutual_tls = identity.is_some();
                (metadata.map(|m| m.0), identity.map(|i| i.0), mutual_tls)
            }
            None => {
                let extensions = res.map(Response::extensions);
                let metadata = extensions.and_then(|e| e.get::<PeerMetadata>());
                let principal = extensions.and_then(|e| e.get::<PeerIdentity>());
                (
                    metadata.map(|m| m.0.clone()),
                    principal.map(|p| p.0.clone()),
                    false,
                )
            }
        };
        let service = match shared.reporter {
            Reporter::Destination => shared.served.clone(),
            Reporter::Source => {
                let cluster_host = res
                    .and_then(|res| res.extensions().get::<SelectedCluster>())
                    .and_then(|SelectedCluster(c)| c.as_str().strip_prefix("outbound|"))
                    .and_then(|rest| rest.rsplit('|').next().filter(|h| !h.is_empty()));
                cluster_host
                    .or(self.authority.as_ref().map(http::uri::Authority::host))
                    .map(|host| shared.service(host))
            }
        };
        let log = shared
            .access_log
            .clone()
            .and_then(|log| Some((log, self.entry?)));
        let edge = Edge {
            shared,
            peer,
            peer_principal,
            service,
            grpc: self.grpc,
            mutual_tls,
            response_code: 200,
            grpc_response_status: GrpcStatus(None),
            response_flags: "-",
        };
        let rest = Rest {
            start: self.start,
            request_bytes: self.request_bytes,
            request_body: self.request_body,
            log,
        };
        (edge, rest)
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

/// The `grpc-status` in `headers`, if any.
/// A code past gRPC's 0–16 reads as 2 (`UNKNOWN`), as gRPC's own
/// clients read it, so that a peer cannot mint label sets.
pub(super) fn grpc_status(headers: &HeaderMap) -> Option<u16> {
    let code: u16 = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    Some(if code > 16 { 2 } else { code })
}

/// The size of a head's headers, as HTTP/1.1 writes them.
fn head_bytes(headers: &HeaderMap) -> u64 {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().len() + value.len() + 4) as u64)
        .sum()
}
