//! What requests read: the endpoints that may take traffic now, grouped by
//! priority level and locality, with what each policy needs precomputed
//! (priority loads, locality sampler, weighted sampler, round-robin
//! schedule, consistent-hash table), so that a pick is O(1) in the number
//! of endpoints (O(log n) for the ring); and the pick itself.
//!
//! Priority levels and localities follow Envoy: see [`super::priority`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mesh_core::policy::LoadBalancer;
use mesh_core::{Endpoint, Locality};
use rand::Rng;
use tokio::time::Instant;

use super::hash::HashTable;
use super::load::EwmaParams;
use super::picker::{self, Sampler};
use super::{AttemptedEndpoints, Members, Slot, priority};
use crate::outlier::OutlierDetector;

/// One immutable snapshot of the balancer, swapped in whole.
pub(super) struct View<S> {
    pub(super) members: Arc<Members<S>>,
    /// Every endpoint a request may go to now.
    pub(super) active: Vec<Arc<Slot<S>>>,
    /// The priority levels that take traffic, highest first.
    tiers: Vec<Tier<S>>,
    /// The detector's generation this view was built at.
    pub(super) generation: u64,
    /// When the earliest ejection in force ends.
    pub(super) next_change: Option<Instant>,
}

/// What a pick needs besides the view.
#[derive(Clone, Copy)]
pub(super) struct Pick<'a> {
    pub(super) policy: &'a LoadBalancer,
    pub(super) ewma: EwmaParams,
    /// The request's hash, for the hash policies.
    pub(super) hash: Option<u64>,
    pub(super) attempted: Option<&'a AttemptedEndpoints>,
}

/// The endpoints of one priority level that take traffic.
struct Tier<S> {
    /// The level takes a draw in `0..100` below this and at or above the
    /// previous level's: the running sum of the levels' loads.
    until: u32,
    /// All its endpoints that take traffic.
    all: Group<S>,
    /// Its localities and their sampler, when locality weighting is on.
    localities: Option<(Sampler, Vec<Group<S>>)>,
}

/// Counts of one priority level, or of one locality in it.
#[derive(Default)]
struct Count {
    /// Endpoints that may take traffic (neither reported down nor ejected).
    up: usize,
    /// All endpoints.
    total: usize,
}

/// One priority level while a view is built.
struct Level<'a, S> {
    count: Count,
    up: Vec<Arc<Slot<S>>>,
    localities: BTreeMap<&'a Locality, (Count, Option<u32>)>,
}

impl<S> Default for Level<'_, S> {
    fn default() -> Self {
        Self {
            count: Count::default(),
            up: Vec::new(),
            localities: BTreeMap::new(),
        }
    }
}

impl<'a, S> Level<'a, S> {
    fn add(&mut self, endpoint: &'a Endpoint, up: Option<&Arc<Slot<S>>>) {
        let (count, weight) = self.localities.entry(&endpoint.locality).or_default();
        *weight = weight.or(endpoint.locality_weight);
        for c in [&mut self.count, count] {
            c.total += 1;
            c.up += usize::from(up.is_some());
        }
        if let Some(slot) = up {
            self.up.push(slot.clone());
        }
    }
}

impl<S> View<S> {
    /// A view of `members` for `policy`, leaving out the endpoints the
    /// detector has ejected at `now`. When no endpoint is left, the first
    /// priority level's are all used, ejected or not (Envoy's panic
    /// routing).
    pub(super) fn build(
        members: Arc<Members<S>>,
        detector: Option<&OutlierDetector>,
        now: Instant,
        policy: &LoadBalancer,
    ) -> Self {
        let mut next_change: Option<Instant> = None;
        let (slots, down): (&[Arc<Slot<S>>], &[Endpoint]) = match &*members {
            Members::Ready(slots, down, _) => (slots, down),
            _ => (&[], &[]),
        };
        let mut up: Vec<bool> = slots
            .iter()
            .map(|s| {
                let until = detector
                    .zip(s.health.as_ref())
                    .and_then(|(d, h)| d.ejected_until(h, now));
                if let Some(until) = until {
                    next_change = Some(next_change.map_or(until, |t| t.min(until)));
                }
                until.is_none()
            })
            .collect();
        if !up.contains(&true)
            && let Some(first) = slots.iter().map(|s| s.endpoint.priority).min()
        {
            for (u, s) in up.iter_mut().zip(slots) {
                *u = s.endpoint.priority == first;
            }
        }
        let mut levels: BTreeMap<u32, Level<'_, S>> = BTreeMap::new();
        for (slot, up) in slots.iter().zip(&up) {
            let e = &slot.endpoint;
            levels
                .entry(e.priority)
                .or_default()
                .add(e, up.then_some(slot));
        }
        for e in down {
            levels.entry(e.priority).or_default().add(e, None);
        }
        let levels: Vec<Level<'_, S>> = levels.into_values().collect();
        let health: Vec<u32> = levels
            .iter()
            .map(|l| priority::health(l.count.up, l.count.total))
            .collect();
        let loads = if health.iter().any(|h| *h > 0) {
            priority::loads(&health)
        } else {
            // Too few healthy endpoints to count anywhere: the first level
            // that has any takes everything.
            let mut loads = vec![0; levels.len()];
            if let Some(first) = levels.iter().position(|l| !l.up.is_empty()) {
                loads[first] = 100;
            }
            loads
        };
        let mut tiers = Vec::new();
        let mut until = 0;
        for (level, load) in levels.into_iter().zip(loads) {
            if load == 0 || level.up.is_empty() {
                continue;
            }
            until += load;
            tiers.push(Tier::new(until, level, policy));
        }
        Self {
            members,
            active: tiers
                .iter()
                .flat_map(|t| t.all.slots.iter().cloned())
                .collect(),
            tiers,
            generation: detector.map_or(0, |d| d.generation()),
            next_change,
        }
    }

    /// The endpoint for one request, `None` when there is none: a priority
    /// level drawn by the levels' loads, then a locality drawn by effective
    /// locality weight (not for the hash policies, as Envoy), then the
    /// policy's pick among its endpoints. A pick the request already tried
    /// is drawn again, up to twice.
    ///
    /// Under the hash policies the level is chosen by the request's hash
    /// (`hash mod 100` against the loads, as Envoy), so a key keeps its
    /// endpoint while the loads are split between levels too.
    pub(super) fn pick(&self, pick: &Pick<'_>) -> Option<&Arc<Slot<S>>> {
        let mut rng = rand::rng();
        let hash = if pick.policy.is_consistent_hash() {
            // As gRPC: a request without a hash goes to a random place.
            Some(pick.hash.unwrap_or_else(|| rng.random()))
        } else {
            None
        };
        let pick = &Pick { hash, ..*pick };
        let mut chosen = None;
        for _ in 0..3 {
            let tier = match self.tiers.as_slice() {
                [only] => only,
                tiers => {
                    let draw = match hash {
                        Some(h) => (h % 100) as u32,
                        None => rng.random_range(0..100),
                    };
                    tiers.iter().find(|t| draw < t.until).or(tiers.last())?
                }
            };
            let group = match &tier.localities {
                Some((sampler, groups)) if !pick.policy.is_consistent_hash() => {
                    groups.get(sampler.sample(&mut rng)).unwrap_or(&tier.all)
                }
                _ => &tier.all,
            };
            chosen = group.pick(pick, &mut rng);
            let tried = |s: &Arc<Slot<S>>| {
                pick.attempted
                    .is_some_and(|a| a.with(|addrs| addrs.contains(&s.endpoint.addr)))
            };
            if !chosen.is_some_and(tried) {
                break;
            }
        }
        chosen
    }
}

impl<S> Tier<S> {
    fn new(until: u32, level: Level<'_, S>, policy: &LoadBalancer) -> Self {
        let weighted = level.localities.values().any(|(_, w)| w.is_some());
        let localities = if weighted && !policy.is_consistent_hash() {
            let mut by_locality: BTreeMap<&Locality, Vec<Arc<Slot<S>>>> = BTreeMap::new();
            for slot in &level.up {
                by_locality
                    .entry(&slot.endpoint.locality)
                    .or_default()
                    .push(slot.clone());
            }
            // A locality without a weight takes no traffic while others
            // have one (as Envoy treats a weight of 0).
            let (weights, groups): (Vec<f64>, Vec<Group<S>>) = by_locality
                .into_iter()
                .filter_map(|(locality, slots)| {
                    let (count, weight) = level.localities.get(locality)?;
                    let w = priority::locality_weight(weight.unwrap_or(0), count.up, count.total);
                    (w > 0.0).then(|| (w, Group::new(slots, policy)))
                })
                .unzip();
            // No locality can take traffic by weight: weighting is off here.
            (!groups.is_empty()).then(|| (Sampler::new(&weights), groups))
        } else {
            None
        };
        Self {
            until,
            all: Group::new(level.up, policy),
            localities,
        }
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
