//! [`Routes`]: a configuration with a prebuilt stack for each of its
//! forwarding routes, swapped in whole ([`SharedRoutes`]) and read by
//! requests without locks.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use mesh_core::route::{Forward, Route as RouteEntry, RouteAction, RouteId};
use mesh_core::{MeshConfig, RouteTable};

/// Which route of a configuration: its listener's table (`None` for the
/// configuration's own [`routes`](MeshConfig::routes)) and its place there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteKey {
    /// The listener whose table holds the route, if it is a listener's.
    pub listener: Option<Arc<str>>,
    /// The route in its table.
    pub id: RouteId,
}

/// The stacks of one table: by virtual host, by route; `None` for a route
/// that answers itself (a redirect, a direct response). Shared by the
/// configurations that keep the table.
type Stacks<S> = Arc<Vec<Vec<Option<S>>>>;

/// A configuration and the stack of each of its forwarding routes.
#[derive(Debug)]
pub struct Routes<S> {
    config: Arc<MeshConfig>,
    default: Stacks<S>,
    listeners: HashMap<Arc<str>, Stacks<S>>,
}

impl<S> Routes<S> {
    /// The stacks of `config`'s routes, each made by `make` from the route
    /// and its forwarding action.
    pub fn build(
        config: Arc<MeshConfig>,
        make: impl FnMut(&RouteKey, &RouteEntry, &Forward) -> S,
    ) -> Self {
        Self::make(config, None, make, |_, _| {})
    }

    /// As [`build`](Self::build), for the configuration after `previous`'s:
    /// a listener whose table is the one it had there
    /// ([`RouteTable::ptr_eq`]), naming the same clusters (the same
    /// [`shared_cluster`](MeshConfig::shared_cluster)s), keeps its stacks,
    /// and `kept` is told each of its forwarding routes; only the others
    /// are made. One change then costs what it touches.
    pub fn rebuild(
        config: Arc<MeshConfig>,
        previous: &Self,
        make: impl FnMut(&RouteKey, &RouteEntry, &Forward) -> S,
        kept: impl FnMut(&RouteKey, &RouteEntry),
    ) -> Self {
        Self::make(config, Some(previous), make, kept)
    }

    fn make(
        config: Arc<MeshConfig>,
        previous: Option<&Self>,
        mut make: impl FnMut(&RouteKey, &RouteEntry, &Forward) -> S,
        mut kept: impl FnMut(&RouteKey, &RouteEntry),
    ) -> Self {
        let mut stacks = |listener: Option<Arc<str>>, table: &RouteTable| -> Stacks<S> {
            let mut out: Vec<Vec<Option<S>>> = table
                .virtual_hosts()
                .iter()
                .map(|vh| Vec::with_capacity(vh.routes.len()))
                .collect();
            for (key, route) in keyed(listener, table) {
                let stack = match &route.action {
                    RouteAction::Forward(forward) => Some(make(&key, route, forward)),
                    _ => None,
                };
                out[key.id.virtual_host as usize].push(stack);
            }
            Arc::new(out)
        };
        let default = stacks(None, config.routes());
        let mut listeners = HashMap::with_capacity(config.listener_names().size_hint().0);
        for name in config.listener_names() {
            let Some(table) = config.listener(name) else {
                continue;
            };
            let unchanged = previous.and_then(|p| {
                let (old_name, old) = p.listeners.get_key_value(name)?;
                let same_table = p
                    .config
                    .listener(name)
                    .is_some_and(|t| RouteTable::ptr_eq(t, table));
                let same_clusters = table.clusters().all(|c| {
                    match (p.config.shared_cluster(c), config.shared_cluster(c)) {
                        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                        _ => false,
                    }
                });
                (same_table && same_clusters).then(|| (old_name.clone(), old.clone()))
            });
            match unchanged {
                Some((name, old)) => {
                    for (key, route) in keyed(Some(name.clone()), table) {
                        if matches!(route.action, RouteAction::Forward(_)) {
                            kept(&key, route);
                        }
                    }
                    listeners.insert(name, old);
                }
                None => {
                    let name: Arc<str> = Arc::from(name);
                    let built = stacks(Some(name.clone()), table);
                    listeners.insert(name, built);
                }
            }
        }
        Self {
            config,
            default,
            listeners,
        }
    }

    /// The table a request sent to `authority` (as written) is matched
    /// against, and its stacks.
    pub(super) fn for_authority(&self, authority: &str) -> (&RouteTable, &Stacks<S>) {
        match self.config.listener(authority) {
            Some(table) => (table, &self.listeners[authority]),
            None => (self.config.routes(), &self.default),
        }
    }
}

/// Every route of `table` (the table of `listener`, or the default one),
/// with its key.
fn keyed(
    listener: Option<Arc<str>>,
    table: &RouteTable,
) -> impl Iterator<Item = (RouteKey, &RouteEntry)> {
    let hosts = table.virtual_hosts().iter().enumerate();
    hosts.flat_map(move |(v, vh)| {
        let listener = listener.clone();
        vh.routes.iter().enumerate().map(move |(r, route)| {
            let id = RouteId {
                virtual_host: v as u32,
                route: r as u32,
            };
            let key = RouteKey {
                listener: listener.clone(),
                id,
            };
            (key, route)
        })
    })
}

/// The routes in use, replaced whole by their owner and read by requests
/// without locks. Clones share them.
#[derive(Debug)]
pub struct SharedRoutes<S>(Arc<ArcSwap<Routes<S>>>);

impl<S> Clone for SharedRoutes<S> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S> SharedRoutes<S> {
    /// Starts with `routes`.
    pub fn new(routes: Routes<S>) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(routes)))
    }

    /// The routes now.
    pub fn load(&self) -> Arc<Routes<S>> {
        self.0.load_full()
    }

    /// Replaces the routes; requests already routed keep the stacks they
    /// were routed into.
    pub fn store(&self, routes: Routes<S>) {
        self.0.store(Arc::new(routes))
    }
}
