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

/// The count of a queue's records lost, shared by both its ends.
#[derive(Clone, Debug, Default)]
struct Lost(Arc<AtomicU64>);

impl Lost {
    /// Counts `n` more records lost.
    fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The receiving end's own losses: counted with the queue's, and whether
/// it is failing now.
#[derive(Debug)]
pub(crate) struct Losses {
    lost: Lost,
    failing: bool,
}

impl Losses {
    /// Handling `n` records came to `outcome`: counts them lost if it
    /// failed, and hands back the error when handling has just started
    /// failing (what is worth a warning; a failure that goes on is not
    /// warned of again).
    pub(crate) fn outcome<E>(&mut self, n: usize, outcome: Result<(), E>) -> Option<E> {
        match outcome {
            Ok(()) => {
                self.failing = false;
                None
            }
            Err(error) => {
                self.lost.add(n);
                (!std::mem::replace(&mut self.failing, true)).then_some(error)
            }
        }
    }
}

impl<T> Lossy<T> {
    /// A queue of at most `capacity` records (at least one), its
    /// receiving end and that end's record of its own losses.
    pub(crate) fn channel(capacity: usize) -> (Self, mpsc::Receiver<T>, Losses) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let lost = Lost::default();
        let losses = Losses {
            lost: lost.clone(),
            failing: false,
        };
        (Self { tx, lost }, rx, losses)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_and_warned_of_when_they_start() {
        let (queue, _rx, mut losses) = Lossy::<()>::channel(1);
        let warned: Vec<bool> = [Err("down"), Err("down"), Ok(()), Err("down")]
            .into_iter()
            .map(|outcome| losses.outcome(2, outcome).is_some())
            .collect();
        assert_eq!(warned, [true, false, false, true]);
        assert_eq!(queue.lost(), 6);
    }
}
