//! [`ResourceCache`]: the resources the ADS server serves, by type and
//! name, each with a version that is a digest of its bytes.
//!
//! One set of resources, served to every node that
//! [`Snapshots`](super::Snapshots) gives it (a cache alone serves every
//! node). Each type is replaced whole by
//! [`ResourceCache::set`]; streams read the current [`CacheSnapshot`]
//! without a lock and wait on [`ResourceCache::changed`] for the next one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use envoy_types::pb::envoy::config::cluster::v3 as cds;
use envoy_types::pb::envoy::config::endpoint::v3 as eds;
use envoy_types::pb::envoy::config::listener::v3 as lds;
use envoy_types::pb::envoy::config::route::v3 as rds;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3 as sds;
use envoy_types::pb::google::protobuf::Any;
use tokio::sync::watch;
use xxhash_rust::xxh64::{Xxh64, xxh64};

use crate::resource::ResourceType;

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
    types: [Arc<TypeResources>; 5],
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
        self.set_all([(kind, resources)]);
    }

    /// As [`set`](Self::set) for several types at once: streams see all
    /// of the change or none of it, so new routes never arrive before the
    /// clusters they name.
    ///
    /// A resource equal to the one held (the same message, even if its
    /// bytes differ, as protobuf maps may be written in any order) keeps
    /// its version, so clients are not sent it again.
    pub fn set_all(&self, changes: impl IntoIterator<Item = (ResourceType, Vec<(String, Any)>)>) {
        let _guard = self
            .inner
            .write
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.inner.current.load_full();
        let mut next = CacheSnapshot::clone(&current);
        let mut changed = false;
        for (kind, resources) in changes {
            let held = current.resources(kind);
            let resources: TypeResources = resources
                .into_iter()
                .map(|(name, any)| {
                    let resource = match held.get(&name) {
                        Some(h) if same_message(kind, &h.any, &any) => h.clone(),
                        _ => CachedResource::new(any),
                    };
                    (name, resource)
                })
                .collect();
            if *held != resources {
                next.types[kind as usize] = Arc::new(resources);
                changed = true;
            }
        }
        if changed {
            self.inner.current.store(Arc::new(next));
            self.inner.generation.send_modify(|g| *g += 1);
        }
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

/// Whether `a` and `b` hold the same message of `kind`: the same bytes,
/// or bytes that decode to equal messages. Decoding drops fields this
/// build does not know, so bytes holding any (which then encode shorter
/// than they are) are never taken for one another.
fn same_message(kind: ResourceType, a: &Any, b: &Any) -> bool {
    fn equal<M: prost::Message + Default + PartialEq>(a: &[u8], b: &[u8]) -> bool {
        let whole = |bytes: &[u8]| {
            M::decode(bytes)
                .ok()
                .filter(|m| m.encoded_len() == bytes.len())
        };
        matches!((whole(a), whole(b)), (Some(a), Some(b)) if a == b)
    }
    if a.type_url != b.type_url {
        return false;
    }
    if a.value == b.value {
        return true;
    }
    let (a, b) = (a.value.as_slice(), b.value.as_slice());
    match kind {
        ResourceType::Listener => equal::<lds::Listener>(a, b),
        ResourceType::RouteConfig => equal::<rds::RouteConfiguration>(a, b),
        ResourceType::Cluster => equal::<cds::Cluster>(a, b),
        ResourceType::LoadAssignment => equal::<eds::ClusterLoadAssignment>(a, b),
        ResourceType::Secret => equal::<sds::Secret>(a, b),
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
    fn bytes_with_fields_this_build_does_not_know_are_not_taken_for_others() {
        use prost::Message;
        let known = cds::Cluster {
            name: "reviews".into(),
            ..Default::default()
        }
        .encode_to_vec();
        // Field 999, a varint, which no Cluster field is: dropped on decode.
        let unknown = [&known[..], &[0xb8, 0x3e, 0x01]].concat();
        assert!(cds::Cluster::decode(unknown.as_slice()).is_ok());
        assert!(!same_message(
            ResourceType::Cluster,
            &any(&known),
            &any(&unknown)
        ));
        assert!(same_message(
            ResourceType::Cluster,
            &any(&unknown),
            &any(&unknown)
        ));
    }

    #[test]
    fn set_versions_follow_content() {
        let (a, v1, v2) = ("a".to_owned(), "1".to_owned(), "2".to_owned());
        assert_eq!(set_version([(&a, &v1)]), set_version([(&a, &v1)]));
        assert_ne!(set_version([(&a, &v1)]), set_version([(&a, &v2)]));
        assert_ne!(set_version([(&a, &v1)]), set_version([]));
    }

    #[test]
    fn an_equal_message_in_other_bytes_keeps_its_version_and_wakes_no_one() {
        use prost::Message;
        let name = cds::Cluster {
            name: "reviews".into(),
            ..Default::default()
        }
        .encode_to_vec();
        let timeout = cds::Cluster {
            connect_timeout: Some(envoy_types::pb::google::protobuf::Duration {
                seconds: 2,
                nanos: 0,
            }),
            ..Default::default()
        }
        .encode_to_vec();
        // The same message, its fields written in two orders.
        let one = any(&[name.clone(), timeout.clone()].concat());
        let other = any(&[timeout, name].concat());
        assert_ne!(one.value, other.value);

        let cache = ResourceCache::new();
        cache.set(ResourceType::Cluster, vec![("reviews".into(), one)]);
        let version = cache.load().resources(ResourceType::Cluster)["reviews"]
            .version
            .clone();
        let mut changed = cache.changed();
        changed.borrow_and_update();
        cache.set(ResourceType::Cluster, vec![("reviews".into(), other)]);
        assert_eq!(
            cache.load().resources(ResourceType::Cluster)["reviews"].version,
            version
        );
        assert!(!changed.has_changed().unwrap());
    }
}
