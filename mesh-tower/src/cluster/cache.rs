//! The client's cluster stacks by target (and its xDS targets' listeners):
//! read without locks, built on first use, and evicted when idle or when
//! there are too many, so requests to an unbounded set of authorities
//! cannot grow the client without bound. What is evicted is handed back
//! where the owner must undo something for it (an xDS subscription).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use std::hash::Hash;
use tokio::time::Instant;

/// How long an unused cluster is kept, and how many are kept at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CacheLimits {
    /// A cluster unused this long is dropped (with its connections and
    /// discovery) when the next new target arrives. Whole seconds.
    pub(crate) idle_timeout: Duration,
    /// Clusters kept at most; a new target beyond it evicts the least
    /// recently used.
    pub(crate) max_clusters: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(300),
            max_clusters: 10_000,
        }
    }
}

pub(crate) struct ClusterCache<K, S> {
    clusters: ArcSwap<HashMap<K, Arc<Entry<S>>>>,
    create: Mutex<()>,
    epoch: Instant,
    limits: CacheLimits,
}

struct Entry<S> {
    service: S,
    /// Seconds since the cache's epoch when last used.
    last_used: AtomicU64,
}

impl<S> Entry<S> {
    fn touch(&self, now: u64) {
        // One write per second at most, not one per request.
        if self.last_used.load(Ordering::Relaxed) != now {
            self.last_used.store(now, Ordering::Relaxed);
        }
    }

    fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }
}

impl<K: Hash + Eq + Clone, S: Clone> ClusterCache<K, S> {
    pub(crate) fn new(limits: CacheLimits) -> Self {
        Self {
            clusters: Default::default(),
            create: Mutex::new(()),
            epoch: Instant::now(),
            // Whole seconds, at least one: with none, an entry in use
            // would be idle at once.
            limits: CacheLimits {
                max_clusters: limits.max_clusters.max(1),
                idle_timeout: limits.idle_timeout.max(Duration::from_secs(1)),
            },
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_secs()
    }

    /// The service of `target`, if it has been built; marks it used.
    pub(crate) fn get<Q>(&self, target: &Q) -> Option<S>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let clusters = self.clusters.load();
        let e = clusters.get(target)?;
        e.touch(self.now());
        Some(e.service.clone())
    }

    /// The service of `target`, built with `build` on first use.
    pub(crate) fn get_or_build(&self, target: &K, build: impl FnOnce() -> S) -> S {
        self.get_or_build_evicting(target, build).0
    }

    /// [`get_or_build`](Self::get_or_build), and what making room for a
    /// new entry evicted: the idle, then the least recently used beyond
    /// the cap.
    pub(crate) fn get_or_build_evicting(
        &self,
        target: &K,
        build: impl FnOnce() -> S,
    ) -> (S, Vec<(K, S)>) {
        if let Some(service) = self.get(target) {
            return (service, Vec::new());
        }
        let now = self.now();
        let _guard = self.create.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.clusters.load();
        if let Some(e) = current.get(target) {
            e.touch(now);
            return (e.service.clone(), Vec::new());
        }
        let idle = self.limits.idle_timeout.as_secs();
        let (kept, mut evicted): (Vec<_>, Vec<_>) = current
            .iter()
            .map(|(k, e)| (k.clone(), e.clone()))
            .partition(|(_, e)| now.saturating_sub(e.last_used()) < idle);
        let mut next: HashMap<_, _> = kept.into_iter().collect();
        while next.len() >= self.limits.max_clusters {
            let oldest = next
                .iter()
                .min_by_key(|(_, e)| e.last_used())
                .map(|(k, _)| k.clone());
            match oldest.and_then(|k| next.remove_entry(&k)) {
                Some(gone) => evicted.push(gone),
                None => break,
            };
        }
        let service = build();
        let entry = Entry {
            service: service.clone(),
            last_used: AtomicU64::new(now),
        };
        next.insert(target.clone(), Arc::new(entry));
        self.clusters.store(Arc::new(next));
        (service, services(evicted))
    }

    /// Removes the entries unused for the idle timeout, and returns them.
    #[cfg(any(feature = "xds", test))]
    pub(crate) fn take_idle(&self) -> Vec<(K, S)> {
        let now = self.now();
        let idle = self.limits.idle_timeout.as_secs();
        self.take(|_, e| now.saturating_sub(e.last_used()) >= idle)
    }

    /// Removes `target`, and returns its service if it had one.
    #[cfg(any(feature = "xds", test))]
    pub(crate) fn remove(&self, target: &K) -> Option<S> {
        self.take(|k, _| k == target).pop().map(|(_, s)| s)
    }

    /// The targets with a cluster now.
    pub(crate) fn targets(&self) -> Vec<K> {
        self.clusters.load().keys().cloned().collect()
    }

    /// Every target with its service, without marking them used.
    pub(crate) fn entries(&self) -> Vec<(K, S)> {
        let clusters = self.clusters.load();
        clusters
            .iter()
            .map(|(k, e)| (k.clone(), e.service.clone()))
            .collect()
    }

    /// How long an entry may go unused.
    #[cfg(feature = "xds")]
    pub(crate) fn idle_timeout(&self) -> Duration {
        self.limits.idle_timeout
    }

    /// Removes the entries `gone` picks, and returns them.
    #[cfg(any(feature = "xds", test))]
    fn take(&self, mut gone: impl FnMut(&K, &Entry<S>) -> bool) -> Vec<(K, S)> {
        let _guard = self.create.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.clusters.load();
        if !current.iter().any(|(k, e)| gone(k, e)) {
            return Vec::new();
        }
        let (taken, kept): (Vec<_>, Vec<_>) = current
            .iter()
            .map(|(k, e)| (k.clone(), e.clone()))
            .partition(|(k, e)| gone(k, e));
        self.clusters.store(Arc::new(kept.into_iter().collect()));
        services(taken)
    }

    /// Drops the clusters whose key fails `keep`.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&K) -> bool) {
        let _guard = self.create.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.clusters.load();
        if current.keys().all(&mut keep) {
            return;
        }
        let next = current
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        self.clusters.store(Arc::new(next));
    }
}

fn services<K, S: Clone>(entries: Vec<(K, Arc<Entry<S>>)>) -> Vec<(K, S)> {
    entries
        .into_iter()
        .map(|(k, e)| (k, e.service.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use mesh_core::Authority;

    use super::*;

    fn t(n: u32) -> Authority {
        format!("svc-{n}:80").parse().unwrap()
    }

    fn cache(idle: u64, max: usize) -> ClusterCache<Authority, u32> {
        ClusterCache::new(CacheLimits {
            idle_timeout: Duration::from_secs(idle),
            max_clusters: max,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn builds_once_per_target() {
        let c = cache(60, 10);
        assert_eq!(c.get_or_build(&t(1), || 1), 1);
        assert_eq!(c.get_or_build(&t(1), || 2), 1);
        assert_eq!(c.get_or_build(&t(2), || 2), 2);
        assert_eq!(c.targets().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_clusters_go_when_a_new_target_arrives() {
        let c = cache(60, 10);
        c.get_or_build(&t(1), || 1);
        c.get_or_build(&t(2), || 2);
        tokio::time::advance(Duration::from_secs(30)).await;
        c.get_or_build(&t(2), || 0);
        tokio::time::advance(Duration::from_secs(40)).await;
        c.get_or_build(&t(3), || 3);
        let mut left = c.targets();
        left.sort();
        assert_eq!(left, vec![t(2), t(3)]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_least_recently_used_goes_beyond_the_cap() {
        let c = cache(3600, 3);
        for n in 0..3 {
            c.get_or_build(&t(n), || n);
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        c.get_or_build(&t(0), || 9);
        for n in 3..100 {
            c.get_or_build(&t(n), || n);
            assert!(c.targets().len() <= 3);
        }
        assert!(c.targets().contains(&t(99)));
        c.retain(|k| *k != t(99));
        assert!(!c.targets().contains(&t(99)));
    }

    #[tokio::test(start_paused = true)]
    async fn what_goes_is_handed_back() {
        let c = cache(60, 2);
        c.get_or_build(&t(1), || 1);
        c.get_or_build(&t(2), || 2);
        // Beyond the cap: the least recently used goes.
        tokio::time::advance(Duration::from_secs(1)).await;
        c.get(&t(2));
        assert_eq!(c.get_or_build_evicting(&t(3), || 3).1, [(t(1), 1)]);
        tokio::time::advance(Duration::from_secs(60)).await;
        c.get(&t(3));
        assert_eq!(c.take_idle(), [(t(2), 2)]);
        assert!(c.take_idle().is_empty());
        assert_eq!(c.remove(&t(3)), Some(3));
        assert_eq!(c.remove(&t(3)), None);
        assert!(c.entries().is_empty());
    }
}
