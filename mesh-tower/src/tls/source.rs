//! [`IdentitySource`]: the workload identity in use now, fixed or
//! following its files. Files are read again on [`reload`](IdentitySource::reload),
//! and every `refresh_interval` once [`watch`](IdentitySource::watch)ed
//! (as gRPC's `file_watcher` certificate provider reads them, which also
//! follows Kubernetes' `..data` symlink swap: the files are read whole,
//! by path, each time). A new identity that checks out replaces the old
//! one for new full handshakes (a resumed session keeps the certificate
//! it was made with); established connections keep theirs. One that
//! does not is logged with its reason, kept as the last error, and the
//! last good identity stays. A source whose files have not checked out
//! yet ([`IdentitySource::pending`], as when an agent has not written
//! them at start) has no identity: connections that need one fail with
//! the reason until it has.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;

use super::{IdentityError, IdentityFiles, WorkloadIdentity};

/// The workload identity in use; clones share it.
#[derive(Clone, Debug)]
pub struct IdentitySource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    current: ArcSwapOption<WorkloadIdentity>,
    files: Option<IdentityFiles>,
    state: Mutex<State>,
}

/// When the identity was last read, and why the last read failed, if it
/// did.
#[derive(Debug, Default)]
struct State {
    reloaded_at: Option<SystemTime>,
    last_error: Option<String>,
}

impl From<WorkloadIdentity> for IdentitySource {
    fn from(identity: WorkloadIdentity) -> Self {
        Self::new(Some(identity), None, State::default())
    }
}

impl IdentitySource {
    fn new(identity: Option<WorkloadIdentity>, files: Option<IdentityFiles>, state: State) -> Self {
        Self {
            inner: Arc::new(Inner {
                current: ArcSwapOption::from(identity.map(Arc::new)),
                files,
                state: Mutex::new(state),
            }),
        }
    }

    /// The identity in `files`, which must check out now.
    pub fn from_files(files: IdentityFiles) -> Result<Self, IdentityError> {
        let now = SystemTime::now();
        let identity = WorkloadIdentity::load(&files, now)?;
        let state = State {
            reloaded_at: Some(now),
            last_error: None,
        };
        Ok(Self::new(Some(identity), Some(files), state))
    }

    /// The identity in `files` once they check out: read now and on every
    /// [`reload`](Self::reload); without one until then, for the reason
    /// [`last_error`](Self::last_error) gives.
    pub fn pending(files: IdentityFiles) -> Self {
        let source = Self::new(None, Some(files), State::default());
        let _ = source.reload();
        source
    }

    /// Reads the files again every `refresh_interval` (at least every
    /// second), for as long as a clone of the source lives; within a Tokio
    /// runtime.
    pub fn watch(self, refresh_interval: Duration) -> Self {
        let alive = Arc::downgrade(&self.inner);
        let every = refresh_interval.max(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(inner) = alive.upgrade() else {
                    return;
                };
                let _ = IdentitySource { inner }.reload();
            }
        });
        self
    }

    /// The identity new handshakes use; `None` while the files have not
    /// checked out.
    pub fn current(&self) -> Option<Arc<WorkloadIdentity>> {
        self.inner.current.load_full()
    }

    /// Reads the files again: the new identity (certificate, key and
    /// roots) replaces the current one if it checks out (`Ok(true)` when
    /// it is another certificate); otherwise the error, which is also kept
    /// as the [`last_error`](Self::last_error), and the current one stays.
    /// A source not made from files has nothing to read.
    pub fn reload(&self) -> Result<bool, IdentityError> {
        let Some(files) = &self.inner.files else {
            return Ok(false);
        };
        let now = SystemTime::now();
        let mut state = self.state();
        match WorkloadIdentity::load(files, now) {
            Ok(identity) => {
                // The roots may rotate under an unchanged certificate: the
                // identity read is the one used, whatever changed.
                let changed = self
                    .current()
                    .is_none_or(|c| c.certified_key().cert != identity.certified_key().cert);
                self.inner.current.store(Some(Arc::new(identity)));
                state.reloaded_at = Some(now);
                state.last_error = None;
                Ok(changed)
            }
            Err(e) => {
                tracing::warn!(error = %e, "workload certificate not loaded; the last good one, if any, stays");
                state.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// When the files were last read whole and checked out.
    pub fn reloaded_at(&self) -> Option<SystemTime> {
        self.state().reloaded_at
    }

    /// Why the last read failed, until one succeeds.
    pub fn last_error(&self) -> Option<String> {
        self.state().last_error.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection that needs the workload identity, while there is none.
#[derive(Debug, thiserror::Error)]
#[error("this workload's certificate has not loaded: {}", reason.as_deref().unwrap_or("no identity"))]
pub struct NoIdentity {
    /// Why the files did not check out.
    pub reason: Option<String>,
}
