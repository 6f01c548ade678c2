//! Endpoints and the immutable endpoint sets that discovery hands out.

use crate::route::Percent;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Where an endpoint runs, as Envoy's `Locality`: region, zone and sub-zone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Locality {
    /// Region, e.g. `us-east1`.
    pub region: String,
    /// Zone, e.g. `us-east1-b`.
    pub zone: String,
    /// Sub-zone (a rack, a node).
    pub sub_zone: String,
}

/// An endpoint's health as discovery reports it (Envoy's `HealthStatus`).
///
/// Only [`Health::Healthy`] and [`Health::Unknown`] endpoints receive
/// traffic, as in gRPC's xDS client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Health {
    /// Health is not known; treated as healthy. The default.
    #[default]
    Unknown,
    /// Reported healthy.
    Healthy,
    /// Reported unhealthy.
    Unhealthy,
    /// Draining: takes no new requests.
    Draining,
}

impl Health {
    /// Whether an endpoint in this state may receive requests.
    pub fn is_routable(self) -> bool {
        matches!(self, Health::Unknown | Health::Healthy)
    }
}

/// One instance of a service: an address with a weight, a locality, a
/// priority, a health status and labels (Istio's workload labels such as
/// `version: v1`).
///
/// ```
/// use mesh_core::{Endpoint, Locality};
/// let e = Endpoint::new("127.0.0.1:9080".parse().unwrap())
///     .with_weight(3)
///     .with_locality(Locality { zone: "us-east1-b".into(), ..Default::default() })
///     .with_locality_weight(2)
///     .with_priority(1);
/// assert_eq!((e.weight, e.locality_weight, e.priority), (3, Some(2), 1));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The socket address requests are sent to.
    pub addr: SocketAddr,
    /// Relative weight for load balancing; at least 1. Default 1.
    pub weight: u32,
    /// Where the endpoint runs.
    pub locality: Locality,
    /// The weight of the endpoint's locality (EDS's locality
    /// `load_balancing_weight`); every endpoint of one locality carries the
    /// same value. `None`, the default, leaves locality weighting off.
    pub locality_weight: Option<u32>,
    /// The endpoint's priority (EDS's locality `priority`): 0, the default,
    /// is the highest. Lower priorities take traffic when higher ones are
    /// not healthy enough (Envoy's priority levels).
    pub priority: u32,
    /// Health as reported by discovery.
    pub health: Health,
    /// Workload labels.
    pub labels: BTreeMap<String, String>,
}

impl Endpoint {
    /// An endpoint with weight 1, no locality (nor locality weight),
    /// priority 0, unknown health and no labels.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            weight: 1,
            locality: Locality::default(),
            locality_weight: None,
            priority: 0,
            health: Health::Unknown,
            labels: BTreeMap::new(),
        }
    }

    /// Sets the weight; a weight of 0 is raised to 1.
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight.max(1);
        self
    }

    /// Sets the locality.
    pub fn with_locality(mut self, locality: Locality) -> Self {
        self.locality = locality;
        self
    }

    /// Sets the locality's weight, which turns locality weighting on.
    pub fn with_locality_weight(mut self, weight: u32) -> Self {
        self.locality_weight = Some(weight);
        self
    }

    /// Sets the priority (0 is the highest).
    pub fn with_priority(mut self, priority: u32) -> Self {
        self.priority = priority;
        self
    }

    /// Adds a label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }
}

/// An immutable, cheaply cloned set of endpoints, sorted by address with no
/// duplicates, so two sets with the same members compare equal; and the
/// shares of requests to drop before any reaches them, usually none.
///
/// ```
/// use mesh_core::{Endpoint, EndpointSet};
/// let set: EndpointSet = ["127.0.0.1:2", "127.0.0.1:1", "127.0.0.1:2"]
///     .iter()
///     .map(|a| Endpoint::new(a.parse().unwrap()))
///     .collect();
/// assert_eq!(set.len(), 2);
/// assert_eq!(set.iter().next().unwrap().addr.port(), 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointSet {
    endpoints: Arc<[Endpoint]>,
    drops: Option<Arc<[DropOverload]>>,
}

/// A share of requests to drop before they reach any endpoint, as a
/// control plane sheds load (xDS `drop_overloads`, gRFC A27).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropOverload {
    /// What the drops are counted as, e.g. `throttle`.
    pub category: String,
    /// The share dropped.
    pub percent: Percent,
}

impl EndpointSet {
    /// A set from endpoints; later duplicates of an address are dropped.
    pub fn new(endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        let mut v: Vec<Endpoint> = endpoints.into_iter().collect();
        v.sort_by_key(|e| e.addr);
        v.dedup_by_key(|e| e.addr);
        Self {
            endpoints: v.into(),
            drops: None,
        }
    }

    /// The set with `drops`: requests are dropped by each share in turn
    /// before an endpoint is picked.
    pub fn with_drops(mut self, drops: impl IntoIterator<Item = DropOverload>) -> Self {
        let drops: Vec<DropOverload> = drops.into_iter().collect();
        self.drops = (!drops.is_empty()).then(|| drops.into());
        self
    }

    /// The shares of requests to drop, in order; usually none.
    pub fn drops(&self) -> &[DropOverload] {
        self.drops.as_deref().unwrap_or_default()
    }

    /// The number of endpoints.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// The endpoints, sorted by address.
    pub fn iter(&self) -> std::slice::Iter<'_, Endpoint> {
        self.endpoints.iter()
    }

    /// The endpoints as a slice.
    pub fn as_slice(&self) -> &[Endpoint] {
        &self.endpoints
    }
}

impl FromIterator<Endpoint> for EndpointSet {
    fn from_iter<T: IntoIterator<Item = Endpoint>>(iter: T) -> Self {
        Self::new(iter)
    }
}

impl<'a> IntoIterator for &'a EndpointSet {
    type Item = &'a Endpoint;
    type IntoIter = std::slice::Iter<'a, Endpoint>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
