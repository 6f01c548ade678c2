//! gRPC through two sidecars, untouched: a tonic client sends to
//! productpage's outbound listener as to `ratings:9080`, over h2c, the
//! mesh's mutual TLS and ratings' inbound sidecar to a tonic server; a
//! server stream carries each status change as it happens, and a
//! bidirectional one each message both ways before the next is sent.

mod support;

use futures_util::StreamExt;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as Status;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::HealthServer;

use support::{Sidecar, WAIT, certificates, control_plane, instance, service};

const PRODUCTPAGE: &str = "spiffe://cluster.local/ns/default/sa/productpage";
const RATINGS: &str = "spiffe://cluster.local/ns/default/sa/ratings";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_and_streaming_grpc_cross_both_sidecars() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    certificates(dir, &[("productpage", PRODUCTPAGE), ("ratings", RATINGS)]);
    let (plane, xds) = control_plane(&[("ratings.yaml", service("ratings"))]).await;

    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("ratings", ServingStatus::Serving)
        .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_port = listener.local_addr().unwrap().port();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service::<HealthServer<_>>(health)
            .add_service(Echo)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    let ratings = Sidecar::workload(dir, xds, "ratings", "v1", Some(app_port)).await;
    plane.set_instances(
        "test",
        vec![instance("ratings", "ratings", ratings.inbound())],
    );
    let productpage = Sidecar::workload(dir, xds, "productpage", "v1", None).await;
    ratings.ready().await;

    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", productpage.outbound()))
            .unwrap()
            .origin("http://ratings:9080".parse().unwrap())
            .connect()
            .await
            .unwrap();
    let mut client = HealthClient::new(channel.clone());
    let request = || HealthCheckRequest {
        service: "ratings".into(),
    };
    let status = tokio::time::timeout(WAIT, client.check(request()))
        .await
        .unwrap();
    let status = status.unwrap_or_else(|e| panic!("{e}\n{}", productpage.log()));
    assert_eq!(status.into_inner().status(), Status::Serving);

    // A status the server does not know: its own gRPC error, untouched.
    let unknown = client
        .check(HealthCheckRequest {
            service: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let mut watch = client.watch(request()).await.unwrap().into_inner();
    let first = tokio::time::timeout(WAIT, watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.status(), Status::Serving);
    reporter
        .set_service_status("ratings", ServingStatus::NotServing)
        .await;
    let next = tokio::time::timeout(WAIT, watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.status(), Status::NotServing);

    // Both ways at once: each message comes back before the next goes.
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(1);
    let outbound =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    let chat = http::uri::PathAndQuery::from_static("/test.Echo/Chat");
    let codec = tonic_prost::ProstCodec::<String, String>::default();
    let call = grpc.streaming(tonic::Request::new(outbound), chat, codec);
    let mut inbound = tokio::time::timeout(WAIT, call)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}\n{}", productpage.log()))
        .into_inner();
    for i in 0..3 {
        tx.send(format!("message {i}")).await.unwrap();
        let echoed = tokio::time::timeout(WAIT, inbound.message()).await.unwrap();
        assert_eq!(echoed.unwrap(), Some(format!("message {i}")));
    }
    drop(tx);
    let end = tokio::time::timeout(WAIT, inbound.message()).await.unwrap();
    assert_eq!(end.unwrap(), None, "the stream ends when the client's does");
}

/// `test.Echo/Chat`: a bidirectional stream answering each message with
/// itself as it comes.
#[derive(Clone)]
struct Echo;

impl tonic::server::NamedService for Echo {
    const NAME: &'static str = "test.Echo";
}

impl tower::Service<http::Request<tonic::body::Body>> for Echo {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            let echo = tower::service_fn(|req: tonic::Request<tonic::Streaming<String>>| async {
                Ok::<_, tonic::Status>(tonic::Response::new(req.into_inner()))
            });
            let codec = tonic_prost::ProstCodec::<String, String>::default();
            Ok(tonic::server::Grpc::new(codec).streaming(echo, req).await)
        })
    }
}
