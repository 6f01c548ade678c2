//! [`ConfigBuilder`]: the configuration of one [`AdsView`] after another,
//! reusing from the last what did not change, so that one change costs
//! what it touches rather than what every target costs.
//!
//! - A target whose listener and route configuration are the resources
//!   its table was made from (the same `Arc`s: the view shares unchanged
//!   resources from one update to the next) keeps that table, the same
//!   [`RouteTable`], which is what lets a client keep the route stacks
//!   built for it.
//! - A cluster that is the same resource keeps its [`Cluster`], the same
//!   `Arc`, which [`MeshConfig::after`] does not check again and a client
//!   does not rebuild.
//! - What changed is found by comparing the view with the last one, which
//!   shares all that did not change: a target is looked up in the view
//!   again only when its listener, its route configuration or a cluster
//!   its routes name changed, and a cluster only when it changed.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use mesh_core::route::ClusterName;
use mesh_core::{Cluster, ConfigError, MeshConfig, RouteTable};

use super::{TargetState, cluster, with_listener_defaults};
use crate::ads::{AdsView, ResourceType};
use crate::resource::{RouteSource, XdsCluster, XdsListener, XdsRouteConfig};
use imbl::OrdMap;
use imbl::ordmap::DiffItem;

/// Makes the configuration requests are routed by from one [`AdsView`]
/// after another, reusing what did not change (see
/// [`build`](Self::build)).
#[derive(Debug, Default)]
pub struct ConfigBuilder {
    last: MeshConfig,
    /// The view `last` was made from, once there is one.
    from: Option<AdsView>,
    /// The targets of the last build, in order, each with the table of
    /// its own `last` routes it by (not one kept while it waits) and what
    /// that was made from.
    targets: Vec<Slot>,
    /// The clusters `last` holds, with the CDS resource each came from
    /// (`None` for one missing).
    clusters: HashMap<ClusterName, (Option<Arc<XdsCluster>>, Arc<Cluster>)>,
}

/// A target of the last build, and its own table if it had one.
type Slot = (Arc<str>, Option<Built>);

/// A target's table and the resources it was made from.
#[derive(Clone, Debug)]
struct Built {
    listener: Arc<XdsListener>,
    routes: Option<Arc<XdsRouteConfig>>,
    table: RouteTable,
}

/// The names of each type whose resources changed since the last view;
/// `None` when there is no last view, and everything counts as changed.
struct Changes<'v> {
    listeners: Option<HashSet<&'v str>>,
    routes: Option<HashSet<&'v str>>,
    /// Clusters changed, come or gone, or whose NACK or does-not-exist
    /// state changed.
    clusters: Option<HashSet<&'v str>>,
}

impl<'v> Changes<'v> {
    fn between(from: Option<&'v AdsView>, view: &'v AdsView) -> Self {
        let Some(from) = from else {
            return Self {
                listeners: None,
                routes: None,
                clusters: None,
            };
        };
        let mut clusters = names(&from.clusters, &view.clusters);
        clusters.extend(view.availability_changes(from, ResourceType::Cluster));
        Self {
            listeners: Some(names(&from.listeners, &view.listeners)),
            routes: Some(names(&from.route_configs, &view.route_configs)),
            clusters: Some(clusters),
        }
    }
}

/// Whether `name` is among `changed` (all are, when it is `None`).
fn changed(changed: &Option<HashSet<&str>>, name: &str) -> bool {
    changed.as_ref().is_none_or(|c| c.contains(name))
}

/// The names whose entries differ between `old` and `new`.
fn names<'a, V: PartialEq>(
    old: &'a OrdMap<String, V>,
    new: &'a OrdMap<String, V>,
) -> HashSet<&'a str> {
    old.diff(new).map(diff_key).collect()
}

/// The name a map difference is about.
pub(crate) fn diff_key<'a, V>(d: DiffItem<'a, 'a, String, V>) -> &'a str {
    match d {
        DiffItem::Add(k, _) | DiffItem::Remove(k, _) | DiffItem::Update { new: (k, _), .. } => k,
    }
}

impl ConfigBuilder {
    /// A builder whose next configuration replaces `previous`.
    pub fn after(previous: MeshConfig) -> Self {
        Self {
            last: previous,
            ..Self::default()
        }
    }

    /// The last configuration built (or the one it was made
    /// [`after`](Self::after)).
    pub fn last(&self) -> &MeshConfig {
        &self.last
    }

    /// The configuration requests are routed by, for `targets`: pairs of
    /// an authority as requests write it and the name of its listener
    /// resource. A target whose routes name a cluster still on its way
    /// keeps its table in the last configuration, if it had one there,
    /// until the cluster is here (else it is left out, and its requests
    /// wait), as gRPC keeps a channel's configuration until the new one is
    /// complete; one whose table cannot take its listener's defaults is
    /// left out, with a warning (conversion has checked all it could). The
    /// tables and clusters otherwise always fit together. On an error the
    /// builder is as it was.
    pub fn build<'a>(
        &mut self,
        view: &AdsView,
        targets: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<MeshConfig, ConfigError> {
        let changes = Changes::between(self.from.as_ref(), view);
        let mut listeners = Vec::new();
        let mut slots = Vec::with_capacity(self.targets.len());
        // Targets come in the same order from one build to the next unless
        // they changed; then they are found by name.
        let mut by_name: Option<HashMap<&str, &Slot>> = None;
        for (i, (authority, listener)) in targets.into_iter().enumerate() {
            let slot = match self.targets.get(i) {
                Some(slot) if *slot.0 == *authority => Some(slot),
                _ => by_name
                    .get_or_insert_with(|| self.targets.iter().map(|s| (&*s.0, s)).collect())
                    .get(authority)
                    .copied(),
            };
            let key = slot.map_or_else(|| Arc::<str>::from(authority), |s| s.0.clone());
            let last = slot.and_then(|s| s.1.as_ref());
            let built = match self.table(view, &changes, listener, last) {
                Table::Built(built) => {
                    listeners.push((key.clone(), built.table.clone()));
                    Some(built)
                }
                Table::Waiting => {
                    if let Some(table) = self.last.listener(authority) {
                        listeners.push((key.clone(), table.clone()));
                    }
                    None
                }
                Table::None => None,
            };
            slots.push((key, built));
        }
        let mut clusters = HashMap::with_capacity(self.clusters.len());
        for name in listeners.iter().flat_map(|(_, t)| t.clusters()) {
            if let Entry::Vacant(e) = clusters.entry(name.clone()) {
                e.insert(self.cluster(view, &changes, name));
            }
        }
        let config = MeshConfig::after(
            &self.last,
            RouteTable::default(),
            listeners,
            clusters.values().map(|(_, c)| c.clone()),
        )?;
        self.last = config.clone();
        self.from = Some(view.clone());
        self.targets = slots;
        self.clusters = clusters;
        Ok(config)
    }

    /// The table of the target whose listener resource is `listener`,
    /// which was `last` in the last configuration.
    fn table(
        &self,
        view: &AdsView,
        changes: &Changes<'_>,
        listener: &str,
        last: Option<&Built>,
    ) -> Table {
        // What the target stood on is of use only if it is this listener.
        let last = last.filter(|b| b.listener.name == listener);
        let l = match last {
            Some(b) if !changed(&changes.listeners, listener) => &b.listener,
            _ => match view.listeners.get(listener) {
                // A server's listener routes no client.
                Some(l) if l.server.is_none() => l,
                _ => return Table::None,
            },
        };
        let unchanged_listener = last.is_some_and(|b| Arc::ptr_eq(&b.listener, l));
        let (table, routes) = match &l.routes {
            RouteSource::Inline(rc) => (&rc.table, None),
            RouteSource::Rds { route_config_name } => {
                let kept = last
                    .and_then(|b| b.routes.as_ref())
                    .filter(|_| unchanged_listener && !changed(&changes.routes, route_config_name));
                let routes = match kept {
                    Some(rc) => rc,
                    None => match view.route_configs.get(route_config_name) {
                        Some(rc) => rc,
                        None => return Table::None,
                    },
                };
                (&routes.table, Some(routes))
            }
        };
        let unchanged = unchanged_listener
            && match (last.and_then(|b| b.routes.as_ref()), routes) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
        // A table made last time did not wait for a cluster, nor does it
        // now unless one it names changed.
        let recheck = !unchanged
            || table
                .clusters()
                .any(|c| changed(&changes.clusters, c.as_str()));
        if recheck && view.awaits_cluster(table) {
            return Table::Waiting;
        }
        if let Some(b) = last.filter(|_| unchanged) {
            return Table::Built(b.clone());
        }
        match with_listener_defaults(l, table) {
            Ok(table) => Table::Built(Built {
                listener: l.clone(),
                routes: routes.cloned(),
                table,
            }),
            Err(error) => {
                tracing::warn!(listener, %error, "routes left out: the listener's defaults do not apply");
                Table::None
            }
        }
    }

    /// The cluster `name`, as a route of the configuration names it, and
    /// the CDS resource it came from, if any.
    fn cluster(
        &self,
        view: &AdsView,
        changes: &Changes<'_>,
        name: &ClusterName,
    ) -> (Option<Arc<XdsCluster>>, Arc<Cluster>) {
        let last = self.clusters.get(name);
        if let Some(last) = last.filter(|_| !changed(&changes.clusters, name.as_str())) {
            return last.clone();
        }
        match view.clusters.get(name.as_str()) {
            Some(source) => {
                let c = match last {
                    Some((Some(from), c)) if Arc::ptr_eq(from, source) => c.clone(),
                    _ => Arc::new(cluster(source)),
                };
                (Some(source.clone()), c)
            }
            None => {
                let reason = match view.unavailable(ResourceType::Cluster, name.as_str()) {
                    Some(TargetState::DoesNotExist(r) | TargetState::Rejected(r)) => r,
                    _ => format!("CDS resource {:?} has not arrived", name.as_str()),
                };
                (None, Arc::new(Cluster::missing(name.as_str(), &reason)))
            }
        }
    }
}

/// What a target is routed by.
enum Table {
    /// A table of its own.
    Built(Built),
    /// The table it had, if any, while a cluster its routes name is on
    /// its way.
    Waiting,
    /// Nothing: its listener or route configuration has not arrived, or
    /// its routes cannot take the listener's defaults.
    None,
}
