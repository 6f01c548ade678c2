use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use mesh_core::trace::{SpanContext, TRACEPARENT, X_B3_SPANID, X_B3_TRACEID};
use tower::{Layer, ServiceExt};

use super::*;

/// What the last hop saw: its context and the headers it got.
type Seen = Arc<Mutex<Vec<(TraceContext, HeaderMap)>>>;

/// A server that records what it saw.
fn last_hop(
    seen: &Seen,
) -> impl tower::Service<Request<()>, Response = http::Response<()>, Error = Infallible> + Clone + use<>
{
    let seen = seen.clone();
    TraceLayer::server(Sampler::ratio(0.0)).layer(tower::service_fn(move |req: Request<()>| {
        let seen = seen.clone();
        async move {
            let context = req.extensions().get::<TraceContext>().unwrap().clone();
            seen.lock().unwrap().push((context, req.headers().clone()));
            Ok::<_, Infallible>(http::Response::new(()))
        }
    }))
}

/// A server that calls the next hop through a traced client, having
/// copied its context with [`propagate`].
fn middle_hop<S>(
    next: S,
    seen: &Seen,
) -> impl tower::Service<Request<()>, Response = http::Response<()>, Error = Infallible> + Clone + use<S>
where
    S: tower::Service<Request<()>, Response = http::Response<()>, Error = Infallible>
        + Clone
        + 'static,
{
    let seen = seen.clone();
    let client = TraceLayer::client(Sampler::ratio(0.0)).layer(next);
    TraceLayer::server(Sampler::ratio(0.0)).layer(tower::service_fn(move |req: Request<()>| {
        let (client, seen) = (client.clone(), seen.clone());
        async move {
            let context = req.extensions().get::<TraceContext>().unwrap().clone();
            seen.lock().unwrap().push((context, req.headers().clone()));
            let mut outbound = Request::new(());
            propagate(&req, &mut outbound);
            client.oneshot(outbound).await
        }
    }))
}

#[tokio::test]
async fn two_hops_keep_one_trace_with_parent_links() {
    let (middle_seen, last_seen) = (Seen::default(), Seen::default());
    let first = TraceLayer::client(Sampler::ratio(1.0))
        .layer(middle_hop(last_hop(&last_seen), &middle_seen));
    first.oneshot(Request::new(())).await.unwrap();
    let (middle, middle_headers) = middle_seen.lock().unwrap()[0].clone();
    let (last, last_headers) = last_seen.lock().unwrap()[0].clone();
    // One trace, sampled at its root and followed by every hop.
    assert_eq!(middle.span.trace_id, last.span.trace_id);
    assert!(middle.span.sampled && last.span.sampled);
    // The middle server is a child of the first client's span; the last
    // server of the middle's client span, itself a child of the middle
    // server's span.
    let first_client = SpanContext::extract(&middle_headers).unwrap().span_id;
    assert_eq!(middle.parent, Some(first_client));
    let middle_client = SpanContext::extract(&last_headers).unwrap();
    assert_eq!(last.parent, Some(middle_client.span_id));
    assert_ne!(middle_client.span_id, middle.span.span_id);
    assert_eq!(
        last_headers[mesh_core::trace::X_B3_PARENTSPANID],
        middle.span.span_id.to_string().as_str()
    );
    // One request id all along.
    assert_eq!(middle.request_id, last.request_id);
    assert_eq!(middle.request_id.len(), 36);
}

#[tokio::test]
async fn b3_only_and_w3c_only_callers_are_both_continued() {
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let span = "00f067aa0ba902b7";
    for (name, value) in [
        ("traceparent", format!("00-{trace}-{span}-01")),
        ("b3", format!("{trace}-{span}-1")),
    ] {
        let (middle_seen, last_seen) = (Seen::default(), Seen::default());
        let server = middle_hop(last_hop(&last_seen), &middle_seen);
        let mut req = Request::new(());
        req.headers_mut()
            .insert(HeaderName::from_static(name), value.parse().unwrap());
        server.oneshot(req).await.unwrap();
        let (last, headers) = last_seen.lock().unwrap()[0].clone();
        assert_eq!(last.span.trace_id.to_string(), trace, "{name}");
        assert!(last.span.sampled, "{name}");
        // The next hop gets both forms.
        assert!(headers.contains_key(TRACEPARENT) && headers.contains_key(X_B3_TRACEID));
        assert_eq!(headers[X_B3_TRACEID], trace);
        assert!(headers.contains_key(X_B3_SPANID));
    }
}

#[tokio::test]
async fn bad_context_starts_a_new_trace_and_force_trace_samples_it() {
    let seen = Seen::default();
    let server = last_hop(&seen);
    let mut req = Request::new(());
    req.headers_mut()
        .insert(TRACEPARENT, "ff-0000-bad-01".parse().unwrap());
    req.headers_mut()
        .insert(X_ENVOY_FORCE_TRACE, "true".parse().unwrap());
    req.headers_mut()
        .insert(X_REQUEST_ID, "kept-as-sent".parse().unwrap());
    server.clone().oneshot(req).await.unwrap();
    let (context, _) = seen.lock().unwrap()[0].clone();
    assert_eq!(context.parent, None, "a new trace");
    assert!(context.span.sampled, "forced");
    assert_eq!(context.request_id, "kept-as-sent");
    // Unforced, at a ratio of 0: not sampled.
    server.oneshot(Request::new(())).await.unwrap();
    assert!(!seen.lock().unwrap()[1].0.span.sampled);
}

#[tokio::test]
async fn the_callers_decision_wins_and_an_undecided_b3_caller_is_sampled_here() {
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let span = "00f067aa0ba902b7";
    let sampled = |ratio: f64, pairs: Vec<(&'static str, String)>| {
        let server = TraceLayer::server(Sampler::ratio(ratio)).layer(tower::service_fn(
            |req: Request<()>| async move {
                let context = req.extensions().get::<TraceContext>().unwrap().clone();
                Ok::<_, Infallible>(http::Response::new(context))
            },
        ));
        let mut req = Request::new(());
        for (name, value) in pairs {
            req.headers_mut()
                .insert(HeaderName::from_static(name), value.parse().unwrap());
        }
        async move {
            let context = server.oneshot(req).await.unwrap().into_body();
            assert_eq!(context.span.trace_id.to_string(), trace);
            context.span.sampled
        }
    };
    let force = ("x-envoy-force-trace", "true".to_owned());
    // An explicit "not sampled" is kept, forced or not.
    let no = ("traceparent", format!("00-{trace}-{span}-00"));
    assert!(!sampled(1.0, vec![no.clone(), force.clone()]).await);
    let no = ("b3", format!("{trace}-{span}-0"));
    assert!(!sampled(1.0, vec![no, force.clone()]).await);
    // B3 without a decision: this side's ratio, or the force header.
    let undecided = ("b3", format!("{trace}-{span}"));
    assert!(!sampled(0.0, vec![undecided.clone()]).await);
    assert!(sampled(1.0, vec![undecided.clone()]).await);
    assert!(sampled(0.0, vec![undecided, force.clone()]).await);
    let multi = vec![
        ("x-b3-traceid", trace.to_owned()),
        ("x-b3-spanid", span.to_owned()),
    ];
    assert!(sampled(1.0, multi.clone()).await);
    assert!(!sampled(0.0, multi).await);
}

#[test]
fn request_ids_are_version_4_uuids() {
    let id = new_request_id();
    let id = id.to_str().unwrap();
    let parts: Vec<&str> = id.split('-').collect();
    assert_eq!(
        parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
    assert!(parts[2].starts_with('4'), "{id}");
    assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{id}");
    assert!(
        id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()),
        "{id}"
    );
    assert_ne!(new_request_id(), new_request_id());
}

#[tokio::test]
async fn a_client_writes_the_one_form_its_mesh_reads() {
    let seen = Seen::default();
    let client = TraceLayer::client(Sampler::ratio(1.0))
        .propagation(mesh_core::trace::Propagation::W3c)
        .layer(last_hop(&seen));
    client.oneshot(Request::new(())).await.unwrap();
    let (context, headers) = seen.lock().unwrap()[0].clone();
    assert!(headers.contains_key(TRACEPARENT));
    assert!(!headers.contains_key(X_B3_TRACEID) && !headers.contains_key(X_B3_SPANID));
    assert!(context.span.sampled, "the last hop continues the trace");
}
