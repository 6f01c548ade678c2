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
/// that answers itself (a redirect, a direct response).
type Stacks<S> = Vec<Vec<Option<S>>>;

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
        mut make: impl FnMut(&RouteKey, &RouteEntry, &Forward) -> S,
    ) -> Self {
        let mut stacks = |listener: Option<&str>, table: &RouteTable| -> Stacks<S> {
            let listener: Option<Arc<str>> = listener.map(Into::into);
            let hosts = table.virtual_hosts().iter().enumerate();
            hosts
                .map(|(v, vh)| {
                    let routes = vh.routes.iter().enumerate();
                    routes
                        .map(|(r, route)| match &route.action {
                            RouteAction::Forward(forward) => {
                                let id = RouteId {
                                    virtual_host: v as u32,
                                    route: r as u32,
                                };
                                let key = RouteKey {
                                    listener: listener.clone(),
                                    id,
                                };
                                Some(make(&key, route, forward))
                            }
                            _ => None,
                        })
                        .collect()
                })
                .collect()
        };
        let default = stacks(None, config.routes());
        let listeners = config
            .listener_names()
            .filter_map(|name| Some((name, config.listener(name)?)))
            .map(|(name, table)| (Arc::from(name), stacks(Some(name), table)))
            .collect();
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
