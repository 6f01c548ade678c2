//! Following a configuration directory: every [`POLL`] its files'
//! [`fingerprint`] is taken, and once it has changed and then held for
//! one more poll (so that a file caught half-written by an editor is not
//! applied) the directory is loaded again and applied, or, if it does not
//! load, reported (on stderr through `tracing`, and in
//! [`ControlPlane::status`]) while the last good configuration stays
//! served. An edit is applied within two polls; the first load at once
//! (or before, by [`load_into`], so that nothing is served before it).
//!
//! Polling reads every file each time: the directory is a handful of
//! small YAML files, and it works the same on every file system and
//! editor (those that write in place and those that rename).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ControlPlane;
use crate::config_dir::{LoadError, fingerprint, load};

/// How often the directory is looked at: an edit is served within it.
pub const POLL: Duration = Duration::from_millis(200);

/// Loads `dir` into `plane` now: whether it was applied.
pub async fn load_into(plane: &ControlPlane, dir: &Path) -> bool {
    let (dir_owned, domain) = (dir.to_owned(), plane.cluster_domain());
    let loaded = tokio::task::spawn_blocking(move || load(&dir_owned, &domain)).await;
    match loaded {
        Ok(Ok(loaded)) => {
            for warning in &loaded.warnings {
                tracing::warn!(%warning, "configuration");
            }
            tracing::info!(
                version = format!("{:016x}", loaded.fingerprint),
                dir = %dir.display(),
                "configuration applied"
            );
            plane.apply(loaded);
            true
        }
        Ok(Err(errors)) => {
            for error in &errors {
                tracing::error!(%error, "configuration rejected; the last good one is still served");
            }
            plane.load_failed(&errors);
            false
        }
        Err(join) => {
            tracing::error!(%join, "loading the configuration failed");
            false
        }
    }
}

/// Loads `dir` into `plane` (at once, unless [`load_into`] already did),
/// then follows it until the task is dropped. A server should answer only
/// once the first load is in: load it with [`load_into`] first.
pub async fn watch(plane: ControlPlane, dir: PathBuf) {
    let reload = || {
        let (plane, dir) = (plane.clone(), dir.clone());
        async move {
            load_into(&plane, &dir).await;
        }
    };
    let unreadable = |error: LoadError| {
        tracing::error!(%error, "cannot read the configuration; the last good one is still served");
        plane.load_failed(&[error]);
    };
    follow(dir.clone(), plane.fingerprint(), reload, unreadable).await;
}

/// Calls `changed` each time the files of `dir` change and the change has
/// held for one more poll, until the task is dropped; `seen` is the
/// fingerprint of what is loaded already (`None`: call it at the first
/// poll, not held back, as nothing is served before it). A directory that
/// cannot be read is handed to `unreadable`, once for each new error, not
/// every poll.
pub async fn follow<C, Fut>(
    dir: PathBuf,
    mut seen: Option<u64>,
    mut changed: C,
    mut unreadable: impl FnMut(LoadError),
) where
    C: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    // A new fingerprint seen once, waiting to be seen again.
    let mut settling = None;
    let mut failing: Option<String> = None;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let d = dir.clone();
        let now = match tokio::task::spawn_blocking(move || fingerprint(&d)).await {
            Ok(Ok(now)) => now,
            Ok(Err(error)) => {
                let message = error.to_string();
                if failing.as_deref() != Some(&message) {
                    unreadable(error);
                    failing = Some(message);
                }
                continue;
            }
            Err(_) => continue,
        };
        failing = None;
        if seen == Some(now) {
            settling = None;
            continue;
        }
        if seen.is_some() && settling != Some(now) {
            settling = Some(now);
            continue;
        }
        // Remembered even when the load fails: the same broken files are
        // reported once, and the next edit is tried.
        seen = Some(now);
        settling = None;
        changed().await;
    }
}
