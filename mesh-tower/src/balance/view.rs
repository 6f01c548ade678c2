//! What requests read: the endpoints that may take traffic now, with what
//! each policy needs precomputed (weighted sampler, round-robin schedule,
//! consistent-hash table) so that a pick is O(1) in the number of endpoints
//! (O(log n) for the ring), and the pick itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mesh_core::policy::LoadBalancer;
use rand::Rng;
use tokio::time::Instant;

use super::hash::HashTable;
use super::load::EwmaParams;
use super::picker::{self, Sampler};
use super::{AttemptedEndpoints, Members, Slot};
use crate::outlier::OutlierDetector;

/// One immutable snapshot of the balancer, swapped in whole.
pub(super) struct View<S> {
    pub(super) members: Arc<Members<S>>,
    /// Every endpoint a request may go to now.
    pub(super) active: Vec<Arc<Slot<S>>>,
    group: Group<S>,
    /// The detector's generation this view was built at.
    pub(super) generation: u64,
    /// When the earliest ejection in force ends.
    pub(super) next_change: Option<Instant>,
}

/// What a pick needs besides the view.
pub(super) struct Pick<'a> {
    pub(super) policy: &'a LoadBalancer,
    pub(super) ewma: EwmaParams,
    /// The request's hash, for the hash policies.
    pub(super) hash: Option<u64>,
    pub(super) attempted: Option<&'a AttemptedEndpoints>,
}

impl<S> View<S> {
    /// A view of `members` for `policy`, leaving out the endpoints the
    /// detector has ejected at `now` (all of them if every one is).
    pub(super) fn build(
        members: Arc<Members<S>>,
        detector: Option<&OutlierDetector>,
        now: Instant,
        policy: &LoadBalancer,
    ) -> Self {
        let mut next_change: Option<Instant> = None;
        let active: Vec<Arc<Slot<S>>> = match &*members {
            Members::Ready(slots) => {
                let up: Vec<_> = slots
                    .iter()
                    .filter(|s| {
                        let until = detector
                            .zip(s.health.as_ref())
                            .and_then(|(d, h)| d.ejected_until(h, now));
                        if let Some(until) = until {
                            next_change = Some(next_change.map_or(until, |t| t.min(until)));
                        }
                        until.is_none()
                    })
                    .cloned()
                    .collect();
                if up.is_empty() { slots.clone() } else { up }
            }
            _ => Vec::new(),
        };
        Self {
            members,
            group: Group::new(active.clone(), policy),
            active,
            generation: detector.map_or(0, |d| d.generation()),
            next_change,
        }
    }

    /// The endpoint for one request, `None` when there is none.
    pub(super) fn pick(&self, pick: &Pick<'_>) -> Option<&Arc<Slot<S>>> {
        self.group.pick(pick, &mut rand::rng())
    }
}

/// Endpoints a policy picks among, with what it needs to pick in O(1).
struct Group<S> {
    slots: Vec<Arc<Slot<S>>>,
    sampler: Sampler,
    schedule: Option<Vec<u32>>,
    rotation: AtomicUsize,
    table: Option<HashTable>,
}

impl<S> Group<S> {
    fn new(slots: Vec<Arc<Slot<S>>>, policy: &LoadBalancer) -> Self {
        let weights: Vec<u32> = slots.iter().map(|s| s.endpoint.weight.max(1)).collect();
        let (schedule, table) = match policy {
            LoadBalancer::RoundRobin => (picker::schedule(&weights), None),
            LoadBalancer::RingHash(_) | LoadBalancer::Maglev(_) => {
                let keyed: Vec<_> = slots
                    .iter()
                    .zip(&weights)
                    .map(|(s, w)| (s.endpoint.addr, *w))
                    .collect();
                (None, HashTable::new(policy, &keyed))
            }
            _ => (None, None),
        };
        Self {
            sampler: Sampler::new(&weights),
            schedule,
            // A random start, so that balancers built together do not all
            // send their first requests to the same endpoint.
            rotation: AtomicUsize::new(rand::rng().random_range(0..slots.len().max(1))),
            table,
            slots,
        }
    }

    fn pick<R: Rng>(&self, pick: &Pick<'_>, rng: &mut R) -> Option<&Arc<Slot<S>>> {
        let n = self.slots.len();
        if n <= 1 {
            return self.slots.first();
        }
        let tried =
            |i: usize, addrs: &[std::net::SocketAddr]| addrs.contains(&self.slots[i].endpoint.addr);
        if let Some(table) = &self.table {
            // As gRPC: a request without a hash goes to a random place.
            let hash = pick.hash.unwrap_or_else(|| rng.random());
            let index = match pick.attempted {
                None => table.pick(hash, |_| false),
                Some(a) => a.with(|addrs| {
                    if addrs.len() >= n && (0..n).all(|i| tried(i, addrs)) {
                        table.pick(hash, |_| false)
                    } else {
                        table.pick(hash, |i| tried(i, addrs))
                    }
                }),
            };
            return index.and_then(|i| self.slots.get(i));
        }
        let avoid = |i: usize| {
            pick.attempted
                .is_some_and(|a| a.with(|addrs| tried(i, addrs)))
        };
        let mut sample = |other: Option<usize>| {
            let mut i = match other {
                Some(o) => self.sampler.sample_other(o, rng),
                None => self.sampler.sample(rng),
            };
            for _ in 0..3 {
                if !avoid(i) {
                    break;
                }
                i = self.sampler.sample(rng);
            }
            i
        };
        let index = match pick.policy {
            LoadBalancer::RoundRobin => {
                let turn = self.rotation.fetch_add(1, Ordering::Relaxed);
                let at = |t: usize| match &self.schedule {
                    Some(order) => order[t % order.len()] as usize,
                    None => t % n,
                };
                (turn..turn + n.min(4))
                    .map(at)
                    .find(|i| !avoid(*i))
                    .unwrap_or(at(turn))
            }
            LoadBalancer::LeastRequest | LoadBalancer::PeakEwma(_) => {
                let a = sample(None);
                let b = sample(Some(a));
                let now = Instant::now();
                let cost = |i: usize| {
                    let slot = &self.slots[i];
                    let load = match pick.policy {
                        LoadBalancer::LeastRequest => f64::from(slot.load.pending() + 1),
                        _ => slot.load.peak_ewma_cost(now, pick.ewma),
                    };
                    load / f64::from(slot.endpoint.weight.max(1))
                };
                match (avoid(a), avoid(b)) {
                    (true, false) => b,
                    (false, true) => a,
                    _ if cost(b) < cost(a) => b,
                    _ => a,
                }
            }
            // Random, and the hash policies should their table be missing.
            _ => sample(None),
        };
        self.slots.get(index)
    }
}
