//! One trace across two hops of real servers: a caller that speaks only
//! B3 → a `MeshServer` whose handler copies the context
//! (`trace::propagate`) to a traced `MeshClient` → a second `MeshServer`.
//! The second sees the caller's trace, as a child of the first's client
//! span, with the request id the first was given.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use mesh_core::security::MtlsMode;
use mesh_core::telemetry::WorkloadMetadata;
use mesh_core::trace::SpanContext;
use mesh_core::{Authority, Endpoint, EndpointSet, StaticResolve};
use mesh_tower::MeshClient;
use mesh_tower::metrics::IstioMetrics;
use mesh_tower::server::{MeshServer, MeshServerBuilder};
use mesh_tower::trace::{Sampler, TraceContext, TraceLayer, propagate};
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};

/// A plain-text server reporting as `app`, tracing every request.
fn traced(app: &str) -> MeshServerBuilder {
    let workload =
        WorkloadMetadata::from_labels(&format!("{app}-0"), "default", app, &Default::default());
    MeshServer::builder()
        .mtls(MtlsMode::Disable)
        .metrics(IstioMetrics::default(), workload, None)
        .sampling(Sampler::ratio(0.0))
}

async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

type Seen = Arc<Mutex<Option<(TraceContext, http::HeaderMap)>>>;

#[tokio::test]
async fn a_trace_crosses_two_servers_and_a_client() {
    // The last hop records what it saw.
    let last_seen = Seen::default();
    let (listener, last_addr) = listen().await;
    let seen = last_seen.clone();
    let last = traced("ratings").build().unwrap();
    tokio::spawn(async move {
        let app = tower::service_fn(move |req: http::Request<mesh_tower::server::Body>| {
            let context = req.extensions().get::<TraceContext>().cloned().unwrap();
            *seen.lock().unwrap() = Some((context, req.headers().clone()));
            async { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from("ok")))) }
        });
        last.serve(listener, app).await;
    });

    // The middle hop calls it through a traced client.
    let target: Authority = "ratings:9080".parse().unwrap();
    let resolve = StaticResolve::default();
    resolve.set(&target, EndpointSet::new([Endpoint::new(last_addr)]));
    let client: MeshClient<Empty<Bytes>> = MeshClient::builder(resolve).build();
    let client = TraceLayer::client(Sampler::ratio(0.0)).layer(client);
    let middle_seen = Seen::default();
    let seen = middle_seen.clone();
    let (listener, middle_addr) = listen().await;
    let middle = traced("reviews").build().unwrap();
    tokio::spawn(async move {
        let app = tower::service_fn(move |req: http::Request<mesh_tower::server::Body>| {
            let (client, seen) = (client.clone(), seen.clone());
            async move {
                let context = req.extensions().get::<TraceContext>().cloned().unwrap();
                *seen.lock().unwrap() = Some((context, req.headers().clone()));
                let mut outbound = http::Request::get("http://ratings:9080/ratings/0")
                    .body(Empty::new())
                    .unwrap();
                propagate(&req, &mut outbound);
                let res = client.oneshot(outbound).await.unwrap();
                let body = res.into_body().collect().await.unwrap().to_bytes();
                Ok::<_, Infallible>(http::Response::new(Full::new(body)))
            }
        });
        middle.serve(listener, app).await;
    });

    // A caller that speaks only B3, sampled.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let req = http::Request::get(format!("http://{middle_addr}/reviews/0"))
        .header("x-b3-traceid", trace)
        .header("x-b3-spanid", caller_span)
        .header("x-b3-sampled", "1")
        .header("x-request-id", "req-1")
        .body(Empty::new())
        .unwrap();
    let res = http.request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");

    let (middle, _) = middle_seen.lock().unwrap().clone().unwrap();
    let (last, last_headers) = last_seen.lock().unwrap().clone().unwrap();
    assert_eq!(middle.span.trace_id.to_string(), trace);
    assert_eq!(middle.parent.unwrap().to_string(), caller_span);
    assert_eq!(last.span.trace_id.to_string(), trace);
    assert!(last.span.sampled, "the caller's decision is kept");
    let middle_client = SpanContext::extract(&last_headers).unwrap();
    assert_eq!(last.parent, Some(middle_client.span_id));
    assert_ne!(middle_client.span_id, middle.span.span_id);
    assert_eq!(
        last_headers["x-b3-parentspanid"],
        middle.span.span_id.to_string().as_str()
    );
    assert_eq!(last.request_id, "req-1");
}

/// Retries show as sibling spans: a client span per attempt, each a child
/// of the request's span, each with the endpoint it went to.
#[tokio::test]
async fn each_attempt_is_a_span_under_the_requests() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use mesh_core::ClusterPolicy;
    use mesh_core::policy::RetryPolicy;
    use mesh_tower::trace::{SpanKind, SpanSink};

    // Fails its first request with 503, then answers.
    let calls = Arc::new(AtomicUsize::new(0));
    let (listener, addr) = listen().await;
    let seen = calls.clone();
    let server = traced("ratings").build().unwrap();
    tokio::spawn(async move {
        let app = tower::service_fn(move |_req: http::Request<mesh_tower::server::Body>| {
            let first = seen.fetch_add(1, Ordering::Relaxed) == 0;
            async move {
                let mut res = http::Response::new(Full::new(Bytes::from("ok")));
                if first {
                    *res.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                }
                Ok::<_, Infallible>(res)
            }
        });
        server.serve(listener, app).await;
    });

    let (sink, mut spans) = SpanSink::channel(16);
    let target: Authority = "ratings:9080".parse().unwrap();
    let resolve = StaticResolve::default();
    resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
    let policy = ClusterPolicy {
        retry: RetryPolicy {
            retry_on: "5xx".parse().unwrap(),
            num_retries: 2,
            ..RetryPolicy::default()
        },
        ..ClusterPolicy::default()
    };
    let client: MeshClient<Empty<Bytes>> = MeshClient::builder(resolve)
        .cluster_policy(target, policy)
        .trace_attempts(TraceLayer::client(Sampler::ratio(1.0)).export(sink.clone()))
        .build();
    let mesh_client = client.clone();
    let client = TraceLayer::client(Sampler::ratio(1.0))
        .export(sink)
        .layer(client);
    let req = http::Request::get("http://ratings:9080/ratings/0")
        .body(Empty::new())
        .unwrap();
    let res = client.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);

    let mut records = Vec::new();
    while records.len() < 3 {
        let record = tokio::time::timeout(std::time::Duration::from_secs(10), spans.recv())
            .await
            .unwrap()
            .unwrap();
        records.push(record);
    }
    // The request's span ends last; the attempts' before it.
    let request = records.iter().find(|r| r.parent.is_none()).unwrap();
    let attempts: Vec<_> = records.iter().filter(|r| r.parent.is_some()).collect();
    assert_eq!(attempts.len(), 2, "{records:?}");
    assert!(records.iter().all(|r| r.kind == SpanKind::Client));
    for attempt in &attempts {
        assert_eq!(attempt.parent, Some(request.context.span_id));
        assert_eq!(attempt.context.trace_id, request.context.trace_id);
        let host = attempt
            .attributes
            .iter()
            .find(|(k, _)| *k == "upstream_host");
        assert_eq!(
            host.map(|(_, v)| v.as_str()),
            Some(addr.to_string().as_str())
        );
    }
    assert_ne!(attempts[0].context.span_id, attempts[1].context.span_id);
    let codes: Vec<_> = attempts
        .iter()
        .map(|a| {
            a.attributes
                .iter()
                .find(|(k, _)| *k == "http.response.status_code")
                .unwrap()
                .1
                .clone()
        })
        .collect();
    assert_eq!(codes, ["503", "200"]);
    assert!(attempts[0].error && !attempts[1].error);

    // The retry, counted, and read as a metric.
    let retries: Vec<_> = mesh_client
        .status()
        .clusters
        .iter()
        .map(|c| (c.name.clone(), c.retries, c.retry_budget_exhausted))
        .collect();
    assert_eq!(retries, [("ratings:9080".to_owned(), 1, 0)]);
    let mut registry = prometheus_client::registry::Registry::default();
    mesh_tower::metrics::MeshState::default()
        .client("reviews", &mesh_client)
        .register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("mesh_client_retries_total{client=\"reviews\",cluster=\"ratings:9080\"} 1\n"),
        "{text}"
    );
}
