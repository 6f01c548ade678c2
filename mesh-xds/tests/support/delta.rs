//! The test server's delta stream: per type, the names subscribed and the
//! version of every resource sent; it sends what changed among the names
//! subscribed and removes what stopped being served.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};
use tokio::sync::{mpsc, watch};
use tonic::{Status, Streaming};

use super::{Recorded, Shared};

/// What one delta stream subscribed to for one type, and was sent.
#[derive(Default)]
struct Subscription {
    names: BTreeSet<String>,
    /// Name → the version the client has, sent or announced.
    sent: BTreeMap<String, String>,
}

pub(super) struct DeltaAdsStream {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Result<DeltaDiscoveryResponse, Status>>,
    subscriptions: BTreeMap<String, Subscription>,
    nonce: u64,
}

/// A resource's version: a hash of its bytes, so that serving the same
/// bytes again is no change.
fn version_of(bytes: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

impl DeltaAdsStream {
    pub(super) fn new(
        shared: Arc<Shared>,
        tx: mpsc::UnboundedSender<Result<DeltaDiscoveryResponse, Status>>,
    ) -> Self {
        Self {
            shared,
            tx,
            subscriptions: BTreeMap::new(),
            nonce: 0,
        }
    }

    pub(super) async fn run(
        mut self,
        mut incoming: Streaming<DeltaDiscoveryRequest>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut resources = self.shared.resources.subscribe();
        loop {
            tokio::select! {
                request = incoming.message() => match request {
                    Ok(Some(request)) => self.request(request),
                    Ok(None) | Err(_) => return,
                },
                changed = resources.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let urls: Vec<String> = self.subscriptions.keys().cloned().collect();
                    for url in urls {
                        self.respond(&url);
                    }
                }
                _ = stop.wait_for(|stop| *stop) => {
                    let _ = self.tx.send(Err(Status::unavailable("server stopping")));
                    return;
                }
            }
        }
    }

    fn request(&mut self, request: DeltaDiscoveryRequest) {
        self.shared.requests.send_modify(|all| {
            all.push(Recorded {
                type_url: request.type_url.clone(),
                nonce: request.response_nonce.clone(),
                names: request.resource_names_subscribe.clone(),
                unsubscribed: request.resource_names_unsubscribe.clone(),
                initial_versions: request
                    .initial_resource_versions
                    .clone()
                    .into_iter()
                    .collect(),
                error: request.error_detail.as_ref().map(|s| s.message.clone()),
                ..Recorded::default()
            })
        });
        let subscription = self
            .subscriptions
            .entry(request.type_url.clone())
            .or_default();
        subscription
            .sent
            .extend(request.initial_resource_versions.clone());
        subscription
            .names
            .extend(request.resource_names_subscribe.iter().cloned());
        for name in &request.resource_names_unsubscribe {
            subscription.names.remove(name);
            subscription.sent.remove(name);
        }
        self.respond(&request.type_url);
    }

    /// Sends the subscribed resources of `type_url` the client does not
    /// have at their served version, and removes those it has that are no
    /// longer served; nothing if nothing changed.
    fn respond(&mut self, type_url: &str) {
        let served = self
            .shared
            .resources
            .borrow()
            .get(type_url)
            .cloned()
            .unwrap_or_default();
        let subscription = self.subscriptions.get_mut(type_url).unwrap();
        let mut resources = Vec::new();
        for r in &served.resources {
            if !subscription.names.contains(&r.name) {
                continue;
            }
            let version = version_of(&r.any.value);
            if subscription.sent.get(&r.name) != Some(&version) {
                subscription.sent.insert(r.name.clone(), version.clone());
                resources.push(Resource {
                    name: r.name.clone(),
                    version,
                    resource: Some(r.any.clone()),
                    ..Resource::default()
                });
            }
        }
        let removed_resources: Vec<String> = subscription
            .sent
            .keys()
            .filter(|name| !served.resources.iter().any(|r| &r.name == *name))
            .cloned()
            .collect();
        for name in &removed_resources {
            subscription.sent.remove(name);
        }
        if resources.is_empty() && removed_resources.is_empty() {
            return;
        }
        self.nonce += 1;
        let _ = self.tx.send(Ok(DeltaDiscoveryResponse {
            system_version_info: served.version.to_string(),
            resources,
            type_url: type_url.to_owned(),
            removed_resources,
            nonce: self.nonce.to_string(),
            ..DeltaDiscoveryResponse::default()
        }));
    }
}
