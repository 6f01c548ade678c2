//! Incremental (delta) xDS: [`DeltaAdsState`] runs the same watch chain,
//! conversions and acceptance rules as [`AdsState`] and speaks the
//! `DeltaAggregatedResources` protocol instead.
//!
//! It follows the incremental section of the xDS protocol and gRPC's
//! client:
//!
//! - A request carries only what changed: the names newly subscribed
//!   (`resource_names_subscribe`) and those dropped
//!   (`resource_names_unsubscribe`); a name is never wildcard.
//! - The first request of a stream for a type subscribes to everything
//!   again and lists the version of every resource held
//!   (`initial_resource_versions`), so that the server need not send
//!   them again; the stream's first request carries the node.
//! - Each response is ACKed (its nonce) or NACKed (its nonce and an
//!   `INVALID_ARGUMENT` status listing every rejected resource), with the
//!   partial acceptance of gRFC A46: valid resources are taken, invalid
//!   ones keep their last accepted copy.
//! - `removed_resources` deletes, for every type; with the server's
//!   `ignore_resource_deletion` (gRFC A53), listeners and clusters are
//!   kept.
//!
//! ```
//! use std::time::Instant;
//! use mesh_xds::ads::{DeltaAdsState, ResourceType};
//! use mesh_xds::bootstrap::Node;
//!
//! let node = Node { id: "sidecar~10.0.0.1~productpage-v1.default~default.svc.cluster.local".into(), ..Node::default() };
//! let mut ads = DeltaAdsState::new(&node);
//! let now = Instant::now();
//! ads.subscribe_listener("reviews.default.svc.cluster.local:9080", now);
//! let requests = ads.on_stream_start(now);
//! assert_eq!(requests.len(), 1);
//! assert_eq!(requests[0].type_url, ResourceType::Listener.type_url());
//! assert_eq!(requests[0].resource_names_subscribe, ["reviews.default.svc.cluster.local:9080"]);
//! assert!(requests[0].node.is_some());
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse,
};
use envoy_types::pb::google::rpc::Status;

use super::state::{TypeState, XdsResource};
use super::{AdsState, Change, Changed, INVALID_ARGUMENT, Outcome, ResourceType};
use crate::bootstrap::{Bootstrap, Node};
use crate::resource::ResourceError;

/// What one step of [`DeltaAdsState`] asks of the transport.
pub type DeltaOutcome = Outcome<DeltaDiscoveryRequest>;

/// The ADS client's state over every delta stream it runs: an
/// [`AdsState`] for subscriptions and accepted resources, and what the
/// current stream has been told.
#[derive(Clone, Debug)]
pub struct DeltaAdsState {
    state: AdsState,
    /// The names each type is subscribed to on the current stream, as
    /// the server was told.
    told: BTreeMap<ResourceType, BTreeSet<String>>,
    /// Whether the node went out on the current stream.
    node_sent: bool,
}

impl DeltaAdsState {
    /// A client identifying itself as `node`, subscribed to nothing.
    pub fn new(node: &Node) -> Self {
        Self::from_state(AdsState::new(node))
    }

    /// A client for the bootstrap's first server, as its node, keeping
    /// deleted listeners and clusters if that server lists
    /// `ignore_resource_deletion`.
    pub fn from_bootstrap(bootstrap: &Bootstrap) -> Self {
        Self::from_state(AdsState::from_bootstrap(bootstrap))
    }

    fn from_state(state: AdsState) -> Self {
        Self {
            state,
            told: BTreeMap::new(),
            node_sent: false,
        }
    }

    /// Whether listeners and clusters the server removes are kept (the
    /// server's `ignore_resource_deletion`). Default false.
    pub fn with_ignore_resource_deletion(mut self, ignore: bool) -> Self {
        self.state = self.state.with_ignore_resource_deletion(ignore);
        self
    }

    /// The subscriptions and accepted resources, as for state of the world.
    pub fn state(&self) -> &AdsState {
        &self.state
    }

    /// Asks for the listener `name`.
    pub fn subscribe_listener(&mut self, name: &str, now: Instant) -> DeltaOutcome {
        let outcome = self.state.subscribe_listener(name, now);
        self.with_diffs(outcome, None, None)
    }

    /// Stops asking for the listener `name`, and for the routes, clusters
    /// and endpoints only it referred to.
    pub fn unsubscribe_listener(&mut self, name: &str, now: Instant) -> DeltaOutcome {
        let outcome = self.state.unsubscribe_listener(name, now);
        self.with_diffs(outcome, None, None)
    }

    /// A new stream is up: the requests that subscribe to everything
    /// again with the versions held, the first carrying the node.
    pub fn on_stream_start(&mut self, now: Instant) -> Vec<DeltaDiscoveryRequest> {
        self.state.on_stream_start(now);
        self.told.clear();
        self.node_sent = false;
        let mut requests = Vec::new();
        for kind in ResourceType::ALL {
            let common = self.state.common(kind);
            if common.subscribed.is_empty() {
                continue;
            }
            let initial_resource_versions = common
                .versions
                .iter()
                .filter(|(name, _)| self.state.holds(kind, name))
                .map(|(name, version)| (name.clone(), version.clone()))
                .collect();
            let mut request = self.request(kind, None, true);
            request.initial_resource_versions = initial_resource_versions;
            requests.push(request);
        }
        requests
    }

    /// The stream ended: no requests until the next one starts.
    pub fn on_stream_end(&mut self) {
        self.state.on_stream_end();
    }

    /// Applies a response received at `now`: its ACK or NACK (first), the
    /// subscriptions it changes, and what changed. A response of a type
    /// the mesh does not read is ignored.
    pub fn handle_response(
        &mut self,
        response: &DeltaDiscoveryResponse,
        now: Instant,
    ) -> DeltaOutcome {
        let Some(kind) = ResourceType::from_type_url(&response.type_url) else {
            return DeltaOutcome::default();
        };
        let mut outcome = Outcome::default();
        let delete = !self.state.ignore_resource_deletion;
        let changes = &mut outcome.changes;
        let state = &mut self.state;
        outcome.rejected = match kind {
            ResourceType::Listener => state.listeners.apply_delta(response, delete, now, changes),
            ResourceType::RouteConfig => state
                .route_configs
                .apply_delta(response, true, now, changes),
            ResourceType::Cluster => state.clusters.apply_delta(response, delete, now, changes),
            ResourceType::LoadAssignment => state
                .load_assignments
                .apply_delta(response, true, now, changes),
            ResourceType::Secret => state.secrets.apply_delta(response, true, now, changes),
        };
        let dirty = state.follow_response(kind, now, &mut outcome.changes);
        let error_detail = match &state.common(kind).error {
            Some(message) if !outcome.rejected.is_empty() => Some(Status {
                code: INVALID_ARGUMENT,
                message: message.clone(),
                details: Vec::new(),
            }),
            _ => None,
        };
        let ack = (kind, response.nonce.clone(), error_detail);
        self.with_diffs(outcome, Some(ack), Some(&dirty))
    }

    /// The names asked for on the current stream that nothing has been
    /// received for, with since when.
    pub fn waiting(&self) -> impl Iterator<Item = (ResourceType, &str, Instant)> {
        self.state.waiting()
    }

    /// Marks `name` as not existing, its timer having fired.
    pub fn mark_missing(&mut self, kind: ResourceType, name: &str) -> DeltaOutcome {
        let outcome = self.state.mark_missing(kind, name);
        Outcome {
            requests: Vec::new(),
            changes: outcome.changes,
            rejected: outcome.rejected,
        }
    }

    /// `outcome` with its requests replaced by delta ones: the ACK or NACK
    /// `ack` (type, nonce, error) and the subscription changes of the
    /// `dirty` types (`None`: every type), in chain order.
    fn with_diffs(
        &mut self,
        outcome: Outcome,
        ack: Option<(ResourceType, String, Option<Status>)>,
        dirty: Option<&BTreeSet<ResourceType>>,
    ) -> DeltaOutcome {
        let mut requests = Vec::new();
        if self.state.stream_up {
            for kind in ResourceType::ALL {
                let ack = ack.as_ref().filter(|(k, _, _)| *k == kind);
                let changed = dirty.is_none_or(|d| d.contains(&kind));
                if ack.is_none() && !changed {
                    continue;
                }
                let request = self.request(kind, ack, changed);
                if ack.is_some()
                    || !request.resource_names_subscribe.is_empty()
                    || !request.resource_names_unsubscribe.is_empty()
                {
                    requests.push(request);
                }
            }
        }
        Outcome {
            requests,
            changes: outcome.changes,
            rejected: outcome.rejected,
        }
    }

    /// The request for `kind` that tells the server what changed in its
    /// subscriptions since it was last told, and records it as told; with
    /// the node if it has not gone out on this stream yet (and the request
    /// goes out at all).
    fn request(
        &mut self,
        kind: ResourceType,
        ack: Option<&(ResourceType, String, Option<Status>)>,
        changed: bool,
    ) -> DeltaDiscoveryRequest {
        let (mut subscribe, mut unsubscribe) = (Vec::new(), Vec::new());
        if changed {
            let wanted: BTreeSet<String> = self.state.subscribed(kind).map(str::to_owned).collect();
            let told = self.told.entry(kind).or_default();
            subscribe = wanted.difference(told).cloned().collect();
            unsubscribe = told.difference(&wanted).cloned().collect();
            *told = wanted;
        }
        let goes_out = ack.is_some() || !subscribe.is_empty() || !unsubscribe.is_empty();
        let node = (goes_out && !self.node_sent).then(|| self.state.node.clone());
        self.node_sent |= goes_out;
        let (response_nonce, error_detail) = match ack {
            Some((_, nonce, error)) => (nonce.clone(), error.clone()),
            None => (String::new(), None),
        };
        DeltaDiscoveryRequest {
            node,
            type_url: kind.type_url().to_owned(),
            resource_names_subscribe: subscribe,
            resource_names_unsubscribe: unsubscribe,
            response_nonce,
            error_detail,
            ..DeltaDiscoveryRequest::default()
        }
    }
}

impl<T: XdsResource> TypeState<T> {
    /// Applies a delta response for this type: every valid subscribed
    /// resource is taken with its version, every invalid one keeps its
    /// last accepted copy (gRFC A46), and with `delete` each name in
    /// `removed_resources` is deleted. Returns the rejected resources.
    pub(super) fn apply_delta(
        &mut self,
        response: &DeltaDiscoveryResponse,
        delete: bool,
        now: Instant,
        changes: &mut Vec<Changed>,
    ) -> Vec<ResourceError> {
        let anys = response.resources.iter().map(|r| r.resource.as_ref());
        let (seen, rejected) = self.take(anys, "", now, changes);
        let rejected_names: BTreeSet<&str> = rejected.iter().map(|e| e.resource.as_str()).collect();
        for resource in &response.resources {
            let name = resource.name.as_str();
            if seen.contains(name) && !rejected_names.contains(name) {
                let version = resource.version.clone();
                self.common.versions.insert(name.to_owned(), version);
            }
        }
        if delete {
            for name in &response.removed_resources {
                if self.common.subscribed.contains_key(name)
                    && !self.delete(name, changes)
                    && self.mark_missing(name)
                {
                    changes.push(Changed::new(T::KIND, name.clone(), Change::DoesNotExist));
                }
            }
        }
        let version = &response.system_version_info;
        self.common
            .answered(&response.nonce, version, &rejected, now);
        rejected
    }
}
