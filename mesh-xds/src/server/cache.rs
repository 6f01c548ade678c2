//! [`ResourceCache`]: the resources the ADS server serves, by type and
//! name, each with a version that is a digest of its bytes.
//!
//! One global set of resources, the same for every node: per-node
//! snapshots are not supported yet. Each type is replaced whole by
//! [`ResourceCache::set`]; streams read the current [`CacheSnapshot`]
//! without a lock and wait on [`ResourceCache::changed`] for the next one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use envoy_types::pb::google::protobuf::Any;
use tokio::sync::watch;
use xxhash_rust::xxh64::{Xxh64, xxh64};

use crate::ads::ResourceType;

/// One resource as served: its packed proto and the digest of its bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedResource {
    /// The packed proto, sent as is.
    pub any: Any,
    /// The hex xxh64 digest of `any.value`: the same bytes always give
    /// the same version.
    pub version: String,
}

impl CachedResource {
    /// `any`, versioned by its bytes.
    pub fn new(any: Any) -> Self {
        let version = format!("{:016x}", xxh64(&any.value, 0));
        Self { any, version }
    }
}

/// The resources of one type, by name.
pub type TypeResources = BTreeMap<String, CachedResource>;

/// Everything the cache holds at one moment; never changes once made.
#[derive(Clone, Debug, Default)]
pub struct CacheSnapshot {
    /// In [`ResourceType::ALL`] order.
    types: [Arc<TypeResources>; 4],
}

impl CacheSnapshot {
    /// The resources of `kind`, by name.
    pub fn resources(&self, kind: ResourceType) -> &TypeResources {
        &self.types[kind as usize]
    }
}

/// The resources an [`AdsServer`](super::AdsServer) serves to every
/// stream. Cloning it shares it.
///
/// ```
/// use envoy_types::pb::google::protobuf::Any;
/// use mesh_xds::ads::ResourceType;
/// use mesh_xds::server::ResourceCache;
///
/// let cache = ResourceCache::new();
/// let cluster = Any { type_url: ResourceType::Cluster.type_url().into(), value: vec![] };
/// cache.set(ResourceType::Cluster, vec![("reviews".to_owned(), cluster)]);
/// assert!(cache.load().resources(ResourceType::Cluster).contains_key("reviews"));
/// ```
#[derive(Clone, Debug)]
pub struct ResourceCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    current: ArcSwap<CacheSnapshot>,
    /// Bumped after every change that swapped in a new snapshot.
    generation: watch::Sender<u64>,
    /// Serializes writers, so that two `set`s of different types both land.
    write: Mutex<()>,
}

impl Default for ResourceCache {
    fn default() -> Self {
        Self::new()
    }
}

impl ResourceCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                current: ArcSwap::from_pointee(CacheSnapshot::default()),
                generation: watch::Sender::new(0),
                write: Mutex::new(()),
            }),
        }
    }

    /// Serves exactly `resources` for `kind` from now on, replacing what
    /// was there. A later entry with the same name wins. Setting the same
    /// content again wakes no one.
    pub fn set(&self, kind: ResourceType, resources: Vec<(String, Any)>) {
        let resources: TypeResources = resources
            .into_iter()
            .map(|(name, any)| (name, CachedResource::new(any)))
            .collect();
        let _guard = self
            .inner
            .write
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.inner.current.load_full();
        if *current.resources(kind) == resources {
            return;
        }
        let mut next = CacheSnapshot::clone(&current);
        next.types[kind as usize] = Arc::new(resources);
        self.inner.current.store(Arc::new(next));
        self.inner.generation.send_modify(|g| *g += 1);
    }

    /// What the cache holds now.
    pub fn load(&self) -> Arc<CacheSnapshot> {
        self.inner.current.load_full()
    }

    /// A receiver that is marked changed after every change from now on.
    pub fn changed(&self) -> watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }
}

/// A digest of a set of `(name, version)` pairs, in name order: the
/// `version_info` of a response carrying exactly them.
pub(super) fn set_version<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let mut hasher = Xxh64::new(0);
    for (name, version) in pairs {
        hasher.update(name.as_bytes());
        hasher.update(&[0]);
        hasher.update(version.as_bytes());
        hasher.update(&[0]);
    }
    format!("{:016x}", hasher.digest())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(value: &[u8]) -> Any {
        Any {
            type_url: ResourceType::Cluster.type_url().into(),
            value: value.to_vec(),
        }
    }

    #[test]
    fn the_same_bytes_have_the_same_version() {
        let a = CachedResource::new(any(b"one"));
        assert_eq!(a.version, CachedResource::new(any(b"one")).version);
        assert_ne!(a.version, CachedResource::new(any(b"two")).version);
    }

    #[test]
    fn a_set_replaces_one_type_whole_and_wakes_waiters() {
        let cache = ResourceCache::new();
        let mut changed = cache.changed();
        cache.set(
            ResourceType::Cluster,
            vec![("a".into(), any(b"1")), ("b".into(), any(b"2"))],
        );
        cache.set(ResourceType::LoadAssignment, vec![("a".into(), any(b"3"))]);
        assert!(changed.has_changed().unwrap());
        changed.mark_unchanged();

        cache.set(ResourceType::Cluster, vec![("c".into(), any(b"3"))]);
        let now = cache.load();
        let names: Vec<_> = now.resources(ResourceType::Cluster).keys().collect();
        assert_eq!(names, ["c"]);
        assert_eq!(now.resources(ResourceType::LoadAssignment).len(), 1);
        assert!(changed.has_changed().unwrap());
    }

    #[test]
    fn setting_the_same_content_is_no_change() {
        let cache = ResourceCache::new();
        cache.set(ResourceType::Listener, vec![("l".into(), any(b"1"))]);
        let mut changed = cache.changed();
        cache.set(ResourceType::Listener, vec![("l".into(), any(b"1"))]);
        assert!(!changed.has_changed().unwrap());
        changed.mark_unchanged();
    }

    #[test]
    fn set_versions_follow_content() {
        let (a, v1, v2) = ("a".to_owned(), "1".to_owned(), "2".to_owned());
        assert_eq!(set_version([(&a, &v1)]), set_version([(&a, &v1)]));
        assert_ne!(set_version([(&a, &v1)]), set_version([(&a, &v2)]));
        assert_ne!(set_version([(&a, &v1)]), set_version([]));
    }
}
