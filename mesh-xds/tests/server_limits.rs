//! The ADS server's limits against raw streams: past `max_streams` a
//! stream is refused, past `max_subscriptions` it is ended, both with
//! `RESOURCE_EXHAUSTED` naming the limit, and the others go on.

use std::net::SocketAddr;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use mesh_xds::ads::ResourceType;
use mesh_xds::server::{AdsServer, ResourceCache, ServerLimits};
use tokio::sync::mpsc;
use tonic::{Code, Status, Streaming};

const WAIT: Duration = Duration::from_secs(10);
const CDS: ResourceType = ResourceType::Cluster;

async fn serve(limits: ServerLimits) -> (AdsServer, SocketAddr) {
    let server = AdsServer::new(ResourceCache::new()).with_limits(limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let service = server.clone().into_service();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    (server, addr)
}

/// A raw stream of either protocol: requests in, responses out.
struct Raw<Req, Res> {
    requests: mpsc::UnboundedSender<Req>,
    responses: Streaming<Res>,
}

impl<Req, Res> Raw<Req, Res> {
    fn send(&self, request: Req) {
        self.requests.send(request).unwrap();
    }

    /// The next response, or the status the stream ended with.
    async fn next(&mut self) -> Result<Res, Status> {
        match tokio::time::timeout(WAIT, self.responses.message()).await {
            Ok(Ok(Some(response))) => Ok(response),
            Ok(Ok(None)) => Err(Status::ok("the stream ended")),
            Ok(Err(status)) => Err(status),
            Err(_) => panic!("nothing in time"),
        }
    }
}

fn channel<T: Send + 'static>() -> (
    mpsc::UnboundedSender<T>,
    impl futures_util::Stream<Item = T> + Send + 'static,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let outgoing =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
    (tx, outgoing)
}

async fn sotw(addr: SocketAddr) -> Result<Raw<DiscoveryRequest, DiscoveryResponse>, Status> {
    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let (requests, outgoing) = channel();
    let responses = client
        .stream_aggregated_resources(outgoing)
        .await?
        .into_inner();
    Ok(Raw {
        requests,
        responses,
    })
}

async fn delta(
    addr: SocketAddr,
) -> Result<Raw<DeltaDiscoveryRequest, DeltaDiscoveryResponse>, Status> {
    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let (requests, outgoing) = channel();
    let responses = client
        .delta_aggregated_resources(outgoing)
        .await?
        .into_inner();
    Ok(Raw {
        requests,
        responses,
    })
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn cds(resource_names: Vec<String>) -> DiscoveryRequest {
    DiscoveryRequest {
        type_url: CDS.type_url().into(),
        resource_names,
        ..Default::default()
    }
}

fn assert_exhausted(status: &Status, limit: &str) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains(limit), "{status:?}");
}

#[tokio::test]
async fn streams_past_the_limit_are_refused_until_one_closes() {
    let (server, addr) = serve(ServerLimits {
        max_streams: 2,
        ..ServerLimits::default()
    })
    .await;
    let first = sotw(addr).await.unwrap();
    let mut second = delta(addr).await.unwrap();
    second.send(DeltaDiscoveryRequest {
        type_url: CDS.type_url().into(),
        ..Default::default()
    });
    second.next().await.unwrap();

    let refused = match sotw(addr).await {
        Ok(mut third) => third.next().await.expect_err("refused"),
        Err(status) => status,
    };
    assert_exhausted(&refused, "max_streams");
    assert_eq!(
        refused.message(),
        "too many ADS streams are open: max_streams is 2"
    );
    let Err(refused) = delta(addr).await else {
        panic!("a third stream served")
    };
    assert_exhausted(&refused, "max_streams");

    // The streams served go on; once one closes, a new one is served.
    first.send(cds(vec![]));
    drop(first);
    let reopened = tokio::time::timeout(WAIT, async {
        loop {
            if server.clients().len() < 2
                && let Ok(mut raw) = sotw(addr).await
            {
                raw.send(cds(vec![]));
                if raw.next().await.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(reopened.is_ok(), "no stream served after one closed");
}

#[tokio::test]
async fn a_stream_subscribing_past_the_limit_is_ended_over_both_protocols() {
    let (server, addr) = serve(ServerLimits {
        max_subscriptions: 10,
        ..ServerLimits::default()
    })
    .await;
    // State of the world: every type's list counts.
    let mut raw = sotw(addr).await.unwrap();
    raw.send(cds(names("c", 6)));
    raw.next().await.unwrap();
    raw.send(DiscoveryRequest {
        type_url: ResourceType::LoadAssignment.type_url().into(),
        resource_names: names("e", 4),
        ..Default::default()
    });
    raw.next().await.unwrap();
    raw.send(cds(names("c", 7)));
    let ended = raw.next().await.expect_err("ended");
    assert_exhausted(&ended, "max_subscriptions");
    assert_eq!(
        ended.message(),
        "the stream subscribes to 11 names: max_subscriptions is 10"
    );

    // Delta: names add up over requests.
    let mut raw = delta(addr).await.unwrap();
    for chunk in names("c", 12).chunks(6) {
        raw.send(DeltaDiscoveryRequest {
            type_url: CDS.type_url().into(),
            resource_names_subscribe: chunk.to_vec(),
            ..Default::default()
        });
    }
    raw.next().await.unwrap();
    let ended = loop {
        match raw.next().await {
            Ok(_) => continue,
            Err(status) => break status,
        }
    };
    assert_exhausted(&ended, "max_subscriptions");

    // A stream within the limit is unaffected.
    let mut ok = sotw(addr).await.unwrap();
    ok.send(cds(names("c", 10)));
    ok.next().await.unwrap();
    assert!(!server.clients().is_empty());
}
