//! What the tests of every crate that runs real peers share: a temporary
//! directory, and what a test does when a peer is missing.

use std::path::{Path, PathBuf};

/// A fresh directory under the system's temporary directory, removed on drop.
pub(crate) struct TempDir(tempfile::TempDir);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        let prefix = format!("mesh-{name}-");
        Self(tempfile::Builder::new().prefix(&prefix).tempdir().unwrap())
    }

    pub(crate) fn path(&self) -> &Path {
        self.0.path()
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

/// Says on stderr why a test is skipped for want of a peer, or panics
/// when `MESH_REQUIRE_PEERS` is set (as `.ci/run` sets it, having
/// installed them all).
pub(crate) fn missing_peer(reason: &str) {
    if std::env::var_os("MESH_REQUIRE_PEERS").is_some() {
        panic!("MESH_REQUIRE_PEERS is set: {reason}");
    }
    eprintln!("skipping: {reason}");
}
