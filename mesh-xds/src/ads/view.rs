//! [`AdsView`]: what the ADS client publishes after every change.

use std::collections::BTreeMap;

use super::{AdsState, ResourceType, Snapshot};
use crate::resource::{XdsCluster, XdsListener, XdsLoadAssignment, XdsRouteConfig};

/// The accepted resources, as one immutable value: what the application
/// routes with, and the state of each type for `/config_dump` and logs.
///
/// A resource is here while it is subscribed and its last accepted copy
/// stands; a rejected update leaves the previous copy in place.
#[derive(Clone, Debug)]
pub struct AdsView {
    /// Whether a stream to the control plane is up.
    pub connected: bool,
    /// The accepted listeners, by name.
    pub listeners: BTreeMap<String, XdsListener>,
    /// The accepted route configurations, by name.
    pub route_configs: BTreeMap<String, XdsRouteConfig>,
    /// The accepted clusters, by name.
    pub clusters: BTreeMap<String, XdsCluster>,
    /// The accepted load assignments, by EDS service name.
    pub load_assignments: BTreeMap<String, XdsLoadAssignment>,
    /// Versions, subscriptions, NACKs and missing names of every type.
    pub snapshot: Snapshot,
}

impl AdsView {
    pub(super) fn new(state: &AdsState, connected: bool) -> Self {
        let snapshot = state.snapshot();
        let accepted = |kind: ResourceType| {
            snapshot
                .get(kind)
                .map(|t| t.accepted.clone())
                .unwrap_or_default()
                .into_iter()
        };
        fn collect<'a, T: Clone + 'a>(
            names: impl Iterator<Item = String>,
            get: impl Fn(&str) -> Option<&'a T>,
        ) -> BTreeMap<String, T> {
            names
                .filter_map(|n| get(&n).cloned().map(|r| (n, r)))
                .collect()
        }
        Self {
            connected,
            listeners: collect(accepted(ResourceType::Listener), |n| state.listener(n)),
            route_configs: collect(accepted(ResourceType::RouteConfig), |n| {
                state.route_config(n)
            }),
            clusters: collect(accepted(ResourceType::Cluster), |n| state.cluster(n)),
            load_assignments: collect(accepted(ResourceType::LoadAssignment), |n| {
                state.load_assignment(n)
            }),
            snapshot,
        }
    }
}
