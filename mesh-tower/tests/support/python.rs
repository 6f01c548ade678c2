//! Python with the pinned packages `.ci/run` installs, for tests that
//! check the mesh's formats against another implementation of them.
//!
//! The interpreter is `MESH_PYTHON`, else `.ci/venv/bin/python3`, else
//! `python3`. A test whose Python lacks a module says why and passes,
//! unless `MESH_REQUIRE_PEERS` is set (as `.ci/run` sets it).

use std::path::{Path, PathBuf};

/// The interpreter.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("MESH_PYTHON").filter(|p| !p.is_empty()) {
        return python.into();
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let venv = workspace.join(".ci/venv/bin/python3");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

/// Runs `script` with `args`: its stdout, trimmed, or its stderr.
pub fn run(script: &str, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .map_err(|e| format!("{}: {e}", python().display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether Python can import `module`: if not, says why and (unless
/// peers are required) lets the test pass by returning false.
pub fn has(module: &str, for_what: &str) -> bool {
    let Err(why) = run(&format!("import {module}"), &[]) else {
        return true;
    };
    let why = format!("no {module} for {for_what}: {why}");
    assert!(std::env::var_os("MESH_REQUIRE_PEERS").is_none(), "{why}");
    eprintln!("skipped: {why}");
    false
}
