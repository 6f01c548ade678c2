//! Spans exported over OTLP/gRPC to a collector running in the test (a
//! tonic server implementing OpenTelemetry's trace service, from
//! `opentelemetry-proto`): a client span and the server span under it,
//! one trace, with Envoy's attributes and the service's name.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use mesh_core::security::MtlsMode;
use mesh_core::telemetry::WorkloadMetadata;
use mesh_core::{Authority, Endpoint, EndpointSet, StaticResolve};
use mesh_tower::MeshClient;
use mesh_tower::metrics::IstioMetrics;
use mesh_tower::server::MeshServer;
use mesh_tower::trace::{OtlpExporter, Sampler, TraceLayer};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};

/// Every span received, with its resource's service name.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<(String, Span)>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    self.0.lock().unwrap().push((service.clone(), span));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

#[tokio::test]
async fn spans_reach_an_otlp_collector_with_their_parent_links() {
    let collector = Collector::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    let service = TraceServiceServer::new(collector.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let endpoint = format!("http://{collector_addr}");

    let ratings =
        WorkloadMetadata::from_labels("ratings-0", "default", "ratings-v1", &Default::default());
    let server = MeshServer::builder()
        .mtls(MtlsMode::Disable)
        .metrics(IstioMetrics::default(), ratings, None)
        .sampling(Sampler::ratio(0.0))
        .spans(OtlpExporter::spawn(&endpoint, "ratings").unwrap())
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let app = tower::service_fn(|_req: http::Request<mesh_tower::server::Body>| async {
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from("ok"))))
        });
        server.serve(listener, app).await;
    });

    let target: Authority = "ratings:9080".parse().unwrap();
    let resolve = StaticResolve::default();
    resolve.set(&target, EndpointSet::new([Endpoint::new(addr)]));
    let client: MeshClient<Empty<Bytes>> = MeshClient::builder(resolve).build();
    let client = TraceLayer::client(Sampler::ratio(1.0))
        .export(OtlpExporter::spawn(&endpoint, "reviews").unwrap())
        .layer(client);
    let req = http::Request::get("http://ratings:9080/ratings/0")
        .body(Empty::new())
        .unwrap();
    let res = client.oneshot(req).await.unwrap();
    res.into_body().collect().await.unwrap();

    let spans = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let spans = collector.0.lock().unwrap().clone();
            if spans.len() >= 2 {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("both spans exported");
    let (client_service, client_span) = spans
        .iter()
        .find(|(_, s)| s.kind == SpanKind::Client as i32)
        .unwrap();
    let (server_service, server_span) = spans
        .iter()
        .find(|(_, s)| s.kind == SpanKind::Server as i32)
        .unwrap();
    assert_eq!(
        (client_service.as_str(), server_service.as_str()),
        ("reviews", "ratings")
    );
    assert_eq!(client_span.trace_id, server_span.trace_id);
    assert_eq!(server_span.parent_span_id, client_span.span_id);
    assert!(client_span.parent_span_id.is_empty(), "the root");
    assert_eq!(client_span.name, "ratings:9080/ratings/0");
    assert_eq!(
        attribute(server_span, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        attribute(server_span, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        attribute(client_span, "upstream_host"),
        Some(addr.to_string())
    );
    assert_eq!(
        attribute(client_span, "guid:x-request-id"),
        attribute(server_span, "guid:x-request-id")
    );
    assert!(server_span.end_time_unix_nano >= server_span.start_time_unix_nano);
}

/// OTLP over HTTP (`http/protobuf`): the spans a client posts to a
/// collector's `/v1/traces`, decoded as OpenTelemetry's protobuf.
#[tokio::test]
async fn spans_reach_an_http_collector_as_protobuf() {
    use mesh_tower::trace::OtlpProtocol;
    use prost::Message;

    let received: Arc<Mutex<Vec<(String, String, ExportTraceServiceRequest)>>> = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    let seen = received.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        let content_type = req
                            .headers()
                            .get(http::header::CONTENT_TYPE)
                            .map(|v| v.to_str().unwrap().to_owned())
                            .unwrap_or_default();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let export = ExportTraceServiceRequest::decode(body).unwrap();
                        seen.lock().unwrap().push((path, content_type, export));
                        let reply = ExportTraceServiceResponse::default().encode_to_vec();
                        let mut res = http::Response::new(Full::new(Bytes::from(reply)));
                        res.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("application/x-protobuf"),
                        );
                        Ok::<_, Infallible>(res)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    let server = Server::start_plain().await;
    let endpoint = format!("http://{collector_addr}/v1/traces");
    let sink = OtlpExporter::spawn_with(&endpoint, "reviews", OtlpProtocol::HttpProtobuf).unwrap();
    let client = TraceLayer::client(Sampler::ratio(1.0))
        .export(sink)
        .layer(server.client());
    let req = http::Request::get("http://ratings:9080/ratings/1")
        .body(Empty::new())
        .unwrap();
    client
        .oneshot(req)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();

    let (path, content_type, export) = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(first) = received.lock().unwrap().first().cloned() {
                return first;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the span was posted");
    assert_eq!(path, "/v1/traces");
    assert_eq!(content_type, "application/x-protobuf");
    let spans: Vec<&Span> = export
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let [span] = &spans[..] else {
        panic!("{spans:?}")
    };
    assert_eq!(span.kind, SpanKind::Client as i32);
    assert_eq!(span.name, "ratings:9080/ratings/1");
    assert_eq!(
        attribute(span, "http.response.status_code").as_deref(),
        Some("200")
    );

    // Not plain HTTP: refused with the reason, not sent elsewhere.
    let refused = OtlpExporter::spawn_with(
        "https://collector:4318/v1/traces",
        "reviews",
        OtlpProtocol::HttpProtobuf,
    )
    .unwrap_err();
    assert!(refused.to_string().contains("plain text"), "{refused}");
    assert_eq!(
        "http/protobuf".parse::<OtlpProtocol>(),
        Ok(OtlpProtocol::HttpProtobuf)
    );
    assert!("http/json".parse::<OtlpProtocol>().is_err());
}

/// A plain server answering `ok` as `ratings:9080`.
struct Server {
    addr: std::net::SocketAddr,
}

impl Server {
    async fn start_plain() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = MeshServer::builder()
            .mtls(MtlsMode::Disable)
            .build()
            .unwrap();
        tokio::spawn(async move {
            let app = tower::service_fn(|_req: http::Request<mesh_tower::server::Body>| async {
                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from("ok"))))
            });
            server.serve(listener, app).await;
        });
        Self { addr }
    }

    fn client(&self) -> MeshClient<Empty<Bytes>> {
        let resolve = StaticResolve::default();
        let target: Authority = "ratings:9080".parse().unwrap();
        resolve.set(&target, EndpointSet::new([Endpoint::new(self.addr)]));
        MeshClient::builder(resolve).build()
    }
}
