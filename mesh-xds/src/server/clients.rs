//! The streams connected to the server, as plain values: who, since when,
//! and per type the last version ACKed and the last NACK.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use envoy_types::pb::google::rpc::Status as RpcStatus;
use mesh_core::security::ClientIdentity;

use crate::resource::{Protocol, ResourceType};

/// One connected stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientStatus {
    /// The server's number for the stream, unique while it runs.
    pub stream: u64,
    /// The node id of the stream's first request that named one.
    pub node_id: String,
    /// The SPIFFE id of the client's certificate, over mutual TLS.
    pub identity: Option<String>,
    /// State of the world or delta.
    pub protocol: Protocol,
    /// When the stream opened.
    pub connected_since: SystemTime,
    /// Per type the client asked for.
    pub types: BTreeMap<ResourceType, TypeStatus>,
}

/// What one stream did with one type's responses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeStatus {
    /// The `version_info` of the last response the client ACKed.
    pub acked_version: Option<String>,
    /// The last response the client rejected.
    pub last_nack: Option<Nack>,
}

/// A rejected response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nack {
    /// The nonce of the response rejected.
    pub nonce: String,
    /// The version of the response rejected.
    pub version: String,
    /// The client's reason, its `error_detail.message`.
    pub message: String,
}

/// The registry of streams, shared by the server and its streams.
#[derive(Clone, Debug, Default)]
pub(super) struct Clients {
    streams: Arc<Mutex<BTreeMap<u64, ClientStatus>>>,
}

impl Clients {
    /// Records a new stream, unless `max` are recorded; it is forgotten
    /// when the guard drops.
    pub(super) fn connect(
        &self,
        stream: u64,
        protocol: Protocol,
        max: usize,
    ) -> Option<ClientGuard> {
        let mut streams = self.lock();
        if streams.len() >= max {
            return None;
        }
        streams.insert(
            stream,
            ClientStatus {
                stream,
                node_id: String::new(),
                identity: None,
                protocol,
                connected_since: SystemTime::now(),
                types: BTreeMap::new(),
            },
        );
        drop(streams);
        Some(ClientGuard {
            clients: self.clone(),
            stream,
            node_id: String::new(),
        })
    }

    /// Every stream connected now, oldest first.
    pub(super) fn all(&self) -> Vec<ClientStatus> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, ClientStatus>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One stream's handle on its record.
#[derive(Debug)]
pub(super) struct ClientGuard {
    clients: Clients,
    stream: u64,
    /// As recorded, for logs: requests after the first rarely repeat it.
    node_id: String,
}

impl ClientGuard {
    /// The stream's number.
    pub(super) fn stream(&self) -> u64 {
        self.stream
    }

    /// The identity of the client of `request`, if it proved one, noted
    /// in the record.
    pub(super) fn identity<T>(&mut self, request: &tonic::Request<T>) -> Option<ClientIdentity> {
        let identity = request.extensions().get::<ClientIdentity>().cloned();
        if let (Some(id), Some(c)) = (&identity, self.clients.lock().get_mut(&self.stream)) {
            c.identity = Some(id.0.to_string());
        }
        identity
    }

    /// Notes the node id, the first time a request names one.
    pub(super) fn node(&mut self, node_id: &str) {
        if !self.node_id.is_empty() || node_id.is_empty() {
            return;
        }
        self.node_id = node_id.to_owned();
        if let Some(c) = self.clients.lock().get_mut(&self.stream) {
            c.node_id = node_id.to_owned();
        }
    }

    /// Notes that the client asked for `kind`.
    pub(super) fn asked(&self, kind: ResourceType) {
        self.update(kind, |_| {});
    }

    /// Notes the client's answer to the response of `kind` it was sent
    /// with `nonce` and `version`: an ACK, or, with `error`, a NACK, which
    /// is also logged.
    pub(super) fn answered(
        &self,
        kind: ResourceType,
        nonce: &str,
        version: &str,
        error: Option<&RpcStatus>,
    ) {
        let Some(error) = error else {
            self.update(kind, |t| t.acked_version = Some(version.to_owned()));
            return;
        };
        let nack = Nack {
            nonce: nonce.to_owned(),
            version: version.to_owned(),
            message: error.message.clone(),
        };
        tracing::warn!(
            node = %self.node_id,
            %kind,
            nonce = %nack.nonce,
            version = %nack.version,
            message = %nack.message,
            "xDS client rejected a response"
        );
        self.update(kind, |t| t.last_nack = Some(nack));
    }

    fn update(&self, kind: ResourceType, f: impl FnOnce(&mut TypeStatus)) {
        if let Some(c) = self.clients.lock().get_mut(&self.stream) {
            f(c.types.entry(kind).or_default());
        }
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.clients.lock().remove(&self.stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_listed_until_its_guard_drops() {
        let clients = Clients::default();
        let mut guard = clients.connect(7, Protocol::Delta, 1).unwrap();
        guard.node("");
        guard.node("node-a");
        guard.node("node-b");
        guard.answered(ResourceType::Cluster, "m", "v1", None);
        let bad = RpcStatus {
            message: "bad".into(),
            ..RpcStatus::default()
        };
        guard.answered(ResourceType::Cluster, "n", "v2", Some(&bad));
        let all = clients.all();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].node_id, "node-a");
        let cds = &all[0].types[&ResourceType::Cluster];
        assert_eq!(cds.acked_version.as_deref(), Some("v1"));
        assert_eq!(cds.last_nack.as_ref().unwrap().message, "bad");
        drop(guard);
        assert!(clients.all().is_empty());
    }
}
