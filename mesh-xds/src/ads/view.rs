//! [`AdsView`]: what the ADS client publishes after every change.

use std::sync::Arc;

use imbl::OrdMap;

use super::state::Common;
use super::{AdsState, ResourceType, Snapshot};
use crate::config::diff_key;
use crate::resource::{
    ResourceError, XdsCluster, XdsListener, XdsLoadAssignment, XdsRouteConfig, XdsSecret,
};

/// The accepted resources, as one immutable value: what the application
/// routes with, and the state of each type for `/config_dump` and logs.
///
/// A resource is here while it is subscribed and its last accepted copy
/// stands; a rejected update leaves the previous copy in place. The maps
/// are persistent and shared with the client's state: making a view costs
/// the same however large the mesh, and an unchanged resource is the same
/// `Arc` from one view to the next.
#[derive(Clone, Debug)]
pub struct AdsView {
    /// Whether a stream to the control plane is up.
    pub connected: bool,
    /// Why the last stream to the control plane, or the last attempt at
    /// one, failed, until a response arrives on a new one.
    pub stream_error: Option<String>,
    /// The accepted listeners, by name.
    pub listeners: OrdMap<String, Arc<XdsListener>>,
    /// The accepted route configurations, by name.
    pub route_configs: OrdMap<String, Arc<XdsRouteConfig>>,
    /// The accepted clusters, by name.
    pub clusters: OrdMap<String, Arc<XdsCluster>>,
    /// The accepted load assignments, by EDS service name.
    pub load_assignments: OrdMap<String, Arc<XdsLoadAssignment>>,
    /// The accepted secrets, by name.
    pub secrets: OrdMap<String, Arc<XdsSecret>>,
    /// Subscriptions, versions and NACKs, in [`ResourceType::ALL`] order.
    commons: [Common; 5],
}

impl AdsView {
    /// What `state` holds now; `connected` says whether a stream is up.
    pub fn new(state: &AdsState, connected: bool) -> Self {
        Self {
            connected,
            stream_error: None,
            listeners: state.listeners.resources.clone(),
            route_configs: state.route_configs.resources.clone(),
            clusters: state.clusters.resources.clone(),
            load_assignments: state.load_assignments.resources.clone(),
            secrets: state.secrets.resources.clone(),
            commons: ResourceType::ALL.map(|kind| state.common(kind).clone()),
        }
    }

    /// Versions, subscriptions, NACKs and missing names of every type.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(ResourceType::ALL.map(|kind| (kind, self.common(kind), self.accepted(kind))))
    }

    /// What the control plane's last copy of `name` of `kind` was
    /// rejected for, while that copy is the last one it sent.
    pub fn rejected(&self, kind: ResourceType, name: &str) -> Option<&ResourceError> {
        self.common(kind).nacked.get(name).map(|n| &n.error)
    }

    /// Whether the control plane says `name` of `kind` does not exist.
    pub fn does_not_exist(&self, kind: ResourceType, name: &str) -> bool {
        self.common(kind)
            .subscribed
            .get(name)
            .is_some_and(|w| w.does_not_exist)
    }

    /// The names of `kind` whose NACK or does-not-exist state differs
    /// between `before` and this view, some more than once; cheap when the
    /// two share most of their state, as successive views do.
    pub(crate) fn availability_changes<'a>(
        &'a self,
        before: &'a AdsView,
        kind: ResourceType,
    ) -> impl Iterator<Item = &'a str> {
        let (old, new) = (before.common(kind), self.common(kind));
        let nacked = old.nacked.diff(&new.nacked).map(diff_key);
        let subscribed = old.subscribed.diff(&new.subscribed).map(diff_key);
        nacked.chain(subscribed)
    }

    pub(super) fn common(&self, kind: ResourceType) -> &Common {
        &self.commons[kind as usize]
    }

    /// The names of the accepted resources of `kind`.
    fn accepted(&self, kind: ResourceType) -> Vec<String> {
        match kind {
            ResourceType::Listener => self.listeners.keys().cloned().collect(),
            ResourceType::RouteConfig => self.route_configs.keys().cloned().collect(),
            ResourceType::Cluster => self.clusters.keys().cloned().collect(),
            ResourceType::LoadAssignment => self.load_assignments.keys().cloned().collect(),
            ResourceType::Secret => self.secrets.keys().cloned().collect(),
        }
    }
}
