//! From what the ADS client accepted to what a client routes by: an
//! [`AdsView`] becomes a [`MeshConfig`] with one route table per target.
//!
//! - Each target (`reviews.default.svc.cluster.local:9080`, the authority a
//!   request is sent to) maps to its listener resource (the bootstrap's
//!   template applied to it). A listener whose route configuration has
//!   arrived (inline or over RDS) gives the target its route table; until
//!   then the target has none.
//! - The listener's HTTP filters shape the table as gRPC applies them: a
//!   route without a fault of its own takes the fault filter's (gRFC A33),
//!   and a chain without a fault filter injects none; a route without a
//!   timeout of its own takes the listener's `max_stream_duration` (A31).
//! - Every cluster a route names is defined as an endpoint set the
//!   resolver knows by the cluster's name
//!   ([`Discovery::Named`](mesh_core::Discovery::Named)); the
//!   [`XdsResolve`](crate::XdsResolve) answers for it. A cluster not
//!   received (yet, or at all) is defined as
//!   [`Discovery::Missing`](mesh_core::Discovery::Missing), instead of the
//!   whole configuration failing: its requests fail at once, for nothing
//!   is known of how to reach it (its TLS included). A target is not
//!   [`Ready`](TargetState::Ready) until the clusters its routes name have
//!   arrived or are known to be unavailable: its first requests wait for
//!   them, and routes naming a new cluster apply once it is here, the
//!   previous ones serving meanwhile, as gRPC does.
//!
//! [`ConfigBuilder`] makes one configuration after another, keeping what a
//! change did not touch (the same tables and clusters, which a client
//! then does not rebuild); [`AdsView::mesh_config`] makes one from scratch.

use mesh_core::route::{FaultPolicy, RouteAction};
use mesh_core::{Cluster, ConfigError, MeshConfig, RouteError, RouteTable};

mod builder;

pub use builder::ConfigBuilder;
pub(crate) use builder::diff_key;

use crate::ads::{AdsView, ResourceType};
use crate::resource::{FilterKind, RouteSource, XdsCluster, XdsListener};

/// Where one target stands in an [`AdsView`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetState {
    /// Its listener and route configuration are accepted: it routes.
    Ready,
    /// Nothing usable has arrived for it yet.
    Pending,
    /// The control plane says its listener or route configuration does not
    /// exist.
    DoesNotExist(String),
    /// Its listener or route configuration was rejected, and no earlier
    /// copy stands; what the NACK said.
    Rejected(String),
}

impl AdsView {
    /// The configuration requests are routed by, for `targets`, made
    /// anew after `previous`: [`ConfigBuilder::build`] with nothing to
    /// reuse.
    pub fn mesh_config<'a>(
        &self,
        targets: impl IntoIterator<Item = (&'a str, &'a str)>,
        previous: &MeshConfig,
    ) -> Result<MeshConfig, ConfigError> {
        ConfigBuilder::after(previous.clone()).build(self, targets)
    }

    /// Where the target whose listener resource is `listener` stands.
    pub fn target_state(&self, listener: &str) -> TargetState {
        let l = match self.listeners.get(listener) {
            Some(l) => l,
            None => return self.missing(ResourceType::Listener, listener),
        };
        if let Some(server) = &l.server {
            return TargetState::Rejected(format!(
                "listener {listener:?} is a server's listener (on {}), not one a client \
                 routes by",
                server.address
            ));
        }
        let Some(table) = self.listener_table(l) else {
            return match &l.routes {
                RouteSource::Rds { route_config_name } => {
                    self.missing(ResourceType::RouteConfig, route_config_name)
                }
                RouteSource::Inline(_) => TargetState::Ready,
            };
        };
        if self.awaits_cluster(table) {
            TargetState::Pending
        } else {
            TargetState::Ready
        }
    }

    /// Whether `table` names a cluster on its way: the target routes once
    /// it is here, or known not to come (its requests then fail).
    pub(crate) fn awaits_cluster(&self, table: &RouteTable) -> bool {
        table.clusters().any(|c| {
            !self.clusters.contains_key(c.as_str())
                && self
                    .unavailable(ResourceType::Cluster, c.as_str())
                    .is_none()
        })
    }

    /// Why `name` of `kind` has no accepted copy, when the control plane
    /// said: it rejected every copy, or says it does not exist. `None`
    /// while it may still come.
    pub fn unavailable(&self, kind: ResourceType, name: &str) -> Option<TargetState> {
        if let Some(error) = self.rejected(kind, name) {
            let reason = format!("{kind} resource {name:?} was rejected: {error}");
            return Some(TargetState::Rejected(reason));
        }
        self.does_not_exist(kind, name)
            .then(|| TargetState::DoesNotExist(format!("{kind} resource {name:?} does not exist")))
    }

    fn missing(&self, kind: ResourceType, name: &str) -> TargetState {
        self.unavailable(kind, name).unwrap_or(TargetState::Pending)
    }

    /// The route table of listener `l`, once it has arrived.
    fn listener_table<'v>(&'v self, l: &'v XdsListener) -> Option<&'v RouteTable> {
        match &l.routes {
            RouteSource::Inline(rc) => Some(&rc.table),
            RouteSource::Rds { route_config_name } => self
                .route_configs
                .get(route_config_name)
                .map(|rc| &rc.table),
        }
    }
}

/// `table` with `l`'s fault filter and stream duration applied to routes
/// that set neither; the same table when there is nothing to apply.
pub(crate) fn with_listener_defaults(
    l: &XdsListener,
    table: &RouteTable,
) -> Result<RouteTable, RouteError> {
    let fault: Option<&FaultPolicy> = l.http_filters.iter().find_map(|f| match &f.kind {
        FilterKind::Fault(p) => Some(p),
        _ => None,
    });
    let routes = || table.virtual_hosts().iter().flat_map(|vh| &vh.routes);
    let faults_change = match fault {
        Some(p) => *p != FaultPolicy::default() && routes().any(|r| r.fault.is_none()),
        None => routes().any(|r| r.fault.is_some()),
    };
    let timeout = l.max_stream_duration;
    let timeouts_change =
        timeout.is_some() && routes().any(|r| r.forwarding().is_some_and(|f| f.timeout.is_none()));
    if !faults_change && !timeouts_change {
        return Ok(table.clone());
    }
    let mut virtual_hosts = table.virtual_hosts().to_vec();
    for route in virtual_hosts.iter_mut().flat_map(|vh| &mut vh.routes) {
        match fault {
            Some(p) => {
                route.fault.get_or_insert_with(|| p.clone());
            }
            None => route.fault = None,
        }
        if let (RouteAction::Forward(f), Some(d)) = (&mut route.action, timeout) {
            f.timeout.get_or_insert(Some(d));
        }
    }
    RouteTable::new(virtual_hosts)
}

/// An accepted xDS cluster as the mesh keeps it: its endpoints are the
/// resolver's, by the cluster's name.
pub(crate) fn cluster(c: &XdsCluster) -> Cluster {
    Cluster {
        policy: c.policy.clone(),
        ..Cluster::named(c.name.as_str())
    }
}
