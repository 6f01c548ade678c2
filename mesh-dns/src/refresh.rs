//! The refresh loop: one background task per target, shared by every
//! [`Resolution`] of that target, that looks the target up again when the
//! answer's TTL runs out and stops when the last resolution is dropped.
//!
//! As Envoy's STRICT_DNS clusters read DNS: a lookup that gets no answer
//! (a timeout, a server failure or refusal, no server reachable) after the
//! target has resolved keeps the last good set (nothing is sent) and is
//! retried after the failure interval; a *negative answer* (no such name,
//! or no records) empties it: the target is put in
//! [`ResolveState::Failed`], "the name no longer resolves", for a deleted
//! Service's addresses may soon be another's. A target that never resolved
//! is put in the failed state either way. Failed targets are retried after
//! the failure interval until they resolve. A state is sent only when it
//! changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mesh_core::resolve::ResolveState;
use mesh_core::{Authority, EndpointSet, Resolution, ResolveError};
use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::lookup::{Failure, Lookup};

/// When to look a target up again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timing {
    /// The shortest wait after a success.
    pub(crate) min_ttl: Duration,
    /// The longest wait after a success.
    pub(crate) max_ttl: Duration,
    /// The wait after a failure.
    pub(crate) failure_refresh: Duration,
}

impl Timing {
    /// The wait after an answer with this TTL. Never panics, even for a
    /// `min_ttl` above `max_ttl` (the minimum wins).
    fn after_success(&self, ttl: Duration) -> Duration {
        ttl.min(self.max_ttl).max(self.min_ttl)
    }
}

type Senders = HashMap<Authority, watch::Sender<ResolveState>>;

/// The targets being refreshed, each with the sender its task feeds.
pub(crate) struct Targets<L> {
    lookup: Arc<L>,
    timing: Timing,
    senders: Mutex<Senders>,
    /// The runtime to spawn on when `resolve` is called outside one.
    runtime: Option<Handle>,
}

impl<L: Lookup> Targets<L> {
    pub(crate) fn new(lookup: L, timing: Timing) -> Arc<Self> {
        Arc::new(Self {
            lookup: Arc::new(lookup),
            timing,
            senders: Mutex::new(HashMap::new()),
            runtime: Handle::try_current().ok(),
        })
    }

    /// Joins the refresh of `target`, starting it when nobody watches it.
    pub(crate) fn watch(self: &Arc<Self>, target: &Authority) -> Resolution {
        let (task, resolution, runtime) = {
            let mut senders = self.lock();
            if let Some(tx) = senders.get(target) {
                return Resolution::new(target.clone(), tx.subscribe());
            }
            let Some(runtime) = Handle::try_current().ok().or_else(|| self.runtime.clone()) else {
                return Resolution::failed(
                    target.clone(),
                    "DNS discovery needs a tokio runtime and none is running",
                );
            };
            let (tx, rx) = watch::channel(ResolveState::Pending);
            senders.insert(target.clone(), tx.clone());
            let task = Task {
                targets: self.clone(),
                target: target.clone(),
                tx,
            };
            (task, Resolution::new(target.clone(), rx), runtime)
        };
        // Outside the lock: a runtime that is shutting down drops the task
        // at once, and the task deregisters itself when dropped.
        runtime.spawn(task.run());
        resolution
    }

    /// The number of targets with a running refresh task.
    #[cfg(test)]
    pub(crate) fn running(&self) -> usize {
        self.lock().len()
    }

    /// Removes `target` if nobody watches it any more. Checked under the
    /// lock `watch` subscribes under, so a resolution cannot join a task
    /// that is about to stop.
    fn retire(&self, target: &Authority, tx: &watch::Sender<ResolveState>) -> bool {
        let mut senders = self.lock();
        if tx.receiver_count() > 0 {
            return false;
        }
        forget(&mut senders, target, tx);
        true
    }

    fn lock(&self) -> MutexGuard<'_, Senders> {
        // The map holds no invariant a panic elsewhere could break.
        self.senders.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The refresh task of one target. Dropping it, whether it returned, was
/// aborted with its runtime, or never ran, removes its entry from the map,
/// so a later `watch` starts a new task instead of joining a dead one.
struct Task<L: Lookup> {
    targets: Arc<Targets<L>>,
    target: Authority,
    tx: watch::Sender<ResolveState>,
}

impl<L: Lookup> Task<L> {
    /// Refreshes the target until nobody watches it.
    async fn run(self) {
        let retired = async {
            loop {
                self.tx.closed().await;
                if self.targets.retire(&self.target, &self.tx) {
                    return;
                }
            }
        };
        tokio::select! {
            () = self.refresh() => {}
            () = retired => {}
        }
    }

    /// Looks the target up, publishes changes, and waits for the next
    /// lookup, forever.
    async fn refresh(&self) {
        let mut last_failure: Option<String> = None;
        loop {
            let outcome = self.targets.lookup.lookup(&self.target).await;
            let wait = match outcome {
                Ok(answer) if !answer.endpoints.is_empty() => {
                    if last_failure.take().is_some() {
                        tracing::info!(name = %self.target, "DNS lookup succeeds again");
                    }
                    let set = EndpointSet::new(answer.endpoints);
                    self.tx.send_if_modified(|state| match state {
                        ResolveState::Ready(current) if *current == set => false,
                        _ => {
                            *state = ResolveState::Ready(set);
                            true
                        }
                    });
                    self.targets.timing.after_success(answer.ttl)
                }
                outcome => {
                    let failure = outcome
                        .err()
                        .unwrap_or_else(|| Failure::negative("no A/AAAA records"));
                    fail(&self.target, &self.tx, failure, &mut last_failure);
                    self.targets.timing.failure_refresh
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

impl<L: Lookup> Drop for Task<L> {
    fn drop(&mut self) {
        forget(&mut self.targets.lock(), &self.target, &self.tx);
    }
}

/// Removes `target` from `senders` if it is still this task's channel.
fn forget(senders: &mut Senders, target: &Authority, tx: &watch::Sender<ResolveState>) {
    if senders.get(target).is_some_and(|s| s.same_channel(tx)) {
        senders.remove(target);
    }
}

/// What the reason of a target that resolved and then stopped starts with.
const NO_LONGER: &str = "the name no longer resolves: ";

/// Records a failed lookup: a target that resolved before keeps its set
/// unless DNS answered that the name has no records; otherwise the target
/// is put in the failed state. Logs a warning when a failure streak starts
/// or its cause changes, and repeats at debug level.
fn fail(
    target: &Authority,
    tx: &watch::Sender<ResolveState>,
    failure: Failure,
    last_failure: &mut Option<String>,
) {
    let negative = failure.is_negative();
    let cause = failure.to_string();
    let mut dropped = false;
    tx.send_if_modified(|state| {
        let (resolved_before, reason) = match state {
            ResolveState::Ready(_) if !negative => return false,
            ResolveState::Ready(_) => {
                dropped = true;
                (true, None)
            }
            ResolveState::Failed(e) => (e.reason().starts_with(NO_LONGER), Some(e.reason())),
            ResolveState::Pending => (false, None),
        };
        // A name that resolved and is gone stays "no longer resolves"
        // until it returns; a refresh with no answer says nothing new.
        let next = match resolved_before {
            true if !negative => return false,
            true => format!("{NO_LONGER}{cause}"),
            false => cause.clone(),
        };
        if reason == Some(next.as_str()) {
            return false;
        }
        *state = ResolveState::Failed(ResolveError::new(target, next));
        true
    });
    let keeping = matches!(*tx.borrow(), ResolveState::Ready(_));
    if dropped {
        tracing::warn!(
            name = %target,
            %cause,
            "the name no longer resolves; its endpoints are dropped"
        );
    } else if last_failure.as_deref() == Some(cause.as_str()) {
        tracing::debug!(name = %target, %cause, "DNS lookup failed again");
    } else if keeping {
        tracing::warn!(name = %target, %cause, "DNS refresh failed; keeping the last endpoints");
    } else {
        tracing::warn!(name = %target, %cause, "cannot resolve");
    }
    *last_failure = Some(cause);
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use mesh_core::Endpoint;
    use tokio::time::{Instant, timeout};

    use super::*;
    use crate::lookup::Answer;

    /// Answers from a script, repeating the last entry; counts calls.
    struct Scripted {
        script: Mutex<VecDeque<Result<Answer, Failure>>>,
        calls: AtomicUsize,
    }

    impl Scripted {
        fn new(script: impl IntoIterator<Item = Result<Answer, Failure>>) -> Self {
            Self {
                script: Mutex::new(script.into_iter().collect()),
                calls: AtomicUsize::new(0),
            }
        }
    }

    impl Lookup for Scripted {
        async fn lookup(&self, _: &Authority) -> Result<Answer, Failure> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let mut script = self.script.lock().unwrap();
            if script.len() > 1 {
                script.pop_front().unwrap()
            } else {
                script.front().cloned().unwrap()
            }
        }
    }

    fn ok(ports: &[u16], ttl_secs: u64) -> Result<Answer, Failure> {
        Ok(Answer {
            endpoints: ports
                .iter()
                .map(|p| Endpoint::new(([10, 0, 0, 1], *p).into()))
                .collect(),
            ttl: Duration::from_secs(ttl_secs),
        })
    }

    fn err(reason: &str) -> Result<Answer, Failure> {
        Err(Failure::new(reason))
    }

    fn gone(reason: &str) -> Result<Answer, Failure> {
        Err(Failure::negative(reason))
    }

    fn timing() -> Timing {
        Timing {
            min_ttl: Duration::from_secs(5),
            max_ttl: Duration::from_secs(300),
            failure_refresh: Duration::from_secs(5),
        }
    }

    fn ports(state: &ResolveState) -> Vec<u16> {
        match state {
            ResolveState::Ready(set) => set.iter().map(|e| e.addr.port()).collect(),
            other => panic!("not ready: {other:?}"),
        }
    }

    fn target() -> Authority {
        "reviews:9080".parse().unwrap()
    }

    #[test]
    fn ttl_is_clamped() {
        let t = timing();
        assert_eq!(t.after_success(Duration::ZERO), Duration::from_secs(5));
        assert_eq!(
            t.after_success(Duration::from_secs(30)),
            Duration::from_secs(30)
        );
        assert_eq!(
            t.after_success(Duration::from_secs(86_400)),
            Duration::from_secs(300)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_when_the_ttl_runs_out() {
        let targets = Targets::new(Scripted::new([ok(&[1], 30), ok(&[1, 2], 30)]), timing());
        let mut res = targets.watch(&target());
        assert_eq!(res.ready().await.unwrap().len(), 1);
        let start = Instant::now();
        let next = res.changed().await.unwrap();
        assert_eq!(ports(&next), [1, 2]);
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn sends_nothing_when_nothing_changed() {
        let lookup = Scripted::new([ok(&[1], 0)]);
        let targets = Targets::new(lookup, timing());
        let mut res = targets.watch(&target());
        res.ready().await.unwrap();
        // Lookups happen every min_ttl (5 s) but the set never changes.
        assert!(
            timeout(Duration::from_secs(60), res.changed())
                .await
                .is_err()
        );
        let calls = targets.lookup.calls.load(Ordering::SeqCst);
        assert!((12..=14).contains(&calls), "{calls} lookups in 60 s");
    }

    #[tokio::test(start_paused = true)]
    async fn failure_after_success_keeps_the_last_set() {
        let targets = Targets::new(
            Scripted::new([
                ok(&[1], 10),
                err("no name server answered in time (timeout)"),
            ]),
            timing(),
        );
        let mut res = targets.watch(&target());
        res.ready().await.unwrap();
        assert!(
            timeout(Duration::from_secs(60), res.changed())
                .await
                .is_err()
        );
        assert_eq!(ports(&res.current()), [1]);
        // One lookup at 0 s, the failing one at 10 s, then every 5 s.
        let calls = targets.lookup.calls.load(Ordering::SeqCst);
        assert!((10..=12).contains(&calls), "{calls} lookups in 60 s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_negative_answer_after_success_empties_the_set_until_the_name_returns() {
        let targets = Targets::new(
            Scripted::new([
                ok(&[1], 10),
                gone("no such name (NXDOMAIN)"),
                gone("no such name (NXDOMAIN)"),
                err("no name server answered in time (timeout)"),
                ok(&[2], 10),
            ]),
            timing(),
        );
        let mut res = targets.watch(&target());
        res.ready().await.unwrap();
        let start = Instant::now();
        match res.changed().await.unwrap() {
            ResolveState::Failed(e) => assert_eq!(
                e.to_string(),
                "cannot resolve reviews:9080: the name no longer resolves: no such name (NXDOMAIN)"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        // The same answer again sends nothing, nor does a refresh that
        // gets no answer; the name's return does.
        assert_eq!(ports(&res.changed().await.unwrap()), [2]);
        assert_eq!(start.elapsed(), Duration::from_secs(25));
    }

    #[tokio::test(start_paused = true)]
    async fn never_resolved_fails_then_recovers() {
        let targets = Targets::new(
            Scripted::new([
                err("no such name (NXDOMAIN)"),
                err("no such name (NXDOMAIN)"),
                ok(&[7], 30),
            ]),
            timing(),
        );
        let mut res = targets.watch(&target());
        let e = res.ready().await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot resolve reviews:9080: no such name (NXDOMAIN)"
        );
        // The repeated failure is not sent again; the recovery is, after two
        // failure intervals.
        let start = Instant::now();
        let next = res.changed().await.unwrap();
        assert_eq!(ports(&next), [7]);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_answer_is_a_failure() {
        let targets = Targets::new(Scripted::new([ok(&[], 30)]), timing());
        let e = targets.watch(&target()).ready().await.unwrap_err();
        assert!(e.to_string().contains("no A/AAAA records"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn one_task_per_target_stopping_with_the_last_watcher() {
        let targets = Targets::new(Scripted::new([ok(&[1], 30)]), timing());
        let mut a = targets.watch(&target());
        let mut b = targets.watch(&target());
        a.ready().await.unwrap();
        b.ready().await.unwrap();
        assert_eq!(targets.running(), 1);
        assert_eq!(targets.lookup.calls.load(Ordering::SeqCst), 1);

        drop(a);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(targets.running(), 1);
        drop(b);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(targets.running(), 0);
        let calls = targets.lookup.calls.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert_eq!(targets.lookup.calls.load(Ordering::SeqCst), calls);

        // A new watcher starts a new task.
        let mut c = targets.watch(&target());
        c.ready().await.unwrap();
        assert_eq!(targets.running(), 1);
    }

    #[test]
    fn a_task_lost_with_its_runtime_is_replaced() {
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap()
        };
        let targets = Targets::new(Scripted::new([ok(&[1], 30)]), timing());
        let first = runtime();
        let mut orphan = first.block_on(async {
            let mut res = targets.watch(&target());
            res.ready().await.unwrap();
            res
        });
        drop(first);
        assert_eq!(targets.running(), 0);

        let second = runtime();
        second.block_on(async {
            let set = targets.watch(&target()).ready().await.unwrap();
            assert_eq!(set.len(), 1);
            // The resolution of the lost task sees its source stop.
            assert!(orphan.changed().await.is_none());
        });
    }

    #[test]
    fn outside_a_runtime_is_an_error_not_a_panic() {
        let targets = Targets::new(Scripted::new([ok(&[1], 30)]), timing());
        let res = targets.watch(&target());
        match res.current() {
            ResolveState::Failed(e) => assert!(e.to_string().contains("tokio runtime"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
