//! [`Lossy`]: a bounded queue that never makes its sender wait. What does
//! not fit is dropped and counted, as is what its receiver fails to pass
//! on; access logs and span sinks put their records through one, so a
//! slow writer or collector costs records, never requests.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

/// The sending end; clones share the queue and the count of records lost.
pub(crate) struct Lossy<T> {
    tx: mpsc::Sender<T>,
    lost: Lost,
}

/// The count of a queue's records lost, for its receiving end to add to.
#[derive(Clone, Debug, Default)]
pub(crate) struct Lost(Arc<AtomicU64>);

impl Lost {
    /// Counts `n` more records lost.
    pub(crate) fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl<T> Lossy<T> {
    /// A queue of at most `capacity` records (at least one), its
    /// receiving end and the count that end adds its own losses to.
    pub(crate) fn channel(capacity: usize) -> (Self, mpsc::Receiver<T>, Lost) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let lost = Lost::default();
        (
            Self {
                tx,
                lost: lost.clone(),
            },
            rx,
            lost,
        )
    }

    /// Queues `record`; drops and counts it when the queue is full.
    pub(crate) fn send(&self, record: T) {
        if self.tx.try_send(record).is_err() {
            self.lost.add(1);
        }
    }

    /// How many records were lost: dropped for want of room, or counted
    /// by the receiving end.
    pub(crate) fn lost(&self) -> u64 {
        self.lost.0.load(Ordering::Relaxed)
    }
}

impl<T> Clone for Lossy<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            lost: self.lost.clone(),
        }
    }
}

impl<T> fmt::Debug for Lossy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lossy")
            .field("capacity", &self.tx.max_capacity())
            .field("lost", &self.lost())
            .finish()
    }
}
