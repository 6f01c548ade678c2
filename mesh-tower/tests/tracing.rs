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
use hyper::body::Incoming;
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
        let app = tower::service_fn(move |req: http::Request<Incoming>| {
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
        let app = tower::service_fn(move |req: http::Request<Incoming>| {
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
