//! What the ADS client holds, for `/config_dump` and logs.

use std::time::Instant;

use super::state::Common;
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
        super::AdsView::new(self, self.stream_up).snapshot()
    }

    /// Whether an accepted resource `name` of `kind` is held.
    pub(super) fn holds(&self, kind: ResourceType, name: &str) -> bool {
        match kind {
            ResourceType::Listener => self.listeners.resources.contains_key(name),
            ResourceType::RouteConfig => self.route_configs.resources.contains_key(name),
            ResourceType::Cluster => self.clusters.resources.contains_key(name),
            ResourceType::LoadAssignment => self.load_assignments.resources.contains_key(name),
            ResourceType::Secret => self.secrets.resources.contains_key(name),
        }
    }
}

impl Snapshot {
    /// The snapshot of each type's state and accepted names.
    pub(super) fn new(types: [(ResourceType, &Common, Vec<String>); 5]) -> Self {
        let types = types
            .into_iter()
            .map(|(kind, common, accepted)| TypeSnapshot {
                kind,
                version: common.version.clone(),
                updated_at: common.updated_at,
                subscribed: common.subscribed.keys().cloned().collect(),
                accepted,
                nacked: common
                    .nacked
                    .iter()
                    .map(|(name, n)| (name.clone(), n.error.to_string()))
                    .collect(),
                does_not_exist: common
                    .subscribed
                    .iter()
                    .filter(|(_, watch)| watch.does_not_exist)
                    .map(|(name, _)| name.clone())
                    .collect(),
                error: common.error.clone(),
            })
            .collect();
        Self { types }
    }

    /// The state of `kind`.
    pub fn get(&self, kind: ResourceType) -> Option<&TypeSnapshot> {
        self.types.iter().find(|t| t.kind == kind)
    }
}
