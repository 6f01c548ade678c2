//! Trace context as it travels in request headers, in the forms Istio's
//! proxies propagate: W3C `traceparent`/`tracestate`, Zipkin's B3 (the
//! `x-b3-*` headers and the single `b3` header), and `x-request-id`.
//!
//! [`SpanContext::extract`] reads a request's context (W3C first, then
//! single B3, then multi-header B3); a header that does not parse — wrong
//! length, bad hex, version `ff`, all-zero ids — is ignored, as if absent,
//! and a new trace begins. [`SpanContext::inject`] writes a context in
//! both W3C and B3 forms, so a peer reading either continues it;
//! [`SpanContext::inject_as`] in the one form a mesh has settled on
//! ([`Propagation`], as Envoy's tracer provider decides it).

use std::fmt::{self, Write};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

/// W3C's header.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// W3C's vendor state, carried as it came.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
/// B3's single header: `TRACEID-SPANID[-SAMPLED[-PARENTSPANID]]`.
pub const B3: HeaderName = HeaderName::from_static("b3");
/// B3's trace id.
pub const X_B3_TRACEID: HeaderName = HeaderName::from_static("x-b3-traceid");
/// B3's span id.
pub const X_B3_SPANID: HeaderName = HeaderName::from_static("x-b3-spanid");
/// B3's parent span id.
pub const X_B3_PARENTSPANID: HeaderName = HeaderName::from_static("x-b3-parentspanid");
/// B3's sampling decision (`1`/`0`, or `true`/`false`).
pub const X_B3_SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
/// B3's debug flag (`1`: sampled, and forced).
pub const X_B3_FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");
/// Envoy's request id, kept across the hops of one request.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest `tracestate` carried (W3C's limit for a vendor list is
/// 32 members; this bounds the bytes).
pub const MAX_TRACESTATE: usize = 512;

/// The forms a context is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    /// W3C `traceparent` and `tracestate` (Envoy's OpenTelemetry tracer).
    W3c,
    /// B3's `x-b3-*` headers (Envoy's Zipkin tracer).
    B3,
    /// Both, so that a peer reading either continues the trace.
    #[default]
    Both,
}

/// A trace id: 128 bits, never zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceId(pub u128);

/// A span id: 64 bits, never zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanId(pub u64);

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Where a request is in its trace: the trace, the span it is sent from,
/// and whether the trace is sampled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanContext {
    /// The trace.
    pub trace_id: TraceId,
    /// The span the request was sent from (its parent, for the receiver).
    pub span_id: SpanId,
    /// Whether the trace is recorded.
    pub sampled: bool,
    /// W3C's `tracestate`, carried unchanged.
    pub tracestate: Option<HeaderValue>,
}

impl SpanContext {
    /// The context `headers` carry, if any parses: W3C `traceparent`
    /// (with its `tracestate`), else `b3`, else the `x-b3-*` headers. A
    /// context that leaves sampling undecided reads as not sampled; see
    /// [`extract_decision`](Self::extract_decision).
    pub fn extract(headers: &HeaderMap) -> Option<Self> {
        Self::extract_decision(headers).map(|(ctx, _)| ctx)
    }

    /// The context `headers` carry, as [`extract`](Self::extract), and
    /// the caller's sampling decision: W3C's always makes one (its flag),
    /// B3's only with its sampled field (`1`/`0`, `true`/`false`) or
    /// debug flag (`d`, `x-b3-flags: 1`); without one the receiver
    /// decides (`None`).
    pub fn extract_decision(headers: &HeaderMap) -> Option<(Self, Option<bool>)> {
        let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(ctx) = text(&TRACEPARENT).and_then(traceparent) {
            let tracestate = headers
                .get(TRACESTATE)
                .filter(|v| v.len() <= MAX_TRACESTATE)
                .cloned();
            let sampled = ctx.sampled;
            return Some((Self { tracestate, ..ctx }, Some(sampled)));
        }
        if let Some(found) = text(&B3).and_then(single_b3) {
            return Some(found);
        }
        let trace_id = trace_id(text(&X_B3_TRACEID)?)?;
        let span_id = span_id(text(&X_B3_SPANID)?)?;
        let decision = match (text(&X_B3_FLAGS), text(&X_B3_SAMPLED)) {
            (Some("1"), _) | (_, Some("1" | "true")) => Some(true),
            (_, Some("0" | "false")) => Some(false),
            _ => None,
        };
        let ctx = Self {
            trace_id,
            span_id,
            sampled: decision == Some(true),
            tracestate: None,
        };
        Some((ctx, decision))
    }

    /// The same trace, sent from the span `span_id`.
    pub fn child(&self, span_id: SpanId) -> Self {
        Self {
            span_id,
            ..self.clone()
        }
    }

    /// Writes the context into `headers` as W3C `traceparent` (and
    /// `tracestate`, if any) and B3 (`x-b3-traceid`, `x-b3-spanid`,
    /// `x-b3-sampled`, and `x-b3-parentspanid` when `parent` is given),
    /// replacing what was there (a single `b3` header is removed, so no
    /// stale form stays).
    pub fn inject(&self, parent: Option<SpanId>, headers: &mut HeaderMap) {
        self.inject_as(parent, headers, Propagation::Both);
    }

    /// [`inject`](Self::inject), in the forms `propagation` names; the
    /// other form's headers are removed, so no stale context stays.
    pub fn inject_as(
        &self,
        parent: Option<SpanId>,
        headers: &mut HeaderMap,
        propagation: Propagation,
    ) {
        // One buffer for every value: `00-TRACE-SPAN-FLAGS`, then the
        // parent; the B3 ids are slices of it.
        let mut text = String::with_capacity(55 + 16);
        let flags = if self.sampled { "01" } else { "00" };
        let _ = write!(text, "00-{}-{}-{flags}", self.trace_id, self.span_id);
        if let Some(p) = parent {
            let _ = write!(text, "{p}");
        }
        let all = Bytes::from(text);
        let value = |range: std::ops::Range<usize>| {
            let mut v = HeaderValue::from_maybe_shared(all.slice(range))
                .expect("hex is a valid header value");
            v.set_sensitive(true);
            v
        };
        let (w3c, b3) = match propagation {
            Propagation::W3c => (true, false),
            Propagation::B3 => (false, true),
            Propagation::Both => (true, true),
        };
        match (w3c, &self.tracestate) {
            (true, Some(state)) => {
                headers.insert(TRACEPARENT, value(0..55));
                headers.insert(TRACESTATE, state.clone());
            }
            (true, None) => {
                headers.insert(TRACEPARENT, value(0..55));
                headers.remove(TRACESTATE);
            }
            (false, _) => {
                headers.remove(TRACEPARENT);
                headers.remove(TRACESTATE);
            }
        }
        headers.remove(B3);
        headers.remove(X_B3_FLAGS);
        if !b3 {
            for name in [X_B3_TRACEID, X_B3_SPANID, X_B3_SAMPLED, X_B3_PARENTSPANID] {
                headers.remove(name);
            }
            return;
        }
        headers.insert(X_B3_TRACEID, value(3..35));
        headers.insert(X_B3_SPANID, value(36..52));
        let sampled = HeaderValue::from_static(if self.sampled { "1" } else { "0" });
        headers.insert(X_B3_SAMPLED, sampled);
        match parent {
            Some(_) => headers.insert(X_B3_PARENTSPANID, value(55..71)),
            None => headers.remove(X_B3_PARENTSPANID),
        };
    }
}

/// W3C `traceparent`: `VERSION-TRACEID-PARENTID-FLAGS`, version `00`'s
/// shape (a later version may add fields after the flags; `ff` is invalid).
fn traceparent(value: &str) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    if version.len() != 2 || !is_lower_hex(version) || version == "ff" {
        return None;
    }
    let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
    if version == "00" && parts.next().is_some() {
        return None;
    }
    if trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    if ![trace, span, flags].into_iter().all(is_lower_hex) {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(SpanContext {
        trace_id: trace_id(trace)?,
        span_id: span_id(span)?,
        sampled: flags & 1 == 1,
        tracestate: None,
    })
}

/// B3's single header: `TRACEID-SPANID[-SAMPLED[-PARENTSPANID]]`, and
/// its sampling decision (none without the field); a bare decision (`0`,
/// `1`, `d`) carries no context.
fn single_b3(value: &str) -> Option<(SpanContext, Option<bool>)> {
    let mut parts = value.trim().split('-');
    let trace_id = trace_id(parts.next()?)?;
    let span_id = span_id(parts.next()?)?;
    let decision = match parts.next() {
        None => None,
        Some("1" | "d") => Some(true),
        Some("0") => Some(false),
        Some(_) => return None,
    };
    if let Some(parent) = parts.next() {
        span_id_of(parent)?;
    }
    if parts.next().is_some() {
        return None;
    }
    let ctx = SpanContext {
        trace_id,
        span_id,
        sampled: decision == Some(true),
        tracestate: None,
    };
    Some((ctx, decision))
}

/// A trace id: 32 hex digits, or 16 (B3's 64-bit ids); not all zero.
fn trace_id(s: &str) -> Option<TraceId> {
    if !(s.len() == 32 || s.len() == 16) {
        return None;
    }
    let id = hex(s)?;
    (id != 0).then_some(TraceId(id))
}

/// A span id: 16 hex digits, not all zero.
fn span_id(s: &str) -> Option<SpanId> {
    span_id_of(s).map(SpanId)
}

fn span_id_of(s: &str) -> Option<u64> {
    if s.len() != 16 {
        return None;
    }
    let id = u64::try_from(hex(s)?).ok()?;
    (id != 0).then_some(id)
}

/// The value of up to 32 hex digits, in one pass; `None` for anything
/// else (`from_str_radix` would take a leading `+`).
fn hex(s: &str) -> Option<u128> {
    if s.is_empty() || s.len() > 32 {
        return None;
    }
    s.bytes().try_fold(0u128, |id, b| {
        let digit = char::from(b).to_digit(16)?;
        Some(id << 4 | u128::from(digit))
    })
}

/// Lower-case hex digits only, as W3C writes every `traceparent` field
/// (`from_str_radix` alone would take a leading `+`).
fn is_lower_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests;
