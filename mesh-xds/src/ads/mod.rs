//! The ADS client: [`AdsClient`] runs it over a gRPC stream; [`AdsState`],
//! its core, decides what to ask the control plane for and what to make of
//! its answers, without any I/O, in the state-of-the-world protocol, and
//! [`DeltaAdsState`] wraps it to speak the incremental (delta) one.
//!
//! [`AdsState`] is driven by the transport (a gRPC stream): it hands the
//! state every `DiscoveryResponse` and sends the `DiscoveryRequest`s the
//! state returns, in order. The state follows gRPC's xDS client:
//!
//! - Watches chain as in gRFC A27: the application subscribes to
//!   listeners; an accepted listener subscribes to its route
//!   configuration (RDS), an accepted route configuration (or a listener's
//!   inline one) to every cluster it sends to (CDS), and an accepted EDS
//!   cluster to its load assignment (EDS), by its service name or else its
//!   own; a gateway's listener subscribes to every server's route
//!   configuration and to the secrets (SDS) its servers' certificates
//!   come from. A name nothing refers to any more is unsubscribed, and its
//!   resource dropped, which may unsubscribe further names.
//! - Each response is ACKed or NACKed (gRFC A46): valid resources are
//!   applied even when others in the same response are not; an invalid one
//!   keeps its last accepted copy; the NACK carries the last ACKed version,
//!   the response's nonce and an `INVALID_ARGUMENT` status listing every
//!   rejected resource. A resource that cannot be decoded or has no name is
//!   rejected by its index (`resources[2]`). Resources nobody subscribed to
//!   are ignored, valid or not.
//! - Deletion (gRFC A53): a listener or cluster accepted before and absent
//!   from a response is deleted, unless the server supports
//!   `ignore_resource_deletion`; route configurations, load assignments
//!   and secrets are only ever replaced.
//! - A reconnect re-subscribes everything with the last accepted versions
//!   and no nonces; the first request of a stream carries the node.
//! - Does-not-exist (15 s in gRPC): [`AdsState::waiting`] lists the names
//!   asked for on the current stream that nothing was received for, with
//!   since when; the transport runs the timer and calls
//!   [`AdsState::mark_missing`]. Times are the caller's [`Instant`]s: the
//!   state reads no clock.
//!
//! ```
//! use std::time::Instant;
//! use mesh_xds::ads::{AdsState, ResourceType};
//! use mesh_xds::bootstrap::Node;
//!
//! let node = Node { id: "sidecar~10.0.0.1~productpage-v1.default~default.svc.cluster.local".into(), ..Node::default() };
//! let mut ads = AdsState::new(&node);
//! let now = Instant::now();
//! ads.subscribe_listener("reviews.default.svc.cluster.local:9080", now);
//! let requests = ads.on_stream_start(now);
//! assert_eq!(requests.len(), 1);
//! assert_eq!(requests[0].type_url, ResourceType::Listener.type_url());
//! assert_eq!(requests[0].resource_names, ["reviews.default.svc.cluster.local:9080"]);
//! assert!(requests[0].node.is_some());
//! ```

mod backoff;
mod client;
mod delta;
mod dump;
mod flavor;
mod node;
mod outbox;
mod snapshot;
mod state;
mod stats;
mod target;
#[cfg(test)]
mod tests;
mod view;
mod wanted;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::rpc::Status;

use crate::bootstrap::{Bootstrap, Node};
use crate::resource::{
    Discovery, ResourceError, RouteSource, XdsCluster, XdsListener, XdsLoadAssignment,
    XdsRouteConfig, XdsSecret,
};
pub use crate::resource::{Protocol, ResourceType};
pub use backoff::Backoff;
pub use client::{AdsClient, AdsClientError, AdsHandle};
pub use delta::{DeltaAdsState, DeltaOutcome};
pub use dump::{Clock, ResourceStatus};
pub use snapshot::{Snapshot, TypeSnapshot};
pub use state::RawResource;
use state::{Common, TypeState};
pub use stats::AdsStats;
pub use view::AdsView;

/// How long gRPC waits for a subscribed resource before taking it as not
/// existing.
pub const DOES_NOT_EXIST_TIMEOUT: Duration = Duration::from_secs(15);

/// The server feature that keeps listeners and clusters a response leaves
/// out (gRFC A53).
pub const IGNORE_RESOURCE_DELETION: &str = "ignore_resource_deletion";

/// `google.rpc.Code.INVALID_ARGUMENT`, the code of a NACK's status.
const INVALID_ARGUMENT: i32 = 3;

/// What happened to one resource's accepted value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new value was accepted (it may equal the old one).
    Updated,
    /// The server says it does not exist: deleted from LDS or CDS, or
    /// marked missing when its timer fired. Still subscribed.
    DoesNotExist,
    /// Nothing refers to it any more; its value, if any, is gone.
    Unsubscribed,
}

/// A change to one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changed {
    /// Its type.
    pub kind: ResourceType,
    /// Its name.
    pub name: String,
    /// What happened.
    pub change: Change,
}

impl Changed {
    fn new(kind: ResourceType, name: String, change: Change) -> Self {
        Self { kind, name, change }
    }
}

/// What one step of the state machine asks of the transport: `R` is
/// `DiscoveryRequest` for state of the world and `DeltaDiscoveryRequest`
/// for delta ([`DeltaOutcome`]).
#[derive(Clone, Debug, Default)]
pub struct Outcome<R = DiscoveryRequest> {
    /// Requests to send, in order; none while no stream is up.
    pub requests: Vec<R>,
    /// Accepted resources that changed, in the order they changed.
    pub changes: Vec<Changed>,
    /// Resources the last response carried that were rejected; their
    /// `Display` is what the NACK says of each.
    pub rejected: Vec<ResourceError>,
}

/// The ADS client's state over every stream it runs: subscriptions,
/// versions and accepted resources of LDS, RDS, CDS, EDS and SDS.
#[derive(Clone, Debug)]
pub struct AdsState {
    node: core::Node,
    ignore_resource_deletion: bool,
    /// Whether a stream is up to carry requests.
    stream_up: bool,
    /// Whether the node went out on the current stream.
    node_sent: bool,
    listeners: TypeState<XdsListener>,
    route_configs: TypeState<XdsRouteConfig>,
    clusters: TypeState<XdsCluster>,
    load_assignments: TypeState<XdsLoadAssignment>,
    secrets: TypeState<XdsSecret>,
}

impl AdsState {
    /// A client identifying itself as `node`, subscribed to nothing.
    pub fn new(node: &Node) -> Self {
        Self {
            node: node::to_proto(node),
            ignore_resource_deletion: false,
            stream_up: false,
            node_sent: false,
            listeners: TypeState::default(),
            route_configs: TypeState::default(),
            clusters: TypeState::default(),
            load_assignments: TypeState::default(),
            secrets: TypeState::default(),
        }
    }

    /// A client for the bootstrap's first server, as its node, keeping
    /// deleted resources if that server lists `ignore_resource_deletion`.
    pub fn from_bootstrap(bootstrap: &Bootstrap) -> Self {
        let ignore = bootstrap
            .xds_servers
            .first()
            .is_some_and(|s| s.supports(IGNORE_RESOURCE_DELETION));
        Self::new(&bootstrap.node).with_ignore_resource_deletion(ignore)
    }

    /// Whether listeners and clusters absent from a response are kept
    /// (the server's `ignore_resource_deletion`). Default false.
    pub fn with_ignore_resource_deletion(mut self, ignore: bool) -> Self {
        self.ignore_resource_deletion = ignore;
        self
    }

    /// Asks for the listener `name` (a target's, such as
    /// `reviews.default.svc.cluster.local:9080`).
    pub fn subscribe_listener(&mut self, name: &str, now: Instant) -> Outcome {
        let mut wanted: BTreeSet<String> =
            self.listeners.common.subscribed.keys().cloned().collect();
        wanted.insert(name.to_owned());
        self.resubscribe_listeners(wanted, now)
    }

    /// Stops asking for the listener `name`, and for the routes, clusters
    /// and endpoints only it referred to.
    pub fn unsubscribe_listener(&mut self, name: &str, now: Instant) -> Outcome {
        let mut wanted: BTreeSet<String> =
            self.listeners.common.subscribed.keys().cloned().collect();
        wanted.remove(name);
        self.resubscribe_listeners(wanted, now)
    }

    fn resubscribe_listeners(&mut self, wanted: BTreeSet<String>, now: Instant) -> Outcome {
        let mut outcome = Outcome::default();
        let since = self.stream_up.then_some(now);
        let mut dirty = BTreeSet::new();
        if self
            .listeners
            .resubscribe(wanted, since, &mut outcome.changes)
        {
            dirty.insert(ResourceType::Listener);
        }
        dirty.extend(self.follow_references(now, &mut outcome.changes));
        outcome.requests = self.requests(&dirty, None);
        outcome
    }

    /// A new stream is up: the requests that subscribe to everything
    /// again, with the last accepted versions, the first carrying the node.
    pub fn on_stream_start(&mut self, now: Instant) -> Vec<DiscoveryRequest> {
        self.stream_up = true;
        self.node_sent = false;
        self.listeners.restart_timers(Some(now));
        self.route_configs.restart_timers(Some(now));
        self.clusters.restart_timers(Some(now));
        self.load_assignments.restart_timers(Some(now));
        self.secrets.restart_timers(Some(now));
        let mut kinds = BTreeSet::new();
        for kind in ResourceType::ALL {
            let common = self.common_mut(kind);
            common.nonce.clear();
            if !common.subscribed.is_empty() {
                kinds.insert(kind);
            }
        }
        self.requests(&kinds, None)
    }

    /// The stream ended: no requests until the next one starts, and no
    /// does-not-exist timers run. Accepted resources stay in use.
    pub fn on_stream_end(&mut self) {
        self.stream_up = false;
        self.listeners.restart_timers(None);
        self.route_configs.restart_timers(None);
        self.clusters.restart_timers(None);
        self.load_assignments.restart_timers(None);
        self.secrets.restart_timers(None);
    }

    /// Applies a response received at `now`: the ACK or NACK to send
    /// (first), the subscriptions it changes, and what changed. A response
    /// of a type the mesh does not read is ignored.
    pub fn handle_response(&mut self, response: &DiscoveryResponse, now: Instant) -> Outcome {
        let Some(kind) = ResourceType::from_type_url(&response.type_url) else {
            return Outcome::default();
        };
        let mut outcome = Outcome::default();
        let delete = !self.ignore_resource_deletion;
        let changes = &mut outcome.changes;
        outcome.rejected = match kind {
            ResourceType::Listener => self.listeners.apply(response, delete, now, changes),
            ResourceType::RouteConfig => self.route_configs.apply(response, false, now, changes),
            ResourceType::Cluster => self.clusters.apply(response, delete, now, changes),
            ResourceType::LoadAssignment => {
                self.load_assignments.apply(response, false, now, changes)
            }
            ResourceType::Secret => self.secrets.apply(response, false, now, changes),
        };
        let mut dirty = self.follow_response(kind, now, &mut outcome.changes);
        dirty.insert(kind);
        let nack = match &self.common(kind).error {
            Some(message) if !outcome.rejected.is_empty() => Some((kind, message.clone())),
            _ => None,
        };
        outcome.requests = self.requests(&dirty, nack);
        outcome
    }

    /// The names asked for on the current stream that nothing has been
    /// received for, with since when: each does not exist once
    /// [`DOES_NOT_EXIST_TIMEOUT`] has passed.
    pub fn waiting(&self) -> impl Iterator<Item = (ResourceType, &str, Instant)> {
        ResourceType::ALL.into_iter().flat_map(move |kind| {
            self.common(kind)
                .waiting()
                .map(move |(name, since)| (kind, name, since))
        })
    }

    /// Marks `name` as not existing, its timer having fired. Nothing
    /// happens unless it was subscribed and never received.
    pub fn mark_missing(&mut self, kind: ResourceType, name: &str) -> Outcome {
        let missing = match kind {
            ResourceType::Listener => self.listeners.mark_missing(name),
            ResourceType::RouteConfig => self.route_configs.mark_missing(name),
            ResourceType::Cluster => self.clusters.mark_missing(name),
            ResourceType::LoadAssignment => self.load_assignments.mark_missing(name),
            ResourceType::Secret => self.secrets.mark_missing(name),
        };
        let mut outcome = Outcome::default();
        if missing {
            let change = Changed::new(kind, name.to_owned(), Change::DoesNotExist);
            outcome.changes.push(change);
        }
        outcome
    }

    /// The names subscribed for `kind`.
    pub fn subscribed(&self, kind: ResourceType) -> impl Iterator<Item = &str> {
        self.common(kind).subscribed.keys().map(String::as_str)
    }

    /// The accepted listener `name`.
    pub fn listener(&self, name: &str) -> Option<&XdsListener> {
        self.listeners.resources.get(name).map(|v| &**v)
    }

    /// The accepted route configuration `name`.
    pub fn route_config(&self, name: &str) -> Option<&XdsRouteConfig> {
        self.route_configs.resources.get(name).map(|v| &**v)
    }

    /// The accepted cluster `name`.
    pub fn cluster(&self, name: &str) -> Option<&XdsCluster> {
        self.clusters.resources.get(name).map(|v| &**v)
    }

    /// The accepted load assignment `name` (an EDS service name).
    pub fn load_assignment(&self, name: &str) -> Option<&XdsLoadAssignment> {
        self.load_assignments.resources.get(name).map(|v| &**v)
    }

    /// The accepted secret `name`.
    pub fn secret(&self, name: &str) -> Option<&XdsSecret> {
        self.secrets.resources.get(name).map(|v| &**v)
    }

    /// The subscriptions a response of `kind` changes: those that follow
    /// from its references. Load assignments and secrets refer to
    /// nothing, so an EDS update costs the same however large the mesh.
    fn follow_response(
        &mut self,
        kind: ResourceType,
        now: Instant,
        changes: &mut Vec<Changed>,
    ) -> BTreeSet<ResourceType> {
        match kind {
            ResourceType::LoadAssignment | ResourceType::Secret => BTreeSet::new(),
            _ => self.follow_references(now, changes),
        }
    }

    /// Subscribes to what accepted resources refer to and unsubscribes
    /// from what nothing refers to, down the chain; the types whose
    /// subscriptions changed.
    fn follow_references(
        &mut self,
        now: Instant,
        changes: &mut Vec<Changed>,
    ) -> BTreeSet<ResourceType> {
        let since = self.stream_up.then_some(now);
        let mut dirty = BTreeSet::new();

        let listeners = || self.listeners.resources.values();
        let gateways = || listeners().filter_map(|l| l.gateway.as_ref());
        let route_names = listeners()
            .filter_map(|l| match &l.routes {
                RouteSource::Rds { route_config_name } => Some(route_config_name.clone()),
                RouteSource::Inline(_) => None,
            })
            .chain(gateways().flat_map(|g| g.servers.iter().map(|s| s.routes.clone())))
            .collect();
        let secret_names = gateways()
            .flat_map(|g| g.secret_names().map(str::to_owned))
            .collect();
        if self.route_configs.resubscribe(route_names, since, changes) {
            dirty.insert(ResourceType::RouteConfig);
        }
        if self.secrets.resubscribe(secret_names, since, changes) {
            dirty.insert(ResourceType::Secret);
        }

        let inline = self
            .listeners
            .resources
            .values()
            .filter_map(|l| match &l.routes {
                RouteSource::Inline(rc) => Some(&rc.table),
                RouteSource::Rds { .. } => None,
            });
        let cluster_names = self
            .route_configs
            .resources
            .values()
            .map(|rc| &rc.table)
            .chain(inline)
            .flat_map(|table| table.clusters())
            .map(|c| c.as_str().to_owned())
            .collect();
        if self.clusters.resubscribe(cluster_names, since, changes) {
            dirty.insert(ResourceType::Cluster);
        }

        let eds_names = self
            .clusters
            .resources
            .values()
            .filter_map(|c| match &c.discovery {
                // The conversion already put the cluster's name in an empty one.
                Discovery::Eds { service_name } => Some(service_name.clone()),
                Discovery::Static(_) | Discovery::LogicalDns { .. } => None,
            })
            .collect();
        if self.load_assignments.resubscribe(eds_names, since, changes) {
            dirty.insert(ResourceType::LoadAssignment);
        }
        dirty
    }

    /// The requests for `kinds`, in chain order, while a stream is up;
    /// `nack` names the type to NACK and what to say.
    fn requests(
        &mut self,
        kinds: &BTreeSet<ResourceType>,
        nack: Option<(ResourceType, String)>,
    ) -> Vec<DiscoveryRequest> {
        if !self.stream_up {
            return Vec::new();
        }
        let mut nack = nack;
        kinds
            .iter()
            .map(|&kind| {
                let error_detail = match nack.take() {
                    Some((k, message)) if k == kind => Some(Status {
                        code: INVALID_ARGUMENT,
                        message,
                        details: Vec::new(),
                    }),
                    other => {
                        nack = other;
                        None
                    }
                };
                let node = (!self.node_sent).then(|| self.node.clone());
                self.node_sent = true;
                let common = self.common(kind);
                DiscoveryRequest {
                    version_info: common.version.clone(),
                    node,
                    resource_names: common.subscribed.keys().cloned().collect(),
                    type_url: kind.type_url().to_owned(),
                    response_nonce: common.nonce.clone(),
                    error_detail,
                    ..DiscoveryRequest::default()
                }
            })
            .collect()
    }

    fn common(&self, kind: ResourceType) -> &Common {
        match kind {
            ResourceType::Listener => &self.listeners.common,
            ResourceType::RouteConfig => &self.route_configs.common,
            ResourceType::Cluster => &self.clusters.common,
            ResourceType::LoadAssignment => &self.load_assignments.common,
            ResourceType::Secret => &self.secrets.common,
        }
    }

    fn common_mut(&mut self, kind: ResourceType) -> &mut Common {
        match kind {
            ResourceType::Listener => &mut self.listeners.common,
            ResourceType::RouteConfig => &mut self.route_configs.common,
            ResourceType::Cluster => &mut self.clusters.common,
            ResourceType::LoadAssignment => &mut self.load_assignments.common,
            ResourceType::Secret => &mut self.secrets.common,
        }
    }
}
