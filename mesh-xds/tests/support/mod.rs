//! An ADS server on `127.0.0.1:0` for the client's integration tests,
//! state of the world and delta, and istiod-shaped resources for it to
//! serve. `mesh-tower`'s xDS tests use it too, so not every test crate
//! uses all of it.

#![allow(dead_code)]

mod delta;
pub(crate) mod resources;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::protobuf::Any;
use futures_util::Stream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status, Streaming};

/// How long any test waits for anything.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A resource to serve: its name and its packed proto.
#[derive(Clone, Debug)]
pub(crate) struct Resource {
    pub(crate) name: String,
    pub(crate) any: Any,
}

/// The resources of one type, with the version they were set at.
#[derive(Clone, Debug, Default)]
struct Served {
    version: u64,
    resources: Vec<Resource>,
}

/// A request the server received.
#[derive(Clone, Debug, Default)]
pub(crate) struct Recorded {
    pub(crate) type_url: String,
    /// State of the world: the version the request ACKs.
    pub(crate) version: String,
    pub(crate) nonce: String,
    /// State of the world: the names subscribed; delta: the names newly
    /// subscribed.
    pub(crate) names: Vec<String>,
    /// Delta: the names unsubscribed.
    pub(crate) unsubscribed: Vec<String>,
    /// Delta: the versions the client holds, on a new stream.
    pub(crate) initial_versions: BTreeMap<String, String>,
    /// The NACK's message, if it is one.
    pub(crate) error: Option<String>,
}

impl Recorded {
    /// An ACK of a response: a nonce and no error.
    pub(crate) fn is_ack(&self) -> bool {
        !self.nonce.is_empty() && self.error.is_none()
    }
}

struct Shared {
    /// Type URL → what is served for it.
    resources: watch::Sender<BTreeMap<String, Served>>,
    requests: watch::Sender<Vec<Recorded>>,
}

/// The test ADS server; it keeps its port, resources and recorded requests
/// across [`AdsServer::stop`] and [`AdsServer::restart`].
pub(crate) struct AdsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Option<Running>,
    /// TLS, when the server speaks it.
    tls: Option<tonic::transport::ServerTlsConfig>,
}

struct Running {
    stop_streams: watch::Sender<bool>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl AdsServer {
    /// A server on a free port of 127.0.0.1, serving nothing yet.
    pub(crate) async fn start() -> Self {
        Self::start_with(None).await
    }

    /// As [`start`](Self::start), speaking TLS as `tls` says.
    pub(crate) async fn start_tls(tls: tonic::transport::ServerTlsConfig) -> Self {
        Self::start_with(Some(tls)).await
    }

    async fn start_with(tls: Option<tonic::transport::ServerTlsConfig>) -> Self {
        let shared = Arc::new(Shared {
            resources: watch::Sender::new(BTreeMap::new()),
            requests: watch::Sender::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let running = Some(Self::serve(incoming, &shared, tls.clone()));
        Self {
            addr,
            shared,
            running,
            tls,
        }
    }

    /// A server on a Unix domain socket at `path`, serving nothing yet; it
    /// cannot be restarted.
    pub(crate) async fn start_unix(path: &std::path::Path) -> Self {
        let shared = Arc::new(Shared {
            resources: watch::Sender::new(BTreeMap::new()),
            requests: watch::Sender::new(Vec::new()),
        });
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        let incoming = futures_util::stream::unfold(listener, |listener| async move {
            let accepted = listener.accept().await.map(|(stream, _)| stream);
            Some((accepted, listener))
        });
        let running = Some(Self::serve(Box::pin(incoming), &shared, None));
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            shared,
            running,
            tls: None,
        }
    }

    /// `host:port`, as a bootstrap names it.
    pub(crate) fn authority(&self) -> String {
        self.addr.to_string()
    }

    fn serve<I, IO>(
        incoming: I,
        shared: &Arc<Shared>,
        tls: Option<tonic::transport::ServerTlsConfig>,
    ) -> Running
    where
        I: Stream<Item = std::io::Result<IO>> + Send + Unpin + 'static,
        IO: tonic::transport::server::Connected
            + tokio::io::AsyncRead
            + tokio::io::AsyncWrite
            + Unpin
            + Send
            + 'static,
    {
        let (stop_streams, stop_rx) = watch::channel(false);
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        let service = Service {
            shared: shared.clone(),
            stop: stop_rx,
        };
        let task = tokio::spawn(async move {
            let mut builder = tonic::transport::Server::builder();
            if let Some(tls) = tls {
                builder = builder.tls_config(tls).expect("a usable TLS configuration");
            }
            builder
                .add_service(AggregatedDiscoveryServiceServer::new(service))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = shutdown_rx.await;
                })
                .await
                .unwrap();
        });
        Running {
            stop_streams,
            shutdown,
            task,
        }
    }

    /// Ends every stream with `UNAVAILABLE` and closes the port.
    pub(crate) async fn stop(&mut self) {
        let running = self.running.take().expect("the server is running");
        running.stop_streams.send_replace(true);
        let _ = running.shutdown.send(());
        tokio::time::timeout(WAIT, running.task)
            .await
            .expect("the server stops")
            .unwrap();
    }

    /// Serves again on the same port.
    pub(crate) async fn restart(&mut self) {
        assert!(self.running.is_none(), "the server is stopped");
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        self.running = Some(Self::serve(incoming, &self.shared, self.tls.clone()));
    }

    /// Serves `resources` for `type_url` from now on, to every stream.
    pub(crate) fn set(&self, type_url: &str, resources: Vec<Resource>) {
        self.shared.resources.send_modify(|all| {
            let version = all.values().map(|s| s.version).max().unwrap_or(0) + 1;
            all.insert(type_url.to_owned(), Served { version, resources });
        });
    }

    /// Waits until a request satisfies `pred`, and returns it.
    pub(crate) async fn wait_for_request(&self, pred: impl Fn(&Recorded) -> bool) -> Recorded {
        let mut requests = self.shared.requests.subscribe();
        let found = tokio::time::timeout(WAIT, async {
            requests
                .wait_for(|all| all.iter().any(&pred))
                .await
                .unwrap()
                .iter()
                .find(|r| pred(r))
                .cloned()
                .unwrap()
        })
        .await;
        found.unwrap_or_else(|_| {
            panic!(
                "no such request in {:#?}",
                self.shared.requests.borrow().as_slice()
            )
        })
    }

    /// Every request received so far.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.borrow().clone()
    }
}

struct Service {
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<DiscoveryResponse, Status>> + Send>>;
type DeltaStream = Pin<Box<dyn Stream<Item = Result<DeltaDiscoveryResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AggregatedDiscoveryService for Service {
    type StreamAggregatedResourcesStream = ResponseStream;
    type DeltaAggregatedResourcesStream = DeltaStream;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<ResponseStream>, Status> {
        let (tx, rx) = mpsc::unbounded_channel();
        let stream = AdsStream {
            shared: self.shared.clone(),
            tx,
            subscriptions: BTreeMap::new(),
            nonce: 0,
        };
        tokio::spawn(stream.run(request.into_inner(), self.stop.clone()));
        let responses =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
            );
        Ok(Response::new(Box::pin(responses)))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<DeltaStream>, Status> {
        let (tx, rx) = mpsc::unbounded_channel();
        let stream = delta::DeltaAdsStream::new(self.shared.clone(), tx);
        tokio::spawn(stream.run(request.into_inner(), self.stop.clone()));
        let responses =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
            );
        Ok(Response::new(Box::pin(responses)))
    }
}

/// What one stream subscribed to for one type.
struct Subscription {
    names: Vec<String>,
    /// The version of the last response sent.
    sent: u64,
}

struct AdsStream {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Result<DiscoveryResponse, Status>>,
    subscriptions: BTreeMap<String, Subscription>,
    nonce: u64,
}

impl AdsStream {
    async fn run(
        mut self,
        mut incoming: Streaming<DiscoveryRequest>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut resources = self.shared.resources.subscribe();
        loop {
            tokio::select! {
                request = incoming.message() => match request {
                    Ok(Some(request)) => self.request(request),
                    Ok(None) | Err(_) => return,
                },
                changed = resources.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.resources_changed();
                }
                _ = stop.wait_for(|stop| *stop) => {
                    let _ = self.tx.send(Err(Status::unavailable("server stopping")));
                    return;
                }
            }
        }
    }

    fn request(&mut self, request: DiscoveryRequest) {
        let mut names = request.resource_names.clone();
        names.sort();
        self.shared.requests.send_modify(|all| {
            all.push(Recorded {
                type_url: request.type_url.clone(),
                version: request.version_info.clone(),
                nonce: request.response_nonce.clone(),
                names: request.resource_names.clone(),
                error: request.error_detail.as_ref().map(|s| s.message.clone()),
                ..Recorded::default()
            })
        });
        let same = self
            .subscriptions
            .get(&request.type_url)
            .is_some_and(|s| s.names == names);
        if !same {
            self.subscriptions
                .insert(request.type_url.clone(), Subscription { names, sent: 0 });
            self.respond(&request.type_url);
        }
    }

    fn resources_changed(&mut self) {
        let current: Vec<(String, u64)> = self
            .shared
            .resources
            .borrow()
            .iter()
            .map(|(url, served)| (url.clone(), served.version))
            .collect();
        for (url, version) in current {
            if self
                .subscriptions
                .get(&url)
                .is_some_and(|s| s.sent != version)
            {
                self.respond(&url);
            }
        }
    }

    /// Sends everything served for `type_url` that the stream asked for.
    fn respond(&mut self, type_url: &str) {
        let served = self
            .shared
            .resources
            .borrow()
            .get(type_url)
            .cloned()
            .unwrap_or_default();
        let subscription = self.subscriptions.get_mut(type_url).unwrap();
        subscription.sent = served.version;
        let resources = served
            .resources
            .into_iter()
            .filter(|r| subscription.names.is_empty() || subscription.names.contains(&r.name))
            .map(|r| r.any)
            .collect();
        self.nonce += 1;
        let _ = self.tx.send(Ok(DiscoveryResponse {
            version_info: served.version.to_string(),
            resources,
            type_url: type_url.to_owned(),
            nonce: self.nonce.to_string(),
            ..DiscoveryResponse::default()
        }));
    }
}
