//! The workload identity an xDS bootstrap names (feature `xds`): its
//! certificate provider instance `default`, the `file_watcher` Istio's
//! agent writes for proxyless workloads (gRFC A29).

use super::{IdentityFiles, IdentitySource};

/// The identity of `bootstrap`'s certificate provider `default`, followed
/// at its refresh interval (from when its files check out: files an agent
/// has not written yet load when they appear, and until then connections
/// that need them fail with the reason); `None` without that provider,
/// and why not when it names no certificate, key and roots.
pub(crate) fn bootstrap_identity(
    bootstrap: &mesh_xds::Bootstrap,
) -> Option<Result<IdentitySource, &'static str>> {
    let provider = bootstrap.certificate_providers.get("default")?;
    let watcher = &provider.file_watcher;
    let (Some(chain), Some(key), Some(roots)) = (
        &watcher.certificate_file,
        &watcher.private_key_file,
        &watcher.ca_certificate_file,
    ) else {
        return Some(Err(
            "the xDS bootstrap's certificate provider `default` names no certificate, key \
             and roots",
        ));
    };
    let files = IdentityFiles {
        certificate_chain: chain.clone(),
        private_key: key.clone(),
        roots: roots.clone(),
    };
    let source = IdentitySource::pending(files);
    if let Some(error) = source.last_error() {
        tracing::error!(%error, "the workload certificate did not load; connections that need mutual TLS fail until it does");
    }
    Some(Ok(source.watch(watcher.refresh_interval)))
}
