//! One resource type's share of an ADS stream: what is subscribed, the
//! last accepted version and nonce, the accepted resources, and what was
//! rejected; and how a state-of-the-world response is applied to it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use envoy_types::pb::envoy::config::cluster::v3 as cds;
use envoy_types::pb::envoy::config::endpoint::v3 as eds;
use envoy_types::pb::envoy::config::listener::v3 as lds;
use envoy_types::pb::envoy::config::route::v3 as rds;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3 as sds;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
use envoy_types::pb::google::protobuf::Any;
use imbl::OrdMap;
use prost::{Message, Name};
use xxhash_rust::xxh64::xxh64;

use super::{Change, Changed, ResourceType};
use crate::resource::secret::redacted;
use crate::resource::{
    ResourceError, XdsCluster, XdsListener, XdsLoadAssignment, XdsRouteConfig, XdsSecret,
};

/// A resource type the ADS client reads: its proto, where the proto keeps
/// its name, and its conversion.
pub(super) trait XdsResource: Sized {
    /// The proto packed in a response's `Any`s.
    type Proto: Message + Default + Name;
    /// Which type it is.
    const KIND: ResourceType;
    /// The resource's name, as subscriptions name it.
    fn name(proto: &Self::Proto) -> &str;
    /// The proto converted, or why not.
    fn convert(proto: &Self::Proto) -> Result<Self, ResourceError>;
    /// What is kept of it for `/config_dump` and CSDS: as it came.
    fn raw(any: &Any, _proto: &Self::Proto) -> Any {
        any.clone()
    }
}

impl XdsResource for XdsListener {
    type Proto = lds::Listener;
    const KIND: ResourceType = ResourceType::Listener;
    fn name(proto: &lds::Listener) -> &str {
        &proto.name
    }
    fn convert(proto: &lds::Listener) -> Result<Self, ResourceError> {
        Self::try_from(proto)
    }
}

impl XdsResource for XdsRouteConfig {
    type Proto = rds::RouteConfiguration;
    const KIND: ResourceType = ResourceType::RouteConfig;
    fn name(proto: &rds::RouteConfiguration) -> &str {
        &proto.name
    }
    fn convert(proto: &rds::RouteConfiguration) -> Result<Self, ResourceError> {
        Self::try_from(proto)
    }
}

impl XdsResource for XdsCluster {
    type Proto = cds::Cluster;
    const KIND: ResourceType = ResourceType::Cluster;
    fn name(proto: &cds::Cluster) -> &str {
        &proto.name
    }
    fn convert(proto: &cds::Cluster) -> Result<Self, ResourceError> {
        Self::try_from(proto)
    }
}

impl XdsResource for XdsSecret {
    type Proto = sds::Secret;
    const KIND: ResourceType = ResourceType::Secret;
    fn name(proto: &sds::Secret) -> &str {
        &proto.name
    }
    fn convert(proto: &sds::Secret) -> Result<Self, ResourceError> {
        Self::try_from(proto)
    }
    /// Without its private key.
    fn raw(any: &Any, proto: &sds::Secret) -> Any {
        Any {
            type_url: any.type_url.clone(),
            value: redacted(proto).encode_to_vec(),
        }
    }
}

impl XdsResource for XdsLoadAssignment {
    type Proto = eds::ClusterLoadAssignment;
    const KIND: ResourceType = ResourceType::LoadAssignment;
    fn name(proto: &eds::ClusterLoadAssignment) -> &str {
        &proto.cluster_name
    }
    fn convert(proto: &eds::ClusterLoadAssignment) -> Result<Self, ResourceError> {
        Self::try_from(proto)
    }
}

/// What is known of one subscribed name besides its accepted value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Watch {
    /// The server said it does not exist: left out of a full LDS or CDS
    /// response, or not sent before the timer fired.
    pub(super) does_not_exist: bool,
}

/// A subscribed resource's rejected copy: why, and when it came.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Nacked {
    pub(super) error: ResourceError,
    pub(super) at: Instant,
}

/// The part of a type's state that does not depend on the resource type.
///
/// Its maps, and the accepted resources beside it, are persistent: a copy
/// for a published view costs nothing, and a change to one name costs the
/// same however many there are.
#[derive(Clone, Debug, Default)]
pub(super) struct Common {
    /// The names asked for.
    pub(super) subscribed: OrdMap<String, Watch>,
    /// The names asked for on the current stream that nothing has been
    /// received for, with when: the start of each one's does-not-exist
    /// timer.
    pub(super) waiting: OrdMap<String, Instant>,
    /// The last version accepted whole (ACKed); empty before the first.
    pub(super) version: String,
    /// The nonce of the last response of this stream; empty before it.
    pub(super) nonce: String,
    /// When the last response was handled.
    pub(super) updated_at: Option<Instant>,
    /// Subscribed resources whose last copy was rejected, with why and
    /// when; the last accepted copy (if any) stays in use.
    pub(super) nacked: OrdMap<String, Nacked>,
    /// The text of the last NACK, until a response is accepted whole.
    pub(super) error: Option<String>,
    /// Delta only: the version of each accepted resource, as the server
    /// gave it.
    pub(super) versions: OrdMap<String, String>,
    /// Each accepted resource as it came (a secret without its private
    /// key), for `/config_dump` and CSDS.
    pub(super) raw: OrdMap<String, Arc<RawResource>>,
}

/// An accepted resource as the control plane sent it.
#[derive(Clone, Debug, PartialEq)]
pub struct RawResource {
    /// The resource, packed.
    pub any: Any,
    /// The version of the response it came in (state of the world; a
    /// delta resource's own version is in [`TypeSnapshot`]).
    pub version: String,
    /// When it was accepted.
    pub accepted_at: Instant,
}

/// A type's state, with its accepted resources by name.
#[derive(Clone, Debug)]
pub(super) struct TypeState<T> {
    pub(super) common: Common,
    pub(super) resources: OrdMap<String, Arc<T>>,
    /// A digest of the bytes each accepted resource came as: a copy sent
    /// again unchanged (state of the world sends every one each time) is
    /// neither decoded nor converted again, nor replaced, so it stays the
    /// same `Arc`.
    digests: Digests,
}

/// The digest of each accepted resource's bytes, both ways.
#[derive(Clone, Debug, Default)]
struct Digests {
    by_name: OrdMap<String, u64>,
    by_digest: OrdMap<u64, String>,
}

impl Digests {
    /// The resource held whose bytes have `digest`.
    fn name_of(&self, digest: u64) -> Option<&String> {
        self.by_digest.get(&digest)
    }

    fn insert(&mut self, name: String, digest: u64) {
        self.remove(&name);
        self.by_digest.insert(digest, name.clone());
        self.by_name.insert(name, digest);
    }

    fn remove(&mut self, name: &str) {
        if let Some(digest) = self.by_name.remove(name) {
            self.by_digest.remove(&digest);
        }
    }
}

impl<T> Default for TypeState<T> {
    fn default() -> Self {
        Self {
            common: Common::default(),
            resources: OrdMap::new(),
            digests: Digests::default(),
        }
    }
}

impl<T: XdsResource> TypeState<T> {
    /// Applies a response for this type (gRFC A46): every valid subscribed
    /// resource is taken, every invalid one keeps its last accepted copy,
    /// and with `delete_absent` (LDS and CDS, A53) an accepted resource the
    /// response leaves out is deleted. Returns the rejected resources.
    pub(super) fn apply(
        &mut self,
        response: &DiscoveryResponse,
        delete_absent: bool,
        now: Instant,
        changes: &mut Vec<Changed>,
    ) -> Vec<ResourceError> {
        let anys = response.resources.iter().map(Some);
        let (seen, rejected) = self.take(anys, &response.version_info, now, changes);
        if delete_absent {
            let absent: Vec<String> = self
                .resources
                .keys()
                .filter(|name| !seen.contains(*name))
                .cloned()
                .collect();
            for name in absent {
                self.delete(&name, changes);
            }
        }

        self.common
            .answered(&response.nonce, &response.version_info, &rejected, now);
        rejected
    }

    /// Decodes, checks and converts `anys` (gRFC A46), taking every valid
    /// subscribed resource and recording every rejected one; an absent
    /// `Any` (a delta resource without one) is rejected by its index.
    /// Returns the names the resources carried and the rejected ones.
    /// A resource taken is kept as it came, with `version` and `now`.
    pub(super) fn take<'a>(
        &mut self,
        anys: impl Iterator<Item = Option<&'a Any>>,
        version: &str,
        now: Instant,
        changes: &mut Vec<Changed>,
    ) -> (BTreeSet<String>, Vec<ResourceError>) {
        let type_name = T::Proto::NAME;
        let mut rejected = Vec::new();
        let mut seen = BTreeSet::new();
        let mut twice = BTreeSet::new();
        let mut valid = Vec::new();
        for (i, any) in anys.enumerate() {
            let by_index = |reason: String| ResourceError {
                type_name,
                resource: format!("resources[{i}]"),
                field: String::new(),
                reason,
            };
            let Some(any) = any else {
                rejected.push(by_index("no resource".into()));
                continue;
            };
            if any.type_url.rsplit('/').next() != Some(T::Proto::full_name().as_str()) {
                let reason = format!("a {} in a response for {}", any.type_url, T::KIND);
                rejected.push(by_index(reason));
                continue;
            }
            // The very bytes of a copy held: that resource, unchanged, with
            // nothing to decode or convert.
            let digest = xxh64(&any.value, 0);
            if let Some(name) = self.digests.name_of(digest) {
                if !seen.insert(name.clone()) {
                    twice.insert(name.clone());
                } else {
                    valid.push((name.clone(), None, digest));
                }
                continue;
            }
            let proto = match T::Proto::decode(any.value.as_slice()) {
                Ok(proto) => proto,
                Err(e) => {
                    rejected.push(by_index(format!("cannot decode: {e}")));
                    continue;
                }
            };
            let name = T::name(&proto);
            if name.is_empty() {
                rejected.push(by_index("no name".into()));
                continue;
            }
            if !self.common.subscribed.contains_key(name) {
                // Not asked for: gRPC ignores such resources, even invalid ones.
                continue;
            }
            if !seen.insert(name.to_owned()) {
                twice.insert(name.to_owned());
                continue;
            }
            match T::convert(&proto) {
                Ok(value) => {
                    valid.push((name.to_owned(), Some((value, T::raw(any, &proto))), digest))
                }
                Err(e) => rejected.push(e),
            }
        }
        for name in &twice {
            rejected.push(ResourceError {
                type_name,
                resource: name.clone(),
                field: String::new(),
                reason: "listed more than once in one response".into(),
            });
        }
        valid.retain(|(name, _, _)| !twice.contains(name));

        for (name, value, digest) in valid {
            // Persistent maps copy a path even to change nothing: ask first.
            if self.common.nacked.contains_key(&name) {
                self.common.nacked.remove(&name);
            }
            if self.common.waiting.contains_key(&name) {
                self.common.waiting.remove(&name);
            }
            if self.common.subscribed.get(&name) != Some(&Watch::default()) {
                self.common
                    .subscribed
                    .insert(name.clone(), Watch::default());
            }
            // `None`: the copy held, sent again.
            if let Some((value, any)) = value {
                let raw = RawResource {
                    any,
                    version: version.to_owned(),
                    accepted_at: now,
                };
                self.common.raw.insert(name.clone(), Arc::new(raw));
                self.resources.insert(name.clone(), Arc::new(value));
                self.digests.insert(name.clone(), digest);
                changes.push(Changed::new(T::KIND, name, Change::Updated));
            }
        }
        for error in &rejected {
            if self.common.subscribed.contains_key(&error.resource) {
                self.common.waiting.remove(&error.resource);
                let nacked = Nacked {
                    error: error.clone(),
                    at: now,
                };
                self.common.nacked.insert(error.resource.clone(), nacked);
            }
        }
        (seen, rejected)
    }

    /// Deletes the accepted resource `name`, as the server said it does
    /// not exist; whether there was one.
    pub(super) fn delete(&mut self, name: &str, changes: &mut Vec<Changed>) -> bool {
        self.common.versions.remove(name);
        self.common.raw.remove(name);
        self.digests.remove(name);
        if self.resources.remove(name).is_none() {
            return false;
        }
        self.common.nacked.remove(name);
        if let Some(watch) = self.common.subscribed.get_mut(name) {
            watch.does_not_exist = true;
        }
        changes.push(Changed::new(T::KIND, name.to_owned(), Change::DoesNotExist));
        true
    }

    /// Makes `wanted` the subscribed names: names no longer wanted lose
    /// their resources; new names wait from `waiting_since` (the time when
    /// a stream is up to carry the request). Returns whether the set
    /// changed.
    pub(super) fn resubscribe(
        &mut self,
        wanted: BTreeSet<String>,
        waiting_since: Option<Instant>,
        changes: &mut Vec<Changed>,
    ) -> bool {
        let common = &mut self.common;
        if common.subscribed.keys().eq(wanted.iter()) {
            return false;
        }
        let dropped: Vec<String> = common
            .subscribed
            .keys()
            .filter(|name| !wanted.contains(*name))
            .cloned()
            .collect();
        for name in dropped {
            common.subscribed.remove(&name);
            common.waiting.remove(&name);
            common.nacked.remove(&name);
            common.versions.remove(&name);
            common.raw.remove(&name);
            self.resources.remove(&name);
            self.digests.remove(&name);
            changes.push(Changed::new(T::KIND, name, Change::Unsubscribed));
        }
        for name in wanted {
            if common.subscribed.contains_key(&name) {
                continue;
            }
            if let Some(since) = waiting_since {
                common.waiting.insert(name.clone(), since);
            }
            common.subscribed.insert(name, Watch::default());
        }
        true
    }

    /// Marks `name` as not existing, as its does-not-exist timer fired.
    /// Whether it was waiting (subscribed, and nothing received).
    pub(super) fn mark_missing(&mut self, name: &str) -> bool {
        let Some(watch) = self.common.subscribed.get_mut(name) else {
            return false;
        };
        if self.resources.contains_key(name) || watch.does_not_exist {
            return false;
        }
        watch.does_not_exist = true;
        self.common.waiting.remove(name);
        true
    }

    /// Starts the does-not-exist timer of every name still waiting, on a
    /// new stream; `None` stops them all.
    pub(super) fn restart_timers(&mut self, now: Option<Instant>) {
        let common = &mut self.common;
        common.waiting = match now {
            None => OrdMap::new(),
            Some(now) => common
                .subscribed
                .iter()
                .filter(|(name, watch)| {
                    !(self.resources.contains_key(*name)
                        || watch.does_not_exist
                        || common.nacked.contains_key(*name))
                })
                .map(|(name, _)| (name.clone(), now))
                .collect(),
        };
    }
}

impl Common {
    /// Records a response of this stream, its `nonce`, and its `version`
    /// if nothing was rejected, else the NACK's text.
    pub(super) fn answered(
        &mut self,
        nonce: &str,
        version: &str,
        rejected: &[ResourceError],
        now: Instant,
    ) {
        self.nonce = nonce.to_owned();
        self.updated_at = Some(now);
        if rejected.is_empty() {
            self.version = version.to_owned();
            self.error = None;
        } else {
            let text = rejected
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            self.error = Some(text);
        }
    }

    /// The names still waiting, with since when.
    pub(super) fn waiting(&self) -> impl Iterator<Item = (&str, Instant)> {
        self.waiting
            .iter()
            .map(|(name, since)| (name.as_str(), *since))
    }
}
