//! [`IdentitySource`]: the workload identity in use now, fixed or
//! following where it comes from, a [`CertificateSource`]: its files
//! ([`IdentityFiles`]), or code of the user's (an agent's API, SPIRE's
//! Workload API, a CA in the process). A source is read again on
//! [`reload`](IdentitySource::reload),
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

/// Where a workload identity comes from, read again at every reload.
/// [`IdentityFiles`] is one; implement it to take certificates from
/// elsewhere (SPIRE's Workload API, a vault, a CA in the process).
pub trait CertificateSource: Send + Sync + 'static {
    /// The identity now, checked as [`WorkloadIdentity::from_pem`]
    /// checks it as of `now`; or why there is none
    /// ([`IdentityCause::Unavailable`](super::IdentityCause::Unavailable)
    /// for a source that could not be reached).
    fn load(&self, now: SystemTime) -> Result<WorkloadIdentity, IdentityError>;
}

impl CertificateSource for IdentityFiles {
    fn load(&self, now: SystemTime) -> Result<WorkloadIdentity, IdentityError> {
        WorkloadIdentity::load(self, now)
    }
}

/// The workload identity in use; clones share it.
#[derive(Clone, Debug)]
pub struct IdentitySource {
    inner: Arc<Inner>,
}

struct Inner {
    current: ArcSwapOption<WorkloadIdentity>,
    source: Option<Box<dyn CertificateSource>>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentitySource")
            .field("current", &self.current.load())
            .field("follows", &self.source.is_some())
            .finish_non_exhaustive()
    }
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
    fn new(
        identity: Option<WorkloadIdentity>,
        source: Option<Box<dyn CertificateSource>>,
        state: State,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                current: ArcSwapOption::from(identity.map(Arc::new)),
                source,
                state: Mutex::new(state),
            }),
        }
    }

    /// The identity in `files`, which must check out now.
    pub fn from_files(files: IdentityFiles) -> Result<Self, IdentityError> {
        Self::from_source(files)
    }

    /// The identity `source` gives, which must check out now.
    pub fn from_source(source: impl CertificateSource) -> Result<Self, IdentityError> {
        let now = SystemTime::now();
        let identity = source.load(now)?;
        let state = State {
            reloaded_at: Some(now),
            last_error: None,
        };
        Ok(Self::new(Some(identity), Some(Box::new(source)), state))
    }

    /// The identity `source` (files, say) gives once it checks out: read
    /// now and on every [`reload`](Self::reload); without one until then,
    /// for the reason [`last_error`](Self::last_error) gives.
    pub fn pending(source: impl CertificateSource) -> Self {
        let source = Self::new(None, Some(Box::new(source)), State::default());
        let _ = source.reload();
        source
    }

    /// Reads the source again every `refresh_interval` (at least every
    /// second), for as long as a clone of this lives; within a Tokio
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

    /// The identity new handshakes use; `None` while the source has not
    /// given one that checks out.
    pub fn current(&self) -> Option<Arc<WorkloadIdentity>> {
        self.inner.current.load_full()
    }

    /// Reads the source again: the new identity (certificate, key and
    /// roots) replaces the current one if it checks out (`Ok(true)` when
    /// it is another certificate); otherwise the error, which is also kept
    /// as the [`last_error`](Self::last_error), and the current one stays.
    /// A fixed identity has nothing to read.
    pub fn reload(&self) -> Result<bool, IdentityError> {
        let Some(source) = &self.inner.source else {
            return Ok(false);
        };
        let now = SystemTime::now();
        let mut state = self.state();
        match source.load(now) {
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

    /// When the source was last read and its identity checked out.
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
    /// Why the source's identity did not check out.
    pub reason: Option<String>,
}
