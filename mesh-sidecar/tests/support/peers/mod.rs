//! The Envoy launcher of `mesh-control`'s tests (a real Envoy, as a
//! client of a control plane over ADS), with what it needs of its parent.

use std::path::{Path, PathBuf};

#[path = "../../../../mesh-control/tests/support/envoy.rs"]
pub(crate) mod envoy;

/// A temporary directory, removed when dropped.
pub(crate) struct TempDir(tempfile::TempDir);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        let prefix = format!("mesh-sidecar-{name}-");
        Self(tempfile::Builder::new().prefix(&prefix).tempdir().unwrap())
    }

    pub(crate) fn path(&self) -> &Path {
        self.0.path()
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

/// A peer the test needs is not installed: the test passes saying why,
/// unless `MESH_REQUIRE_PEERS` is set (as CI sets it).
pub(crate) fn missing_peer(reason: &str) {
    if std::env::var_os("MESH_REQUIRE_PEERS").is_some() {
        panic!("MESH_REQUIRE_PEERS is set: {reason}");
    }
    eprintln!("skipping: {reason}");
}
