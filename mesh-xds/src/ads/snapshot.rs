//! What the ADS client holds, for `/config_dump` and logs.

use std::time::Instant;

use super::{AdsState, ResourceType};

/// The state of every resource type, in chain order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// LDS, RDS, CDS and EDS.
    pub types: Vec<TypeSnapshot>,
}

/// One resource type's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeSnapshot {
    /// Which type.
    pub kind: ResourceType,
    /// The last version accepted whole; empty before the first.
    pub version: String,
    /// When the last response for it was handled.
    pub updated_at: Option<Instant>,
    /// The names subscribed to.
    pub subscribed: Vec<String>,
    /// The names with an accepted value in use.
    pub accepted: Vec<String>,
    /// The names whose latest copy was rejected, with what the NACK said
    /// of each; an accepted earlier copy stays in use.
    pub nacked: Vec<(String, String)>,
    /// The names the server says do not exist.
    pub does_not_exist: Vec<String>,
    /// What the last NACK said, until a response is accepted whole.
    pub error: Option<String>,
}

impl AdsState {
    /// What the client holds now.
    pub fn snapshot(&self) -> Snapshot {
        let types = ResourceType::ALL
            .into_iter()
            .map(|kind| {
                let common = self.common(kind);
                TypeSnapshot {
                    kind,
                    version: common.version.clone(),
                    updated_at: common.updated_at,
                    subscribed: common.subscribed.keys().cloned().collect(),
                    accepted: self.accepted_names(kind),
                    nacked: common
                        .nacked
                        .iter()
                        .map(|(name, e)| (name.clone(), e.to_string()))
                        .collect(),
                    does_not_exist: common
                        .subscribed
                        .iter()
                        .filter(|(_, watch)| watch.does_not_exist)
                        .map(|(name, _)| name.clone())
                        .collect(),
                    error: common.error.clone(),
                }
            })
            .collect();
        Snapshot { types }
    }

    pub(super) fn accepted_names(&self, kind: ResourceType) -> Vec<String> {
        match kind {
            ResourceType::Listener => self.listeners.resources.keys().cloned().collect(),
            ResourceType::RouteConfig => self.route_configs.resources.keys().cloned().collect(),
            ResourceType::Cluster => self.clusters.resources.keys().cloned().collect(),
            ResourceType::LoadAssignment => {
                self.load_assignments.resources.keys().cloned().collect()
            }
        }
    }
}

impl Snapshot {
    /// The state of `kind`.
    pub fn get(&self, kind: ResourceType) -> Option<&TypeSnapshot> {
        self.types.iter().find(|t| t.kind == kind)
    }
}
