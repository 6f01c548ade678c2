//! [`AdsStats`]: what an ADS client has done, as counters its handles
//! read: responses ACKed and NACKed per type, streams started, and when a
//! response was last accepted.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::ResourceType;

/// The counters of one ADS client; shared by its task and its handles.
#[derive(Debug, Default)]
pub struct AdsStats {
    acks: [AtomicU64; 5],
    nacks: [AtomicU64; 5],
    streams: AtomicU64,
    last_accepted: Mutex<Option<SystemTime>>,
}

/// The index of `kind` among the types a client reads.
fn slot(kind: ResourceType) -> Option<usize> {
    ResourceType::ALL.iter().position(|k| *k == kind)
}

impl AdsStats {
    pub(super) fn acked(&self, kind: ResourceType) {
        if let Some(i) = slot(kind) {
            self.acks[i].fetch_add(1, Ordering::Relaxed);
        }
        *self
            .last_accepted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(SystemTime::now());
    }

    pub(super) fn nacked(&self, kind: ResourceType) {
        if let Some(i) = slot(kind) {
            self.nacks[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn stream_started(&self) {
        self.streams.fetch_add(1, Ordering::Relaxed);
    }

    /// Responses of `kind` accepted whole (ACKed).
    pub fn acks(&self, kind: ResourceType) -> u64 {
        slot(kind).map_or(0, |i| self.acks[i].load(Ordering::Relaxed))
    }

    /// Responses of `kind` with a resource rejected (NACKed).
    pub fn nacks(&self, kind: ResourceType) -> u64 {
        slot(kind).map_or(0, |i| self.nacks[i].load(Ordering::Relaxed))
    }

    /// Streams started to the control plane: the first, and each
    /// reconnection.
    pub fn streams(&self) -> u64 {
        self.streams.load(Ordering::Relaxed)
    }

    /// When a response was last accepted whole.
    pub fn last_accepted(&self) -> Option<SystemTime> {
        *self
            .last_accepted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
