//! Trace context through the mesh, as Istio's proxies carry it: a server
//! span for each request a server takes, a client span for each request a
//! client sends, the context propagated in W3C and B3 headers
//! ([`mesh_core::trace`]) with `x-request-id`.
//!
//! - [`TraceLayer::server`] reads the caller's context (a malformed one is
//!   ignored and a new trace begins), decides sampling — the caller's
//!   decision if it made one (W3C's flag; B3's sampled field or debug
//!   flag, a B3 context without either leaving it to this side), else
//!   `x-client-trace-id` or `x-envoy-force-trace` forces it, else the
//!   [`Sampler`]'s ratio (Istio's 1 % by default) — and puts the server
//!   span in the request as a
//!   [`TraceContext`] extension, with an `x-request-id` (one is made when
//!   the caller sent none).
//! - [`propagate`] copies that context from an inbound request to an
//!   outbound one: the one call Istio's docs ask every application to make
//!   by hand.
//! - [`TraceLayer::client`] starts a client span as a child of the
//!   request's context (or a new trace) and writes it into the request's
//!   headers (and, when it is sampled, its extensions).
//!
//! The ids written (`traceparent`, `x-b3-*`, a new `x-request-id`) are
//! marked sensitive: new on every request, HTTP/2 sends them as
//! never-indexed literals, so they do not push the headers that repeat
//! (the peer metadata) out of HPACK's table.
//!
//! A sampled span is also a `tracing` span (`mesh.server`/`mesh.client`,
//! with `trace_id`, `span_id`, `parent_id`), for applications that already
//! have a subscriber; and, given a [`SpanSink`]
//! ([`TraceLayer::export`]), a [`SpanRecord`] with Envoy's attributes that
//! [`OtlpExporter`] (feature `otlp`) sends over OTLP, gRPC or HTTP.

mod export;
mod layer;
#[cfg(feature = "otlp")]
mod otlp;

use http::{HeaderMap, HeaderName, HeaderValue, Request};
use mesh_core::trace::{SpanContext, SpanId, TraceId, X_REQUEST_ID};
use rand::Rng;

pub use export::{SpanKind, SpanRecord, SpanSink};
pub use layer::{ResponseFuture, Trace, TraceLayer};
#[cfg(feature = "otlp")]
pub use otlp::{OtlpError, OtlpExporter, OtlpProtocol};

/// Envoy's header forcing a trace to be sampled.
pub const X_ENVOY_FORCE_TRACE: HeaderName = HeaderName::from_static("x-envoy-force-trace");
/// Envoy's header forcing a trace, naming it for the client.
pub const X_CLIENT_TRACE_ID: HeaderName = HeaderName::from_static("x-client-trace-id");

/// Istio's default sampling ratio: 1 %.
pub const DEFAULT_SAMPLING: f64 = 0.01;

/// The span a request is in at this workload: a request extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// The span, in its trace.
    pub span: SpanContext,
    /// The span it is a child of, if it continues a trace.
    pub parent: Option<SpanId>,
    /// The request's `x-request-id`.
    pub request_id: HeaderValue,
}

/// Decides whether a new trace is sampled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampler {
    ratio: f64,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::ratio(DEFAULT_SAMPLING)
    }
}

impl Sampler {
    /// Samples this share of new traces (0 to 1, clamped).
    pub fn ratio(ratio: f64) -> Self {
        Self {
            ratio: ratio.clamp(0.0, 1.0),
        }
    }

    /// The decision for a request with `headers` whose caller decided
    /// `decision`: the caller's, else forced by `x-envoy-force-trace` or
    /// `x-client-trace-id`, else the ratio.
    fn sampled(&self, decision: Option<bool>, headers: &HeaderMap) -> bool {
        decision.unwrap_or_else(|| {
            headers.contains_key(X_ENVOY_FORCE_TRACE)
                || headers.contains_key(X_CLIENT_TRACE_ID)
                || rand::rng().random_bool(self.ratio)
        })
    }
}

/// A new, random, non-zero span id.
fn new_span_id() -> SpanId {
    SpanId(rand::rng().random_range(1..=u64::MAX))
}

/// A new, random, non-zero trace id.
fn new_trace_id() -> TraceId {
    TraceId(rand::rng().random_range(1..=u128::MAX))
}

/// A new request id, shaped as a UUID (version 4).
fn new_request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits: u128 = rand::rng().random();
    let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let mut id = [b'-'; 36];
    let mut nibble = 32;
    for (i, byte) in id.iter_mut().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        nibble -= 1;
        *byte = HEX[((bits >> (nibble * 4)) & 0xf) as usize];
    }
    let mut id = HeaderValue::from_bytes(&id).expect("hex is a valid header value");
    id.set_sensitive(true);
    id
}

/// The context a new span of `headers`' request starts: a child of the
/// context they carry (or of `inherited`), else a new trace; and the
/// span it is a child of.
fn start(
    headers: &HeaderMap,
    inherited: Option<&TraceContext>,
    sampler: &Sampler,
) -> (SpanContext, Option<SpanId>) {
    let (parent, decision) = match SpanContext::extract_decision(headers) {
        Some((parent, decision)) => (Some(parent), decision),
        None => match inherited {
            Some(t) => (Some(t.span.clone()), Some(t.span.sampled)),
            None => (None, None),
        },
    };
    let sampled = sampler.sampled(decision, headers);
    let span_id = new_span_id();
    match parent {
        Some(parent) => {
            let parent_id = parent.span_id;
            let span = SpanContext {
                sampled,
                ..parent.child(span_id)
            };
            (span, Some(parent_id))
        }
        None => {
            let span = SpanContext {
                trace_id: new_trace_id(),
                span_id,
                sampled,
                tracestate: None,
            };
            (span, None)
        }
    }
}

/// The request id `headers` carry, or a new one put there.
fn request_id(headers: &mut HeaderMap) -> HeaderValue {
    match headers.get(X_REQUEST_ID) {
        Some(id) => id.clone(),
        None => {
            let id = new_request_id();
            headers.insert(X_REQUEST_ID, id.clone());
            id
        }
    }
}

/// Copies the trace context of `inbound` (a request a
/// [`TraceLayer::server`] took) into `outbound`, a request the handler
/// sends on: its headers (W3C, B3, `x-request-id`) and its
/// [`TraceContext`], so the next hop continues the trace. Nothing is
/// copied from a request without one.
pub fn propagate<A, B>(inbound: &Request<A>, outbound: &mut Request<B>) {
    let Some(context) = inbound.extensions().get::<TraceContext>() else {
        return;
    };
    let headers = outbound.headers_mut();
    context.span.inject(context.parent, headers);
    headers.insert(X_REQUEST_ID, context.request_id.clone());
    outbound.extensions_mut().insert(context.clone());
}

#[cfg(test)]
mod tests;
