//! [`TraceLayer`]: a server span for each request taken, or a client span
//! for each request sent; sampled spans are handed to a [`SpanSink`] when
//! their response comes, if the layer has one.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::SystemTime;

use http::{Request, Response};
use mesh_core::trace::Propagation;
use pin_project::pin_project;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::instrument::Instrumented;

use super::export::{SpanKind, SpanRecord, SpanSink};
use super::{Sampler, TraceContext, request_id, start};
use crate::body::ResponseFlag;
use crate::endpoint::UpstreamHost;
use crate::split::SelectedCluster;
use crate::tls::{ClientIdentity, PeerIdentity};

/// Starts a span for each request (see the [module](super)).
#[derive(Clone, Debug)]
pub struct TraceLayer {
    kind: SpanKind,
    sampler: Sampler,
    sink: Option<SpanSink>,
    propagation: Propagation,
}

impl TraceLayer {
    /// A server span for each request taken, new traces sampled by
    /// `sampler`.
    pub fn server(sampler: Sampler) -> Self {
        Self {
            kind: SpanKind::Server,
            sampler,
            sink: None,
            propagation: Propagation::default(),
        }
    }

    /// A client span for each request sent, new traces sampled by
    /// `sampler`.
    pub fn client(sampler: Sampler) -> Self {
        Self {
            kind: SpanKind::Client,
            sampler,
            sink: None,
            propagation: Propagation::default(),
        }
    }

    /// A client's spans written in the forms `propagation` names (both W3C
    /// and B3 unless told), as the mesh's tracer reads them.
    pub fn propagation(mut self, propagation: Propagation) -> Self {
        self.propagation = propagation;
        self
    }

    /// Hands each sampled span to `sink` when its response comes.
    pub fn export(mut self, sink: SpanSink) -> Self {
        self.sink = Some(sink);
        self
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Trace<S> {
        Trace {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`TraceLayer`].
#[derive(Clone, Debug)]
pub struct Trace<S> {
    inner: S,
    layer: TraceLayer,
}

impl<S, B, R> Service<Request<B>> for Trace<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let layer = &self.layer;
        let inherited = req.extensions().get::<TraceContext>();
        let (span, parent) = start(req.headers(), inherited, &layer.sampler);
        let request_id = request_id(req.headers_mut());
        let tracing_span = if span.sampled {
            let (trace_id, span_id) = (span.trace_id.to_string(), span.span_id.to_string());
            let parent_id = parent.map(|p| p.to_string());
            let (method, target) = (req.method().clone(), req.uri().clone());
            match layer.kind {
                SpanKind::Server => tracing::info_span!(
                    "mesh.server", %trace_id, %span_id, ?parent_id, %method, %target
                ),
                SpanKind::Client => tracing::info_span!(
                    "mesh.client", %trace_id, %span_id, ?parent_id, %method, %target
                ),
            }
        } else {
            tracing::Span::none()
        };
        if layer.kind == SpanKind::Client {
            span.inject_as(parent, req.headers_mut(), layer.propagation);
        }
        let export = layer.sink.as_ref().filter(|_| span.sampled).map(|sink| {
            let mut attributes = vec![
                ("http.request.method", req.method().to_string()),
                ("url.path", req.uri().path().to_owned()),
            ];
            if let Ok(id) = request_id.to_str() {
                attributes.push(("guid:x-request-id", id.to_owned()));
            }
            if let Some(peer) = req.extensions().get::<ClientIdentity>() {
                attributes.push(("peer.id", peer.0.to_string()));
            }
            if crate::body::is_grpc(req.headers()) {
                attributes.push(("rpc.system", "grpc".to_owned()));
            }
            let authority = req.uri().authority().map(|a| a.as_str()).or_else(|| {
                req.headers()
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
            });
            let record = SpanRecord {
                context: span.clone(),
                parent,
                kind: layer.kind,
                name: format!("{}{}", authority.unwrap_or_default(), req.uri().path()),
                start: SystemTime::now(),
                end: SystemTime::UNIX_EPOCH,
                attributes,
                error: false,
            };
            (sink.clone(), record)
        });
        // A server's span is what its handler propagates; a client's
        // travels in the headers, and an extension (copied with the
        // request for each attempt) only when it is sampled, for the
        // attempts' own spans.
        if layer.kind == SpanKind::Server || span.sampled {
            req.extensions_mut().insert(TraceContext {
                span,
                parent,
                request_id,
            });
        }
        ResponseFuture {
            inner: self.inner.call(req).instrument(tracing_span),
            export,
        }
    }
}

/// The response future of [`Trace`]: hands the span to its sink when the
/// response comes.
#[pin_project]
#[derive(Debug)]
pub struct ResponseFuture<F> {
    #[pin]
    inner: Instrumented<F>,
    export: Option<(SpanSink, SpanRecord)>,
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = Result<Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Some((sink, mut record)) = this.export.take() {
            record.end = SystemTime::now();
            match &result {
                Ok(res) => {
                    let status = res.status();
                    record.error = status.is_server_error();
                    record
                        .attributes
                        .push(("http.response.status_code", status.as_u16().to_string()));
                    let extensions = res.extensions();
                    if let Some(ResponseFlag(flag)) = extensions.get::<ResponseFlag>() {
                        record
                            .attributes
                            .push(("response_flags", (*flag).to_owned()));
                    }
                    if let Some(UpstreamHost(host)) = extensions.get::<UpstreamHost>() {
                        record.attributes.push(("upstream_host", host.to_string()));
                    }
                    if let Some(SelectedCluster(cluster)) = extensions.get::<SelectedCluster>() {
                        record
                            .attributes
                            .push(("upstream_cluster", cluster.as_str().to_owned()));
                    }
                    if let Some(PeerIdentity(peer)) = extensions.get::<PeerIdentity>() {
                        record.attributes.push(("peer.id", peer.to_string()));
                    }
                }
                Err(_) => record.error = true,
            }
            sink.send(record);
        }
        Poll::Ready(result)
    }
}
