//! Where the sidecar's configuration comes from, as an xDS bootstrap:
//! the file given, one made for the control plane at `--xds`, or one for
//! a control plane started inside the process that serves `--config`'s
//! Istio YAML and follows its edits ([`mesh_control::embedded`]); and
//! a gateway's, which reads `--config` itself.

use std::path::Path;
use std::time::Duration;

use mesh_tower::tls::IdentityFiles;
use mesh_xds::Bootstrap;
use mesh_xds::bootstrap::{BootstrapError, CertificateProvider, FileWatcher};
use serde_json::{Map, Value};

use crate::cli::{SourceArgs, WorkloadArgs};

/// How often the certificate files are read again for rotation.
pub(crate) const CERT_REFRESH: Duration = Duration::from_secs(60);

/// Why the configuration source cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The bootstrap is unreadable or malformed.
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    /// The configuration directory cannot be served.
    #[error(transparent)]
    Embedded(#[from] mesh_control::embedded::EmbeddedError),
    /// No source was given.
    #[error("no configuration source: give --bootstrap, --xds or --config")]
    Missing,
}

/// The bootstrap the sidecar follows: `source` as `workload` describes
/// it. With `--config`, the control plane serving it is started on the
/// current runtime first.
pub async fn bootstrap(
    source: &SourceArgs,
    workload: &WorkloadArgs,
) -> Result<Bootstrap, SourceError> {
    if let Some(file) = &source.bootstrap {
        return Ok(Bootstrap::from_file(file)?);
    }
    let server = match (&source.xds, &source.config) {
        (Some(xds), _) => xds.clone(),
        (None, Some(dir)) => mesh_control::embedded::serve_dir(dir, &workload.cluster_domain)
            .await?
            .to_string(),
        (None, None) => return Err(SourceError::Missing),
    };
    let mut labels = workload.labels.clone();
    // The workload has a sidecar, so it takes mutual TLS.
    if !labels.iter().any(|(k, _)| k == "security.istio.io/tlsMode") {
        labels.push(("security.istio.io/tlsMode".into(), "istio".into()));
    }
    let mut bootstrap = Bootstrap::insecure(&server, node_id(workload))?;
    bootstrap.node.metadata = metadata(&workload.namespace, &labels);
    if let Some(dir) = &workload.cert_dir {
        with_certificates(&mut bootstrap, dir);
    }
    Ok(bootstrap)
}

/// Gives `bootstrap` the certificates in `dir` (Istio's layout) as its
/// `default` certificate provider, read again as they rotate.
fn with_certificates(bootstrap: &mut Bootstrap, dir: &Path) {
    let files = IdentityFiles::in_dir(dir);
    bootstrap.certificate_providers.insert(
        "default".into(),
        CertificateProvider {
            file_watcher: FileWatcher {
                certificate_file: Some(files.certificate_chain),
                private_key_file: Some(files.private_key),
                ca_certificate_file: Some(files.roots),
                refresh_interval: CERT_REFRESH,
            },
        },
    );
}

/// Istio's node id for the workload, unless one is given.
fn node_id(w: &WorkloadArgs) -> String {
    w.node_id.clone().unwrap_or_else(|| {
        format!(
            "sidecar~{}~{}.{ns}~{ns}.svc.{}",
            w.instance_ip,
            w.workload,
            w.cluster_domain,
            ns = w.namespace
        )
    })
}

/// The node metadata Istio's agent sends: the namespace and the labels.
fn metadata(namespace: &str, labels: &[(String, String)]) -> Map<String, Value> {
    let labels: Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut metadata = Map::new();
    metadata.insert("NAMESPACE".into(), namespace.into());
    metadata.insert("LABELS".into(), Value::Object(labels));
    metadata
}

/// The bootstrap of a gateway following a control plane: the file given,
/// or one for `--xds` as the node `node_id` in `namespace` with `labels`
/// (which pick its Gateways) and the certificates in `cert_dir`; `None`
/// when the source is a directory, which the gateway reads itself.
pub fn gateway_bootstrap(
    source: &SourceArgs,
    node_id: &str,
    namespace: &str,
    labels: &[(String, String)],
    cert_dir: Option<&Path>,
) -> Result<Option<Bootstrap>, SourceError> {
    if let Some(file) = &source.bootstrap {
        return Ok(Some(Bootstrap::from_file(file)?));
    }
    let Some(xds) = &source.xds else {
        return Ok(None);
    };
    let mut bootstrap = Bootstrap::insecure(xds, node_id.to_owned())?;
    bootstrap.node.metadata = metadata(namespace, labels);
    if let Some(dir) = cert_dir {
        with_certificates(&mut bootstrap, dir);
    }
    Ok(Some(bootstrap))
}
