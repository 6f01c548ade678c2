//! The ADS client's transport: a task that runs [`AdsState`] over a gRPC
//! `StreamAggregatedResources` stream to the bootstrap's first server.
//!
//! - Connects in plain text (`insecure` channel credentials) over TCP or a
//!   Unix domain socket. TLS channel credentials are not supported yet:
//!   [`AdsClient::start`] refuses them with [`AdsClientError::TlsUnsupported`]
//!   rather than falling back to plain text.
//! - Sends what the state asks for, in order: the subscriptions when a
//!   stream starts, the ACK or NACK of every response, and the requests a
//!   subscription change makes.
//! - Runs the does-not-exist timer ([`DOES_NOT_EXIST_TIMEOUT`]) of every
//!   name asked for and never received on the current stream.
//! - When the stream fails or ends, reconnects after an exponential
//!   backoff with full jitter ([`Backoff`]; 1 s doubling up to 30 s by
//!   default), and subscribes to everything again. The backoff starts over
//!   once a stream has carried a response, as gRPC's xDS client does.
//!   Accepted resources stay in the view while disconnected: the last good
//!   configuration keeps serving.
//! - Publishes an [`AdsView`] after every change, through a
//!   [`watch`] channel.
//! - Logs every ACK (`debug`), every NACK (`warn`, one event for each
//!   rejected resource with what the NACK says of it) and every
//!   reconnect (`info`, or `warn` with the error that ended the stream).
//!
//! The task stops when the last [`AdsHandle`] is dropped.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use super::{AdsState, AdsView, Backoff, DOES_NOT_EXIST_TIMEOUT, Outcome, ResourceType};
use crate::bootstrap::{Bootstrap, ChannelCreds, ServerUri};

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the client cannot run against the bootstrap's server.
#[derive(Debug, thiserror::Error)]
pub enum AdsClientError {
    /// The bootstrap lists no server.
    #[error("the bootstrap lists no xDS server")]
    NoServer,
    /// The server wants TLS, which the client does not speak yet.
    #[error("xDS server {server}: TLS channel credentials are not supported yet")]
    TlsUnsupported {
        /// The server's URI.
        server: String,
    },
    /// The server's address is not a valid gRPC endpoint.
    #[error("xDS server {server}: not a valid endpoint")]
    InvalidEndpoint {
        /// The server's URI.
        server: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
}

/// Where the control plane is, checked.
#[derive(Clone, Debug)]
enum Target {
    Tcp(Endpoint),
    Unix { endpoint: Endpoint, path: PathBuf },
}

impl Target {
    fn new(bootstrap: &Bootstrap) -> Result<Self, AdsClientError> {
        let server = bootstrap
            .xds_servers
            .first()
            .ok_or(AdsClientError::NoServer)?;
        let name = server.uri.to_string();
        if let ChannelCreds::Tls(_) = server.channel_creds {
            return Err(AdsClientError::TlsUnsupported { server: name });
        }
        let endpoint = |uri: String| {
            Endpoint::from_shared(uri)
                .map(|e| e.connect_timeout(CONNECT_TIMEOUT))
                .map_err(|source| AdsClientError::InvalidEndpoint {
                    server: name.clone(),
                    source,
                })
        };
        Ok(match &server.uri {
            ServerUri::Tcp(authority) => {
                let authority = authority.strip_prefix("dns:///").unwrap_or(authority);
                Target::Tcp(endpoint(format!("http://{authority}"))?)
            }
            // The URI only names the `:authority`; the connector dials the path.
            ServerUri::Unix(path) => Target::Unix {
                endpoint: endpoint("http://localhost".into())?,
                path: path.clone(),
            },
        })
    }

    async fn connect(self) -> Result<Channel, tonic::transport::Error> {
        match self {
            Target::Tcp(endpoint) => endpoint.connect().await,
            Target::Unix { endpoint, path } => {
                let connector = tower::service_fn(move |_| {
                    let path = path.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(path).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(stream))
                    }
                });
                endpoint.connect_with_connector(connector).await
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp(endpoint) => write!(f, "{}", endpoint.uri()),
            Target::Unix { path, .. } => write!(f, "unix://{}", path.display()),
        }
    }
}

/// The ADS client: [`AdsClient::start`] spawns the task that keeps a
/// stream to the control plane and returns its [`AdsHandle`].
///
/// ```no_run
/// use mesh_xds::Bootstrap;
/// use mesh_xds::ads::AdsClient;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let bootstrap = Bootstrap::from_env()?;
/// let ads = AdsClient::start(&bootstrap)?;
/// ads.subscribe_listener(bootstrap.client_listener_name("reviews.default.svc.cluster.local:9080"));
/// let mut updates = ads.updates();
/// let view = updates
///     .wait_for(|v| v.listeners.contains_key("reviews.default.svc.cluster.local:9080"))
///     .await?
///     .clone();
/// println!("routes: {:?}", view.route_configs.keys().collect::<Vec<_>>());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct AdsClient {
    bootstrap: Bootstrap,
    backoff: Backoff,
}

impl AdsClient {
    /// A client for the bootstrap's first server, with the default backoff.
    pub fn new(bootstrap: &Bootstrap) -> Self {
        Self {
            bootstrap: bootstrap.clone(),
            backoff: Backoff::default(),
        }
    }

    /// The delays between connection attempts.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// [`AdsClient::new`], then [`AdsClient::spawn`].
    pub fn start(bootstrap: &Bootstrap) -> Result<AdsHandle, AdsClientError> {
        Self::new(bootstrap).spawn()
    }

    /// Spawns the client's task on the current Tokio runtime, which must
    /// have the I/O and time drivers. Fails if the bootstrap's first server
    /// cannot be used; connection failures are retried, never returned.
    pub fn spawn(self) -> Result<AdsHandle, AdsClientError> {
        let target = Target::new(&self.bootstrap)?;
        let state = AdsState::from_bootstrap(&self.bootstrap);
        let (view_tx, view_rx) = watch::channel(Arc::new(AdsView::new(&state, false)));
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let task = Task {
            target,
            backoff: self.backoff,
            state,
            commands: commands_rx,
            requests: None,
            view: view_tx,
        };
        tokio::spawn(task.run());
        Ok(AdsHandle {
            commands: commands_tx,
            updates: view_rx,
        })
    }
}

/// A handle on a running [`AdsClient`]; clones share the task, which stops
/// when the last one is dropped.
#[derive(Clone, Debug)]
pub struct AdsHandle {
    commands: mpsc::UnboundedSender<Command>,
    updates: watch::Receiver<Arc<AdsView>>,
}

impl AdsHandle {
    /// Asks for the listener `name`, and what it refers to.
    pub fn subscribe_listener(&self, name: impl Into<String>) {
        // The task outlives every handle, so the send cannot fail.
        let _ = self.commands.send(Command::Subscribe(name.into()));
    }

    /// Stops asking for the listener `name`, and for what only it referred to.
    pub fn unsubscribe_listener(&self, name: impl Into<String>) {
        let _ = self.commands.send(Command::Unsubscribe(name.into()));
    }

    /// The accepted resources, now and after every change.
    pub fn updates(&self) -> watch::Receiver<Arc<AdsView>> {
        self.updates.clone()
    }
}

#[derive(Debug)]
enum Command {
    Subscribe(String),
    Unsubscribe(String),
}

/// The handles are all gone: the task stops.
struct Stop;

struct Task {
    target: Target,
    backoff: Backoff,
    state: AdsState,
    commands: mpsc::UnboundedReceiver<Command>,
    /// The current stream's outgoing requests, while one is up.
    requests: Option<mpsc::UnboundedSender<DiscoveryRequest>>,
    view: watch::Sender<Arc<AdsView>>,
}

impl Task {
    async fn run(mut self) {
        let mut attempt = 0;
        loop {
            let ended = match self.serving(self.target.clone().connect()).await {
                Err(Stop) => return,
                Ok(Ok(channel)) => match self.stream(channel).await {
                    Err(Stop) => return,
                    Ok(ended) => ended,
                },
                Ok(Err(e)) => StreamEnd {
                    responded: false,
                    error: Some(Box::new(e)),
                },
            };
            self.requests = None;
            self.state.on_stream_end();
            self.publish();
            if ended.responded {
                attempt = 0;
            }
            let delay = self.backoff.delay(attempt);
            attempt = attempt.saturating_add(1);
            match &ended.error {
                Some(error) => tracing::warn!(
                    server = %self.target, error, ?delay,
                    "ADS stream failed; reconnecting"
                ),
                None => tracing::info!(
                    server = %self.target, ?delay,
                    "ADS stream ended; reconnecting"
                ),
            }
            if self.serving(tokio::time::sleep(delay)).await.is_err() {
                return;
            }
        }
    }

    /// Awaits `fut` while applying commands; `Stop` if the handles are gone.
    async fn serving<F: Future>(&mut self, fut: F) -> Result<F::Output, Stop> {
        let mut fut = std::pin::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return Ok(out),
                command = self.commands.recv() => self.command(command)?,
            }
        }
    }

    /// Runs one stream until it fails or ends.
    async fn stream(&mut self, channel: Channel) -> Result<StreamEnd, Stop> {
        let (tx, rx) = mpsc::unbounded_channel();
        let outgoing = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|request| (request, rx))
        });
        self.requests = Some(tx);
        let requests = self.state.on_stream_start(now());
        self.send(requests);
        self.publish();
        tracing::debug!(server = %self.target, "ADS stream starting");

        let mut client = AggregatedDiscoveryServiceClient::new(channel);
        let mut incoming = match self
            .serving(client.stream_aggregated_resources(outgoing))
            .await?
        {
            Ok(response) => response.into_inner(),
            Err(status) => return Ok(StreamEnd::failed(false, status)),
        };
        let mut responded = false;
        loop {
            let deadline = self.next_deadline();
            let timer = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                message = incoming.message() => match message {
                    Ok(Some(response)) => {
                        responded = true;
                        self.response(&response);
                    }
                    Ok(None) => return Ok(StreamEnd { responded, error: None }),
                    Err(status) => return Ok(StreamEnd::failed(responded, status)),
                },
                () = timer => self.timers_fired(),
                command = self.commands.recv() => self.command(command)?,
            }
        }
    }

    fn response(&mut self, response: &DiscoveryResponse) {
        let Some(kind) = ResourceType::from_type_url(&response.type_url) else {
            tracing::debug!(
                type_url = response.type_url,
                "ignoring a response of a type the mesh does not read"
            );
            return;
        };
        let outcome = self.state.handle_response(response, now());
        let version = response.version_info.as_str();
        let nonce = response.nonce.as_str();
        if outcome.rejected.is_empty() {
            tracing::debug!(%kind, version, nonce, "ACK");
        } else {
            for error in &outcome.rejected {
                tracing::warn!(%kind, version, nonce, %error, "NACK");
            }
        }
        self.apply(outcome);
        // Versions and NACKs show in the snapshot even when nothing changed.
        self.publish();
    }

    fn command(&mut self, command: Option<Command>) -> Result<(), Stop> {
        let outcome = match command.ok_or(Stop)? {
            Command::Subscribe(name) => self.state.subscribe_listener(&name, now()),
            Command::Unsubscribe(name) => self.state.unsubscribe_listener(&name, now()),
        };
        self.apply(outcome);
        self.publish();
        Ok(())
    }

    /// The does-not-exist deadline that comes first.
    fn next_deadline(&self) -> Option<Instant> {
        self.state
            .waiting()
            .map(|(_, _, since)| Instant::from_std(since) + DOES_NOT_EXIST_TIMEOUT)
            .min()
    }

    fn timers_fired(&mut self) {
        let now = now();
        let expired: Vec<(ResourceType, String)> = self
            .state
            .waiting()
            .filter(|&(_, _, since)| since + DOES_NOT_EXIST_TIMEOUT <= now)
            .map(|(kind, name, _)| (kind, name.to_owned()))
            .collect();
        let mut changed = false;
        for (kind, name) in expired {
            tracing::info!(%kind, name, "resource does not exist");
            let outcome = self.state.mark_missing(kind, &name);
            changed |= !outcome.changes.is_empty();
            self.apply(outcome);
        }
        if changed {
            self.publish();
        }
    }

    fn apply(&mut self, outcome: Outcome) {
        self.send(outcome.requests);
    }

    fn send(&mut self, requests: Vec<DiscoveryRequest>) {
        if let Some(tx) = &self.requests {
            for request in requests {
                // A closed stream shows as its end on the response side.
                let _ = tx.send(request);
            }
        }
    }

    fn publish(&self) {
        let view = AdsView::new(&self.state, self.requests.is_some());
        self.view.send_replace(Arc::new(view));
    }
}

/// How a stream ended.
struct StreamEnd {
    /// Whether it carried a response.
    responded: bool,
    /// Why it failed, if it did.
    error: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StreamEnd {
    fn failed(responded: bool, status: tonic::Status) -> Self {
        Self {
            responded,
            error: Some(Box::new(status)),
        }
    }
}

/// The time the state is given, from Tokio's clock so that paused time
/// drives the timers.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_credentials_are_refused() {
        let mut bootstrap = Bootstrap::insecure("localhost:15010", "node").unwrap();
        bootstrap.xds_servers[0].channel_creds = ChannelCreds::Tls(crate::bootstrap::FileWatcher {
            certificate_file: None,
            private_key_file: None,
            ca_certificate_file: None,
            refresh_interval: Duration::from_secs(600),
        });
        let error = Target::new(&bootstrap).unwrap_err();
        assert!(matches!(error, AdsClientError::TlsUnsupported { .. }));
        assert_eq!(
            error.to_string(),
            "xDS server localhost:15010: TLS channel credentials are not supported yet"
        );
    }

    #[test]
    fn no_server_is_an_error() {
        let mut bootstrap = Bootstrap::insecure("localhost:15010", "node").unwrap();
        bootstrap.xds_servers.clear();
        assert!(matches!(
            Target::new(&bootstrap),
            Err(AdsClientError::NoServer)
        ));
    }
}
