//! [`Outbox`]: the requests one ADS stream has yet to send, bounded by
//! merging rather than by waiting.
//!
//! The client's task must never wait on the server (it also reads the
//! responses and serves the handles), and a server that stops reading
//! must not make requests pile up. So at most one request per resource
//! type waits: a newer one is merged into it, which loses nothing.
//!
//! - State of the world: each request carries the whole subscription and
//!   the latest version and nonce, so the newer replaces the older; a
//!   NACK stays a NACK when the newer names the same nonce, and an ACK or
//!   NACK of an older nonce is superseded by the answer to a newer one,
//!   as the protocol allows (the server learns only the latest).
//! - Delta: subscriptions and unsubscriptions are folded together in
//!   order, and the newer nonce (with its error detail) wins, as above.
//!
//! Either way the node and a delta stream's `initial_resource_versions`,
//! which only the first request of a stream carries, are kept.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use tokio::sync::Notify;

/// A request that can absorb a newer request of its type.
pub(super) trait Merge: Sized {
    /// Its resource type.
    fn type_url(&self) -> &str;
    /// `self` followed by `newer`, as one request.
    fn merge(&mut self, newer: Self);
}

impl Merge for DiscoveryRequest {
    fn type_url(&self) -> &str {
        &self.type_url
    }

    fn merge(&mut self, mut newer: Self) {
        if newer.node.is_none() {
            newer.node = self.node.take();
        }
        if newer.response_nonce.is_empty() {
            newer.response_nonce = std::mem::take(&mut self.response_nonce);
        }
        // A subscription change after a NACK carries the NACKed nonce
        // again: the NACK still stands.
        if newer.response_nonce == self.response_nonce && newer.error_detail.is_none() {
            newer.error_detail = self.error_detail.take();
        }
        *self = newer;
    }
}

impl Merge for DeltaDiscoveryRequest {
    fn type_url(&self) -> &str {
        &self.type_url
    }

    fn merge(&mut self, newer: Self) {
        if self.node.is_none() {
            self.node = newer.node;
        }
        for name in newer.resource_names_subscribe {
            self.resource_names_unsubscribe.retain(|n| *n != name);
            if !self.resource_names_subscribe.contains(&name) {
                self.resource_names_subscribe.push(name);
            }
        }
        for name in newer.resource_names_unsubscribe {
            self.resource_names_subscribe.retain(|n| *n != name);
            if !self.resource_names_unsubscribe.contains(&name) {
                self.resource_names_unsubscribe.push(name);
            }
        }
        self.initial_resource_versions
            .extend(newer.initial_resource_versions);
        if !newer.response_nonce.is_empty() {
            self.response_nonce = newer.response_nonce;
            self.error_detail = newer.error_detail;
        }
    }
}

struct Queue<R> {
    waiting: VecDeque<R>,
    /// The task is done with the stream: the sender side is gone.
    closed: bool,
}

struct Shared<R> {
    queue: Mutex<Queue<R>>,
    ready: Notify,
}

impl<R> Shared<R> {
    fn lock(&self) -> MutexGuard<'_, Queue<R>> {
        // A queue of requests holds no invariant a panic could break.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The task's side: requests go in, merged per type. Dropping it ends the
/// stream of requests once the last waiting one has gone out.
pub(super) struct Outbox<R> {
    shared: Arc<Shared<R>>,
}

impl<R: Merge> Outbox<R> {
    /// An outbox and the stream of its requests, for the gRPC call.
    pub(super) fn new() -> (Self, impl futures_util::Stream<Item = R> + Send + 'static)
    where
        R: Send + 'static,
    {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                waiting: VecDeque::new(),
                closed: false,
            }),
            ready: Notify::new(),
        });
        let outgoing = futures_util::stream::unfold(shared.clone(), |shared| async move {
            loop {
                let next = {
                    let mut queue = shared.lock();
                    match queue.waiting.pop_front() {
                        Some(request) => Some(Some(request)),
                        None if queue.closed => Some(None),
                        None => None,
                    }
                };
                match next {
                    Some(request) => return request.map(|r| (r, shared)),
                    // A push since the check left a permit: this returns at once.
                    None => shared.ready.notified().await,
                }
            }
        });
        (Self { shared }, outgoing)
    }

    /// Queues `request`, merged into the waiting one of its type if any.
    pub(super) fn push(&self, request: R) {
        let mut queue = self.shared.lock();
        match queue
            .waiting
            .iter_mut()
            .find(|r| r.type_url() == request.type_url())
        {
            Some(waiting) => waiting.merge(request),
            None => queue.waiting.push_back(request),
        }
        drop(queue);
        self.shared.ready.notify_one();
    }

    /// How many requests wait.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.shared.lock().waiting.len()
    }
}

impl<R> Drop for Outbox<R> {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::Node;
    use envoy_types::pb::google::rpc::Status;
    use futures_util::StreamExt;

    use super::*;

    fn sotw(type_url: &str, nonce: &str, names: &[&str]) -> DiscoveryRequest {
        DiscoveryRequest {
            type_url: type_url.into(),
            response_nonce: nonce.into(),
            resource_names: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        }
    }

    fn delta(type_url: &str, nonce: &str, sub: &[&str], unsub: &[&str]) -> DeltaDiscoveryRequest {
        let names = |l: &[&str]| l.iter().map(|n| n.to_string()).collect();
        DeltaDiscoveryRequest {
            type_url: type_url.into(),
            response_nonce: nonce.into(),
            resource_names_subscribe: names(sub),
            resource_names_unsubscribe: names(unsub),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_server_that_does_not_read_leaves_one_request_per_type() {
        let (outbox, outgoing) = Outbox::new();
        let first = DiscoveryRequest {
            node: Some(Node {
                id: "n".into(),
                ..Default::default()
            }),
            ..sotw("lds", "", &["a"])
        };
        outbox.push(first);
        for n in 0..10_000 {
            let nonce = format!("{n}");
            outbox.push(sotw("lds", &nonce, &["a", "b"]));
            outbox.push(sotw("cds", &nonce, &["c"]));
        }
        assert_eq!(outbox.waiting(), 2);
        // A subscription change with no nonce keeps the last one.
        outbox.push(sotw("cds", "", &["c", "d"]));
        // A NACK, then a subscription change naming the same nonce: still
        // a NACK.
        outbox.push(DiscoveryRequest {
            error_detail: Some(Status {
                message: "bad".into(),
                ..Default::default()
            }),
            ..sotw("lds", "10000", &["a", "b"])
        });
        outbox.push(sotw("lds", "10000", &["a"]));
        drop(outbox);
        let sent: Vec<DiscoveryRequest> = outgoing.collect().await;
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].type_url, "lds");
        assert_eq!(sent[0].node.as_ref().unwrap().id, "n");
        assert_eq!(sent[0].response_nonce, "10000");
        assert_eq!(sent[0].resource_names, ["a"]);
        assert_eq!(sent[0].error_detail.as_ref().unwrap().message, "bad");
        assert_eq!(sent[1].response_nonce, "9999");
        assert!(sent[1].error_detail.is_none());
        assert_eq!(sent[1].resource_names, ["c", "d"]);
    }

    #[tokio::test]
    async fn delta_changes_fold_in_order() {
        let (outbox, outgoing) = Outbox::new();
        outbox.push(delta("eds", "", &["a", "b"], &["x"]));
        let nack = DeltaDiscoveryRequest {
            error_detail: Some(Status {
                message: "bad".into(),
                ..Default::default()
            }),
            ..delta("eds", "7", &["x"], &["a"])
        };
        outbox.push(nack);
        outbox.push(delta("eds", "", &["c"], &["b"]));
        drop(outbox);
        let sent: Vec<DeltaDiscoveryRequest> = outgoing.collect().await;
        let [merged] = sent.as_slice() else {
            panic!("{sent:?}")
        };
        assert_eq!(merged.resource_names_subscribe, ["x", "c"]);
        assert_eq!(merged.resource_names_unsubscribe, ["a", "b"]);
        assert_eq!(merged.response_nonce, "7");
        assert_eq!(merged.error_detail.as_ref().unwrap().message, "bad");
    }

    #[tokio::test]
    async fn requests_go_out_as_they_come_until_the_outbox_is_dropped() {
        let (outbox, outgoing) = Outbox::new();
        let mut outgoing = Box::pin(outgoing);
        outbox.push(sotw("lds", "1", &[]));
        assert_eq!(outgoing.next().await.unwrap().response_nonce, "1");
        let next = tokio::spawn(async move { outgoing.next().await.map(|r| r.response_nonce) });
        tokio::task::yield_now().await;
        outbox.push(sotw("lds", "2", &[]));
        assert_eq!(next.await.unwrap().as_deref(), Some("2"));
    }
}
