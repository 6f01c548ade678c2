//! One state-of-the-world stream (`StreamAggregatedResources`): per type,
//! a response whenever the subscribed resources differ from what the
//! stream was last sent, and the ACK/NACK bookkeeping.
//!
//! A NACKed response is not sent again: the next goes out once the
//! subscribed resources change.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use tokio::sync::mpsc;
use tonic::Status;

use super::cache::{ResourceCache, set_version};
use super::clients::ClientGuard;
use super::subscription::Subscription;
use super::{Closed, Served};
use crate::resource::ResourceType;
use envoy_types::pb::envoy::config::core::v3::Node;

/// One stream's state, owned by its task.
pub(super) struct SotwStream {
    served: Served,
    client: ClientGuard,
    tx: mpsc::Sender<Result<DiscoveryResponse, Status>>,
    types: BTreeMap<ResourceType, TypeState>,
    sent_count: u64,
}

#[derive(Default)]
struct TypeState {
    subscription: Subscription,
    /// The last response sent for the type, if any.
    sent: Option<Sent>,
}

struct Sent {
    /// Name → version of every resource the response carried.
    resources: BTreeMap<String, String>,
    version: String,
    nonce: String,
}

impl SotwStream {
    pub(super) fn new(
        served: Served,
        mut client: ClientGuard,
        tx: mpsc::Sender<Result<DiscoveryResponse, Status>>,
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

    async fn handle(&mut self, request: DiscoveryRequest) -> Result<(), Closed> {
        let Some(kind) = ResourceType::from_type_url(&request.type_url) else {
            tracing::debug!(type_url = %request.type_url, "ignoring a request for a type not served");
            return Ok(());
        };
        self.client.asked(kind);
        let state = self.types.entry(kind).or_default();
        // Before anything was sent on this stream, no nonce can be its.
        if let Some(sent) = &state.sent
            && !request.response_nonce.is_empty()
        {
            if request.response_nonce != sent.nonce {
                tracing::debug!(%kind, nonce = %request.response_nonce, "ignoring a request with a stale nonce");
                return Ok(());
            }
            let error = request.error_detail.as_ref();
            self.client
                .answered(kind, &sent.nonce, &sent.version, error);
        }
        let before = state.subscription.clone();
        state.subscription.replace(&request.resource_names);
        if state.sent.is_some() && state.subscription == before {
            return Ok(());
        }
        let added: Vec<String> = state.subscription.added_since(&before).collect();
        let subscribed = self.types.values().map(|t| t.subscription.len()).sum();
        if let Err(refused) = self.served.within_limit(subscribed) {
            return Err(super::end(&self.tx, refused).await);
        }
        self.served.requested(kind, &added);
        self.send_changes(kind).await
    }

    /// Sends the subscribed resources of `kind`, unless they are exactly
    /// what was last sent.
    async fn send_changes(&mut self, kind: ResourceType) -> Result<(), Closed> {
        let snapshot = self.served.cache.load();
        let Some(state) = self.types.get_mut(&kind) else {
            return Ok(());
        };
        let wanted: Vec<_> = snapshot
            .resources(kind)
            .iter()
            .filter(|(name, _)| state.subscription.wants(name))
            .collect();
        let versions: BTreeMap<String, String> = wanted
            .iter()
            .map(|(name, r)| ((*name).clone(), r.version.clone()))
            .collect();
        if state.sent.as_ref().is_some_and(|s| s.resources == versions) {
            return Ok(());
        }
        self.sent_count += 1;
        let nonce = format!("{}-{}", self.client.stream(), self.sent_count);
        let version = set_version(&versions);
        let response = DiscoveryResponse {
            version_info: version.clone(),
            resources: wanted.iter().map(|(_, r)| r.any.clone()).collect(),
            type_url: kind.type_url().to_owned(),
            nonce: nonce.clone(),
            ..DiscoveryResponse::default()
        };
        state.sent = Some(Sent {
            resources: versions,
            version,
            nonce,
        });
        self.tx.send(Ok(response)).await.map_err(|_| Closed)
    }
}

impl super::AdsStream for SotwStream {
    type Request = DiscoveryRequest;

    fn node(request: &DiscoveryRequest) -> Option<&Node> {
        request.node.as_ref()
    }

    fn cache(&self) -> &ResourceCache {
        &self.served.cache
    }

    fn id(&self) -> u64 {
        self.client.stream()
    }

    async fn request(&mut self, request: DiscoveryRequest) -> Result<(), Closed> {
        self.handle(request).await
    }

    fn asked_for(&self, kind: ResourceType) -> bool {
        self.types.contains_key(&kind)
    }

    async fn respond(&mut self, kind: ResourceType) -> Result<(), Closed> {
        self.send_changes(kind).await
    }
}
