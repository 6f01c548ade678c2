//! A `MeshServer` reporting Istio's metrics as an Envoy sidecar's inbound
//! side would: over real mutual TLS and plain text on a PERMISSIVE port,
//! the caller known by the metadata it sends (as an Istio sidecar sends
//! it) and the certificate it presents, a denied request counted with its
//! 403, and a caller that sends nothing counted as `unknown`.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use mesh_core::route::StringMatch;
use mesh_core::security::{
    MtlsMode, Permission, Principal, Rbac, RbacAction, RbacPolicy, ValueMatch,
};
use mesh_core::telemetry::WorkloadMetadata;
use mesh_tower::MeshClient;
use mesh_tower::access_log::{AccessLog, Format};
use mesh_tower::metadata_exchange::{PEER_METADATA, PEER_METADATA_ID, codec};
use mesh_tower::metrics::{CountedBody, IstioMetrics, IstioMetricsLayer, LocalWorkload, Reporter};
use mesh_tower::server::MeshServer;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};

use support::pki::Ca;

mod support;

const RATINGS: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-ratings";
const REVIEWS: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";

use support::workload;

/// Answers whether any metadata exchange header reached it.
async fn app<B>(req: http::Request<B>) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let leaked = req.headers().contains_key(PEER_METADATA);
    Ok(http::Response::new(Full::new(Bytes::from(format!(
        "headers seen: {leaked}"
    )))))
}

/// GET `path` through `client`, with `metadata` as an Istio sidecar sends
/// it: the status, the body, and the server's metadata if it answered
/// with any.
async fn get(
    client: &MeshClient<Empty<Bytes>>,
    path: &str,
    metadata: Option<&WorkloadMetadata>,
) -> (u16, String, Option<WorkloadMetadata>) {
    let mut req = http::Request::get(format!("http://ratings:9080{path}"));
    if let Some(m) = metadata {
        req = req.header(PEER_METADATA, codec::encode(m)).header(
            PEER_METADATA_ID,
            "sidecar~10.0.0.2~reviews-v2-0.default~default.svc.cluster.local",
        );
    }
    let res = client
        .clone()
        .oneshot(req.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let server = res
        .headers()
        .get(PEER_METADATA)
        .map(|v| codec::decode(v.as_bytes()).unwrap());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap(), server)
}

/// The value of the `istio_requests_total` series whose labels include
/// all of `labels`, summed.
fn requests(text: &str, labels: &[(&str, &str)]) -> u64 {
    text.lines()
        .filter(|l| l.starts_with("istio_requests_total{"))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[tokio::test]
async fn a_server_reports_each_request_with_both_ends_of_the_edge() {
    let ca = Ca::new();
    let metrics = IstioMetrics::default();
    let no_admin = Rbac {
        action: RbacAction::Deny,
        policies: vec![(
            "default-no-admin-0".into(),
            RbacPolicy {
                permissions: vec![Permission::UrlPath(ValueMatch {
                    kind: StringMatch::Prefix("/admin".into()),
                    ignore_case: false,
                })],
                principals: vec![Principal::Any],
            },
        )],
    };
    let log = LogBuffer::default();
    let server = MeshServer::builder()
        .identity(ca.identity(RATINGS))
        .mtls(MtlsMode::Permissive)
        .rbac(vec![no_admin])
        .access_log(AccessLog::new(Format::Json, log.clone()))
        .metrics(
            metrics.clone(),
            workload("ratings", "v1"),
            Some("ratings.default.svc.cluster.local"),
        )
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { server.serve(listener, tower::service_fn(app)).await });

    let reviews = support::pki::client("ratings:9080", addr, Some((ca.identity(REVIEWS), RATINGS)));
    let anonymous = support::pki::client("ratings:9080", addr, None);
    let caller = workload("reviews", "v2");

    let (status, body, server) = get(&reviews, "/ratings/0", Some(&caller)).await;
    assert_eq!((status, &*body), (200, "headers seen: false"));
    assert_eq!(server, Some(workload("ratings", "v1")));
    let (status, _, _) = get(&reviews, "/admin", Some(&caller)).await;
    assert_eq!(status, 403);
    // Plain text, no metadata: nothing of the server's is told.
    let (status, _, server) = get(&anonymous, "/ratings/0", None).await;
    assert_eq!((status, server), (200, None));

    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    encode(&mut text, &registry).unwrap();
    let ratings = [
        ("reporter", "destination"),
        ("destination_workload", "ratings-v1"),
        ("destination_principal", RATINGS),
        ("destination_service", "ratings.default.svc.cluster.local"),
        ("destination_service_name", "ratings"),
        ("destination_canonical_revision", "v1"),
    ];
    let from_reviews = [
        ("source_workload", "reviews-v2"),
        ("source_principal", REVIEWS),
        ("source_app", "reviews"),
        ("source_version", "v2"),
        ("source_cluster", "Kubernetes"),
        ("connection_security_policy", "mutual_tls"),
        ("request_protocol", "http"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut all = ratings.to_vec();
        all.extend_from_slice(extra);
        all
    };
    let mut ok = with(&from_reviews);
    ok.push(("response_code", "200"));
    assert_eq!(requests(&text, &ok), 1, "{text}");
    let mut denied = with(&from_reviews);
    denied.push(("response_code", "403"));
    assert_eq!(requests(&text, &denied), 1, "{text}");
    let plain = with(&[
        ("source_workload", "unknown"),
        ("source_principal", "unknown"),
        ("connection_security_policy", "none"),
        ("response_code", "200"),
    ]);
    assert_eq!(requests(&text, &plain), 1, "{text}");
    assert_eq!(requests(&text, &[]), 3, "{text}");

    // A line for each, off the request path: the denied one with its 403
    // and the caller's identity.
    let lines = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let lines = log.lines();
            if lines.len() == 3 {
                return lines;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("three lines");
    let denied = lines.iter().find(|l| l["response_code"] == 403).unwrap();
    assert_eq!(denied["path"], "/admin");
    assert_eq!(denied["peer_principal"], REVIEWS);
    assert_eq!(
        denied["upstream_cluster"],
        "ratings.default.svc.cluster.local"
    );
    let anonymous = lines.iter().find(|l| l["peer_principal"] == "-").unwrap();
    assert_eq!(anonymous["response_code"], 200);
}

/// Access log lines, as JSON, the test reads back.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn lines(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// A `MeshClient` and a `MeshServer`, each with its metadata and metrics:
/// both report the full edge, as a pair of Istio sidecars would; a target
/// the client was not configured with is told nothing.
#[tokio::test]
async fn client_and_server_both_report_the_full_edge() {
    use mesh_tower::metrics::{IstioMetricsLayer, LocalWorkload, Reporter};
    use tower::Layer;

    let ca = Ca::new();
    let (client_metrics, server_metrics) = (IstioMetrics::default(), IstioMetrics::default());
    let server = MeshServer::builder()
        .identity(ca.identity(RATINGS))
        .mtls(MtlsMode::Permissive)
        .metrics(server_metrics.clone(), workload("ratings", "v1"), None)
        .build()
        .unwrap();
    let state = mesh_tower::metrics::MeshState::default().server("ratings", &server);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { server.serve(listener, tower::service_fn(app)).await });

    let target: mesh_core::Authority = "ratings:9080".parse().unwrap();
    let resolve = mesh_core::StaticResolve::default();
    resolve.set(
        &target,
        mesh_core::EndpointSet::new([mesh_core::Endpoint::new(addr)]),
    );
    let reviews = workload("reviews", "v2");
    let mesh_client: MeshClient<CountedBody<Empty<Bytes>>> = MeshClient::builder(resolve.clone())
        .identity(ca.identity(REVIEWS))
        .metadata(&reviews)
        .cluster_policy(
            target,
            mesh_core::ClusterPolicy {
                tls: Some(mesh_core::policy::UpstreamTls {
                    subject_alt_names: vec![RATINGS.into()],
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .build();
    let local = LocalWorkload {
        metadata: reviews.clone().into(),
        principal: Some(REVIEWS.into()),
        service: None,
    };
    let client =
        IstioMetricsLayer::new(client_metrics.clone(), Reporter::Source, local).layer(mesh_client);
    let req = http::Request::get("http://ratings:9080/ratings/0")
        .body(Empty::new())
        .unwrap();
    let res = client.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        !res.headers().contains_key(PEER_METADATA),
        "the client takes the server's metadata off"
    );
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"headers seen: false");

    let edge = [
        ("source_workload", "reviews-v2"),
        ("source_principal", REVIEWS),
        ("source_canonical_service", "reviews"),
        ("destination_workload", "ratings-v1"),
        ("destination_principal", RATINGS),
        ("destination_canonical_service", "ratings"),
        ("destination_service_name", "ratings"),
        ("response_code", "200"),
    ];
    let scrape = |metrics: &IstioMetrics| {
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        text
    };
    let source = scrape(&client_metrics);
    let mut labels = edge.to_vec();
    labels.extend([
        ("reporter", "source"),
        ("connection_security_policy", "unknown"),
    ]);
    assert_eq!(requests(&source, &labels), 1, "{source}");
    let destination = scrape(&server_metrics);
    let mut labels = edge.to_vec();
    labels.extend([
        ("reporter", "destination"),
        ("connection_security_policy", "mutual_tls"),
    ]);
    assert_eq!(requests(&destination, &labels), 1, "{destination}");

    // A target it has no policy for: in plain text, and told nothing.
    let stranger: MeshClient<Empty<Bytes>> =
        MeshClient::builder(resolve).metadata(&reviews).build();
    let req = http::Request::get("http://ratings:9080/")
        .body(Empty::new())
        .unwrap();
    let res = stranger.oneshot(req).await.unwrap();
    assert!(!res.headers().contains_key(PEER_METADATA));
    res.into_body().collect().await.unwrap();
    let destination = scrape(&server_metrics);
    let unknown = [
        ("source_workload", "unknown"),
        ("connection_security_policy", "none"),
    ];
    assert_eq!(requests(&destination, &unknown), 1, "{destination}");

    // The server's connections, read at the scrape.
    let mut registry = Registry::default();
    state.register(&mut registry);
    let mut text = String::new();
    encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("mesh_server_connections_total{server=\"ratings\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("mesh_server_mtls_connections_total{server=\"ratings\"} 1\n"),
        "{text}"
    );
}

/// A tonic service behind a MeshServer, called by a reporting client:
/// its requests are `grpc` at both ends, with their status and the
/// messages each way.
#[tokio::test]
async fn grpc_requests_report_their_status_and_messages_at_both_ends() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_server::HealthServer};

    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("ratings", tonic_health::ServingStatus::Serving)
        .await;
    let metrics = IstioMetrics::default();
    let server = MeshServer::builder()
        .mtls(MtlsMode::Disable)
        .metrics(metrics.clone(), workload("ratings", "v1"), None)
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let service: HealthServer<_> = health;
    tokio::spawn(async move { server.serve(listener, service).await });

    let target: mesh_core::Authority = "ratings:9080".parse().unwrap();
    let resolve = mesh_core::StaticResolve::default();
    resolve.set(
        &target,
        mesh_core::EndpointSet::new([mesh_core::Endpoint::new(addr)]),
    );
    // The caller reports too, so both ends count the request messages.
    let caller_metrics = IstioMetrics::default();
    let caller = LocalWorkload {
        metadata: workload("reviews", "v2").into(),
        principal: None,
        service: None,
    };
    let client: MeshClient<CountedBody<tonic::body::Body>> = MeshClient::builder(resolve).build();
    let client =
        IstioMetricsLayer::new(caller_metrics.clone(), Reporter::Source, caller).layer(client);
    let mut health = HealthClient::with_origin(client, "http://ratings:9080".parse().unwrap());
    for service in ["ratings", "ratings", "nothing"] {
        let _ = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await;
    }

    let text = |metrics: &IstioMetrics| {
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        text
    };
    let (text, caller_text) = (text(&metrics), text(&caller_metrics));
    let grpc = |text: &str, status: &str| {
        let labels = format!(
            "request_protocol=\"grpc\",response_code=\"200\",grpc_response_status=\"{status}\""
        );
        text.lines()
            .filter(|l| l.contains(&labels))
            .map(|l| {
                let (name, value) = l.rsplit_once(' ').unwrap();
                (name.split('{').next().unwrap().to_owned(), value.to_owned())
            })
            .filter(|(name, _)| name == "istio_requests_total" || name.ends_with("_messages_total"))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    for text in [&text, &caller_text] {
        let ok = grpc(text, "0");
        assert_eq!(ok["istio_requests_total"], "2", "{text}");
        assert_eq!(ok["istio_request_messages_total"], "2", "{text}");
        assert_eq!(ok["istio_response_messages_total"], "2", "{text}");
        // NOT_FOUND: a trailers-only answer, with no message.
        let not_found = grpc(text, "5");
        assert_eq!(not_found["istio_requests_total"], "1", "{text}");
        assert_eq!(not_found["istio_request_messages_total"], "1", "{text}");
        assert_eq!(not_found["istio_response_messages_total"], "0", "{text}");
    }
    assert!(caller_text.contains("reporter=\"source\""), "{caller_text}");
    let http = text
        .lines()
        .filter(|l| l.starts_with("istio_response_messages_total{"))
        .all(|l| l.contains("request_protocol=\"grpc\""));
    assert!(http, "only gRPC series count messages: {text}");
}
