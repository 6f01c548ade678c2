//! One delta stream (`DeltaAggregatedResources`): per type, the version
//! of every resource the client has; it sends only what changed among the
//! names subscribed and removes what stopped being served.
//!
//! A NACKed resource counts as sent: it goes again only once it changes.
//! Unlike state of the world, a request with a stale nonce still changes
//! the subscription, since its names are changes, not a whole list.

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};
use tokio::sync::mpsc;
use tonic::Status;

use super::cache::{ResourceCache, set_version};
use super::clients::ClientGuard;
use super::subscription::Subscription;
use super::{Closed, Served};
use crate::resource::ResourceType;
use envoy_types::pb::envoy::config::core::v3::Node;

/// One stream's state, owned by its task.
pub(super) struct DeltaStream {
    served: Served,
    client: ClientGuard,
    tx: mpsc::Sender<Result<DeltaDiscoveryResponse, Status>>,
    types: BTreeMap<ResourceType, TypeState>,
    sent_count: u64,
}

#[derive(Default)]
struct TypeState {
    subscription: Subscription,
    /// Name → the version the client has, sent or announced.
    known: BTreeMap<String, String>,
    /// The nonce and version of the last response sent.
    last: Option<(String, String)>,
    /// Names asked for that the cache does not hold, which the client
    /// was told are removed (so it need not wait out a timer).
    told_absent: BTreeSet<String>,
}

impl DeltaStream {
    pub(super) fn new(
        served: Served,
        mut client: ClientGuard,
        tx: mpsc::Sender<Result<DeltaDiscoveryResponse, Status>>,
    ) -> Self {
        client.node(&served.caller.node.id);
        Self {
            served,
            client,
            tx,
            types: BTreeMap::new(),
            sent_count: 0,
        }
    }

    async fn handle(&mut self, request: DeltaDiscoveryRequest) -> Result<(), Closed> {
        let Some(kind) = ResourceType::from_type_url(&request.type_url) else {
            tracing::debug!(type_url = %request.type_url, "ignoring a request for a type not served");
            return Ok(());
        };
        self.client.asked(kind);
        let first = !self.types.contains_key(&kind);
        let state = self.types.entry(kind).or_default();
        if !request.response_nonce.is_empty() {
            match &state.last {
                Some((nonce, version)) if *nonce == request.response_nonce => {
                    let error = request.error_detail.as_ref();
                    self.client.answered(kind, nonce, version, error);
                }
                // Subscription changes still count: they are deltas.
                _ => tracing::debug!(%kind, nonce = %request.response_nonce, "a stale nonce"),
            }
        }
        if first {
            state.known.extend(request.initial_resource_versions);
        }
        state.subscription.apply(
            first,
            &request.resource_names_subscribe,
            &request.resource_names_unsubscribe,
        );
        let subscription = &state.subscription;
        state.known.retain(|name, _| subscription.wants(name));
        let subscribed = self.types.values().map(|t| t.subscription.len()).sum();
        if let Err(refused) = self.served.within_limit(subscribed) {
            return Err(super::end(&self.tx, refused).await);
        }
        self.served
            .requested(kind, &request.resource_names_subscribe);
        self.send_changes(kind).await
    }

    /// Sends the subscribed resources of `kind` the client lacks at their
    /// current version, and removes those it has that are no longer
    /// served; nothing when nothing changed.
    async fn send_changes(&mut self, kind: ResourceType) -> Result<(), Closed> {
        let snapshot = self.served.cache.load();
        let served = snapshot.resources(kind);
        let Some(state) = self.types.get_mut(&kind) else {
            return Ok(());
        };
        let mut resources = Vec::new();
        for (name, cached) in served {
            if !state.subscription.wants(name) || state.known.get(name) == Some(&cached.version) {
                continue;
            }
            state.known.insert(name.clone(), cached.version.clone());
            resources.push(Resource {
                name: name.clone(),
                version: cached.version.clone(),
                resource: Some(cached.any.clone()),
                ..Resource::default()
            });
        }
        let mut removed_resources: Vec<String> = state
            .known
            .keys()
            .filter(|name| !served.contains_key(*name))
            .cloned()
            .collect();
        // A name asked for and never served: tell the client at once, as
        // a removal of something it never had (it marks it missing).
        state
            .told_absent
            .retain(|name| state.subscription.wants(name) && !served.contains_key(name));
        let absent: Vec<String> = state
            .subscription
            .names()
            .filter(|name| {
                !served.contains_key(*name)
                    && !state.known.contains_key(*name)
                    && !state.told_absent.contains(*name)
            })
            .map(str::to_owned)
            .collect();
        state.told_absent.extend(absent.iter().cloned());
        removed_resources.extend(absent);
        // The first request of a type is always answered, so the client
        // has something to ACK even when there is nothing to send.
        if resources.is_empty() && removed_resources.is_empty() && state.last.is_some() {
            return Ok(());
        }
        for name in &removed_resources {
            state.known.remove(name);
        }
        self.sent_count += 1;
        let nonce = format!("{}-{}", self.client.stream(), self.sent_count);
        let version = set_version(&state.known);
        state.last = Some((nonce.clone(), version.clone()));
        let response = DeltaDiscoveryResponse {
            system_version_info: version,
            resources,
            type_url: kind.type_url().to_owned(),
            removed_resources,
            nonce,
            ..DeltaDiscoveryResponse::default()
        };
        self.tx.send(Ok(response)).await.map_err(|_| Closed)
    }
}

impl super::AdsStream for DeltaStream {
    type Request = DeltaDiscoveryRequest;

    fn node(request: &DeltaDiscoveryRequest) -> Option<&Node> {
        request.node.as_ref()
    }

    fn cache(&self) -> &ResourceCache {
        &self.served.cache
    }

    fn id(&self) -> u64 {
        self.client.stream()
    }

    async fn request(&mut self, request: DeltaDiscoveryRequest) -> Result<(), Closed> {
        self.handle(request).await
    }

    fn asked_for(&self, kind: ResourceType) -> bool {
        self.types.contains_key(&kind)
    }

    async fn respond(&mut self, kind: ResourceType) -> Result<(), Closed> {
        self.send_changes(kind).await
    }
}
