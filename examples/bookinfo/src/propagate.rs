//! The headers bookinfo's services pass on to the services they call, as
//! Istio's samples do: the request id, the trace context in each format
//! Istio's proxies read (W3C, B3, and the rest), and the caller's
//! identity (`end-user`, the cookie, the user agent), so that a trace
//! joins up and a route matching `end-user: jason` sees the user all the
//! way down.

use http::HeaderMap;

/// The headers passed on, lowercase.
pub const PROPAGATED: &[&str] = &[
    "x-request-id",
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-ot-span-context",
    "x-cloud-trace-context",
    "grpc-trace-bin",
    "sw8",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "end-user",
    "user-agent",
    "cookie",
    "authorization",
    "jwt",
];

/// The headers of `from` to pass on.
pub fn propagated(from: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in PROPAGATED {
        for value in from.get_all(*name) {
            out.append(*name, value.clone());
        }
    }
    out
}
