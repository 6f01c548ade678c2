//! The ADS client's transport: a task that runs [`AdsState`] over a gRPC
//! `StreamAggregatedResources` stream to the bootstrap's first server, or
//! [`DeltaAdsState`] over `DeltaAggregatedResources` when
//! [`AdsClient::with_protocol`] says [`Protocol::Delta`].
//!
//! - Connects in plain text (`insecure` channel credentials) over TCP or a
//!   Unix domain socket, or over TCP with TLS (`tls` channel credentials,
//!   gRFC A65: the roots in `ca_certificate_file`, else the system's, and
//!   the client certificate in `certificate_file` and `private_key_file`
//!   when given, read again for each connection). Credentials that cannot
//!   be read or used are an error at [`AdsClient::start`].
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
//! - Holds nothing that grows with how fast handles call or how slowly
//!   the server reads: the handles' subscriptions are counts per listener
//!   ([`Wanted`]), and a stream's unsent requests are at most one per type
//!   ([`Outbox`]).
//!
//! The task stops when the last [`AdsHandle`] is dropped.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;
use tonic::transport::Channel;

use super::flavor::Flavor;
use super::outbox::Outbox;
use super::stats::AdsStats;
use super::target::Target;
use super::wanted::{Changes, Wanted};
use super::{
    AdsState, AdsView, Backoff, DOES_NOT_EXIST_TIMEOUT, DeltaAdsState, Outcome, Protocol,
    ResourceType,
};
use crate::bootstrap::Bootstrap;

/// Why the client cannot run against the bootstrap's server.
#[derive(Debug, thiserror::Error)]
pub enum AdsClientError {
    /// The bootstrap lists no server.
    #[error("the bootstrap lists no xDS server")]
    NoServer,
    /// The server's TLS credentials cannot be read or used.
    #[error("xDS server {server}: TLS credentials")]
    Credentials {
        /// The server's URI.
        server: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// TLS was asked for over a Unix domain socket.
    #[error("xDS server {server}: TLS over a Unix domain socket is not supported")]
    TlsOverUnixSocket {
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
        source: Box<dyn std::error::Error + Send + Sync>,
    },
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
    protocol: Protocol,
}

impl AdsClient {
    /// A client for the bootstrap's first server, with the default backoff.
    pub fn new(bootstrap: &Bootstrap) -> Self {
        Self {
            bootstrap: bootstrap.clone(),
            backoff: Backoff::default(),
            protocol: Protocol::default(),
        }
    }

    /// The variant of the protocol to speak; state of the world by default.
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
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
        let wanted = Arc::new(Wanted::default());
        let stats = Arc::new(AdsStats::default());
        let updates = match self.protocol {
            Protocol::StateOfTheWorld => {
                let state = AdsState::from_bootstrap(&self.bootstrap);
                Task::spawn(target, self.backoff, state, wanted.clone(), stats.clone())
            }
            Protocol::Delta => {
                let state = DeltaAdsState::from_bootstrap(&self.bootstrap);
                Task::spawn(target, self.backoff, state, wanted.clone(), stats.clone())
            }
        };
        Ok(AdsHandle {
            wanted: Arc::new(Handles(wanted)),
            updates,
            bootstrap: Arc::new(self.bootstrap),
            stats,
        })
    }
}

/// A handle on a running [`AdsClient`]; clones share the task, which stops
/// when the last one is dropped.
#[derive(Clone, Debug)]
pub struct AdsHandle {
    wanted: Arc<Handles>,
    updates: watch::Receiver<Arc<AdsView>>,
    bootstrap: Arc<Bootstrap>,
    stats: Arc<AdsStats>,
}

/// Shared by every clone of a handle: the last one dropped stops the task.
#[derive(Debug)]
struct Handles(Arc<Wanted>);

impl Drop for Handles {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl AdsHandle {
    /// The bootstrap the client runs by.
    pub fn bootstrap(&self) -> &Bootstrap {
        &self.bootstrap
    }

    /// Asks for the listener `name`, and what it refers to. Subscriptions
    /// are counted: a listener is asked for until each subscription made
    /// through any clone of the handle has been undone.
    pub fn subscribe_listener(&self, name: impl Into<String>) {
        self.wanted.0.subscribe(name.into());
    }

    /// Undoes one [`subscribe_listener`](Self::subscribe_listener) of
    /// `name`; after the last, stops asking for the listener and for what
    /// only it referred to.
    pub fn unsubscribe_listener(&self, name: impl Into<String>) {
        self.wanted.0.unsubscribe(&name.into());
    }

    /// The accepted resources, now and after every change.
    pub fn updates(&self) -> watch::Receiver<Arc<AdsView>> {
        self.updates.clone()
    }

    /// ACKs, NACKs and streams so far.
    pub fn stats(&self) -> &AdsStats {
        &self.stats
    }

    /// What the client holds now, as Envoy's admin `ConfigDump`.
    pub fn config_dump(&self) -> envoy_types::pb::envoy::admin::v3::ConfigDump {
        // A clone of the view, so the task is not kept from publishing
        // while the dump is written.
        let view = self.updates.borrow().clone();
        view.config_dump(clock())
    }

    /// What the client holds now, as CSDS's `ClientConfig` (gRFC A40).
    pub fn client_config(&self) -> envoy_types::pb::envoy::service::status::v3::ClientConfig {
        let view = self.updates.borrow().clone();
        view.client_config(&self.bootstrap.node, clock())
    }
}

/// Now, on the state's clock and the wall clock.
fn clock() -> super::Clock {
    super::Clock {
        instant: now(),
        wall: std::time::SystemTime::now(),
    }
}

/// The handles are all gone: the task stops.
struct Stop;

struct Task<F: Flavor> {
    target: Target,
    backoff: Backoff,
    state: F,
    wanted: Arc<Wanted>,
    /// The current stream's outgoing requests, while one is up.
    requests: Option<Outbox<F::Request>>,
    /// Why the last stream, or attempt at one, failed; cleared by a
    /// response.
    stream_error: Option<String>,
    /// The listeners the state is subscribed to for the handles.
    listeners: HashSet<String>,
    view: watch::Sender<Arc<AdsView>>,
    stats: Arc<AdsStats>,
}

impl<F: Flavor> Task<F> {
    /// Spawns the task running `state`; the receiver of its views.
    fn spawn(
        target: Target,
        backoff: Backoff,
        state: F,
        wanted: Arc<Wanted>,
        stats: Arc<AdsStats>,
    ) -> watch::Receiver<Arc<AdsView>> {
        let (view, updates) = watch::channel(Arc::new(AdsView::new(state.state(), false)));
        let task = Task {
            target,
            backoff,
            state,
            wanted,
            requests: None,
            stream_error: None,
            listeners: HashSet::new(),
            view,
            stats,
        };
        tokio::spawn(task.run());
        updates
    }

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
                    error: Some(e),
                },
            };
            self.requests = None;
            self.state.on_stream_end();
            if let Some(error) = &ended.error {
                self.stream_error = Some(error_chain(error.as_ref()));
            }
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

    /// Awaits `fut` while applying the handles' subscriptions; `Stop` if
    /// the handles are gone.
    async fn serving<Fut: Future>(&mut self, fut: Fut) -> Result<Fut::Output, Stop> {
        let mut fut = std::pin::pin!(fut);
        let wanted = self.wanted.clone();
        loop {
            tokio::select! {
                out = &mut fut => return Ok(out),
                changes = wanted.changes() => self.changes(changes)?,
            }
        }
    }

    /// Runs one stream until it fails or ends.
    async fn stream(&mut self, channel: Channel) -> Result<StreamEnd, Stop> {
        let (outbox, outgoing) = Outbox::new();
        self.requests = Some(outbox);
        let requests = self.state.on_stream_start(now());
        self.stats.stream_started();
        self.send(requests);
        self.publish();
        tracing::debug!(server = %self.target, "ADS stream starting");

        let mut incoming = match self.serving(F::open(channel, outgoing)).await? {
            Ok(incoming) => incoming,
            Err(status) => return Ok(StreamEnd::failed(false, status)),
        };
        let mut responded = false;
        let wanted = self.wanted.clone();
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
                        self.stream_error = None;
                        self.response(&response);
                    }
                    Ok(None) => return Ok(StreamEnd { responded, error: None }),
                    Err(status) => return Ok(StreamEnd::failed(responded, status)),
                },
                () = timer => self.timers_fired(),
                changes = wanted.changes() => self.changes(changes)?,
            }
        }
    }

    fn response(&mut self, response: &F::Response) {
        let (type_url, version, nonce) = F::describe(response);
        let Some(kind) = ResourceType::from_type_url(type_url) else {
            tracing::debug!(
                type_url,
                "ignoring a response of a type the mesh does not read"
            );
            return;
        };
        let outcome = self.state.handle_response(response, now());
        if outcome.rejected.is_empty() {
            tracing::debug!(%kind, version, nonce, "ACK");
            self.stats.acked(kind);
        } else {
            self.stats.nacked(kind);
            for error in &outcome.rejected {
                tracing::warn!(%kind, version, nonce, %error, "NACK");
            }
        }
        self.apply(outcome);
        // Versions and NACKs show in the snapshot even when nothing changed.
        self.publish();
    }

    /// Subscribes to the listeners the handles now want and unsubscribes
    /// from those they no longer do.
    fn changes(&mut self, changes: Changes) -> Result<(), Stop> {
        let Changes::Listeners(listeners) = changes else {
            return Err(Stop);
        };
        let mut changed = false;
        for (name, wanted) in listeners {
            let outcome = if wanted && self.listeners.insert(name.clone()) {
                self.state.subscribe_listener(&name, now())
            } else if !wanted && self.listeners.remove(&name) {
                self.state.unsubscribe_listener(&name, now())
            } else {
                continue;
            };
            self.apply(outcome);
            changed = true;
        }
        if changed {
            self.publish();
        }
        Ok(())
    }

    /// The does-not-exist deadline that comes first.
    fn next_deadline(&self) -> Option<Instant> {
        self.state
            .state()
            .waiting()
            .map(|(_, _, since)| Instant::from_std(since) + DOES_NOT_EXIST_TIMEOUT)
            .min()
    }

    fn timers_fired(&mut self) {
        let now = now();
        let expired: Vec<(ResourceType, String)> = self
            .state
            .state()
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

    fn apply(&mut self, outcome: Outcome<F::Request>) {
        self.send(outcome.requests);
    }

    fn send(&mut self, requests: Vec<F::Request>) {
        if let Some(outbox) = &self.requests {
            for request in requests {
                outbox.push(request);
            }
        }
    }

    fn publish(&self) {
        let mut view = AdsView::new(self.state.state(), self.requests.is_some());
        view.stream_error.clone_from(&self.stream_error);
        self.view.send_replace(Arc::new(view));
    }
}

/// `error` and its sources, as one line: a transport error says little
/// without its causes.
pub(super) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        next = cause.source();
    }
    text
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
