//! [`TraceLayer`]: a server span for each request taken, or a client span
//! for each request sent.

use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::instrument::Instrumented;

use super::{Sampler, TraceContext, request_id, start};

/// Which span a [`Trace`] starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Server,
    Client,
}

/// Starts a span for each request (see the [module](super)).
#[derive(Clone, Copy, Debug)]
pub struct TraceLayer {
    side: Side,
    sampler: Sampler,
}

impl TraceLayer {
    /// A server span for each request taken, new traces sampled by
    /// `sampler`.
    pub fn server(sampler: Sampler) -> Self {
        Self {
            side: Side::Server,
            sampler,
        }
    }

    /// A client span for each request sent, new traces sampled by
    /// `sampler`.
    pub fn client(sampler: Sampler) -> Self {
        Self {
            side: Side::Client,
            sampler,
        }
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Trace<S> {
        Trace {
            inner,
            layer: *self,
        }
    }
}

/// The service of [`TraceLayer`].
#[derive(Clone, Debug)]
pub struct Trace<S> {
    inner: S,
    layer: TraceLayer,
}

impl<S, B> Service<Request<B>> for Trace<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let inherited = req.extensions().get::<TraceContext>();
        let (span, parent) = start(req.headers(), inherited, &self.layer.sampler);
        let request_id = request_id(req.headers_mut());
        let tracing_span = if span.sampled {
            let (trace_id, span_id) = (span.trace_id.to_string(), span.span_id.to_string());
            let parent_id = parent.map(|p| p.to_string());
            let (method, target) = (req.method().clone(), req.uri().clone());
            match self.layer.side {
                Side::Server => tracing::info_span!(
                    "mesh.server", %trace_id, %span_id, ?parent_id, %method, %target
                ),
                Side::Client => tracing::info_span!(
                    "mesh.client", %trace_id, %span_id, ?parent_id, %method, %target
                ),
            }
        } else {
            tracing::Span::none()
        };
        if self.layer.side == Side::Client {
            span.inject(parent, req.headers_mut());
        }
        req.extensions_mut().insert(TraceContext {
            span,
            parent,
            request_id,
        });
        self.inner.call(req).instrument(tracing_span)
    }
}
