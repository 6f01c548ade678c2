//! [`Wanted`]: the listeners the [`AdsHandle`](super::AdsHandle)s ask
//! for, shared with the client's task.
//!
//! Handles count their subscriptions here and mark the names whose count
//! went to or from zero; the task, woken, takes the marked names and
//! subscribes or unsubscribes each as its count now says. What is kept is
//! one count per listener asked for and one mark per name changed since
//! the task last looked: never a queue of every call, so handles cannot
//! make it grow faster than the set of names they want.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

/// The handles' subscriptions.
#[derive(Debug, Default)]
pub(super) struct Wanted {
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    counts: HashMap<String, usize>,
    marked: BTreeSet<String>,
    /// The last handle is gone.
    closed: bool,
}

/// What the task finds when woken.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Changes {
    /// Each listener whose subscription changed, and whether it is wanted.
    Listeners(Vec<(String, bool)>),
    /// The last handle is gone: the task stops.
    Closed,
}

impl Wanted {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Counts and marks hold no invariant a panic could break.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One more subscription to `name`.
    pub(super) fn subscribe(&self, name: String) {
        let mut state = self.lock();
        let count = state.counts.entry(name.clone()).or_default();
        *count += 1;
        if *count == 1 {
            state.marked.insert(name);
            drop(state);
            self.changed.notify_one();
        }
    }

    /// One subscription to `name` fewer; none is left alone.
    pub(super) fn unsubscribe(&self, name: &str) {
        let mut state = self.lock();
        let Some(count) = state.counts.get_mut(name) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            state.counts.remove(name);
            state.marked.insert(name.to_owned());
            drop(state);
            self.changed.notify_one();
        }
    }

    /// The last handle is gone.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_one();
    }

    /// Waits until something changed, and takes it.
    pub(super) async fn changes(&self) -> Changes {
        loop {
            let notified = self.changed.notified();
            {
                let mut state = self.lock();
                if state.closed {
                    return Changes::Closed;
                }
                if !state.marked.is_empty() {
                    let marked = std::mem::take(&mut state.marked);
                    let changes = marked
                        .into_iter()
                        .map(|name| {
                            let wanted = state.counts.contains_key(&name);
                            (name, wanted)
                        })
                        .collect();
                    return Changes::Listeners(changes);
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(list: &[(&str, bool)]) -> Changes {
        Changes::Listeners(list.iter().map(|(n, w)| (n.to_string(), *w)).collect())
    }

    #[tokio::test]
    async fn only_counts_crossing_zero_are_changes() {
        let wanted = Wanted::default();
        wanted.subscribe("a".into());
        wanted.subscribe("a".into());
        wanted.subscribe("b".into());
        assert_eq!(wanted.changes().await, changes(&[("a", true), ("b", true)]));
        wanted.unsubscribe("a");
        wanted.unsubscribe("b");
        assert_eq!(wanted.changes().await, changes(&[("b", false)]));
        wanted.unsubscribe("a");
        wanted.unsubscribe("never");
        assert_eq!(wanted.changes().await, changes(&[("a", false)]));
    }

    #[tokio::test]
    async fn churn_while_the_task_is_busy_keeps_one_mark_per_name() {
        let wanted = Wanted::default();
        for _ in 0..10_000 {
            wanted.subscribe("a".into());
            wanted.unsubscribe("a");
        }
        assert_eq!(wanted.lock().marked.len(), 1);
        assert_eq!(wanted.changes().await, changes(&[("a", false)]));
        wanted.close();
        assert_eq!(wanted.changes().await, Changes::Closed);
    }
}
